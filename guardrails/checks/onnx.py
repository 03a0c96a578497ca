"""ONNX release checks (torch-free, onnxruntime): structure, signature, parity, speed, int8.

Each check covers every ``RUN/onnx/*.onnx`` (or the models a command pinned on the
context as ``RunContext.onnx_models``) and reports per model in ``details``:

- ``onnx.checker``: parses, ``onnx.checker`` full check, onnxruntime loads it;
- ``onnx.signature``: inputs/outputs (names, dtypes, dims with symbolic B and T) against
  the metadata and the mode's layout; metadata against the run (config hash, feature
  config, normalization artifact hash, and ``checkpoint_sha256`` recomputed from
  ``RUN/checkpoints/<mode>_fold<K>.safetensors``, so a model exported from other weights
  than the run's is caught). A mismatch is an :class:`ArtifactError` (bad input for
  ``guardrails onnx``, a failing check in ``guardrails ci``);
- ``onnx.parity``: ORT vs the PyTorch-eager references saved at export, every case,
  per output max abs/rel error within ``atol + rtol * |ref|``; predicted class 100% equal;
  a reference file with zero cases (or an empty case) fails: nothing was compared;
- ``onnx.latency``: batch-1 latency and batch-N throughput at fixed thread counts;
- ``onnx.quantization``: dynamic int8 copy (in a temp folder, never swapped in): class
  agreement with fp32 on the references, and its speed-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks.onnx_model import OnnxArtifact, find_models, session, time_runs
from guardrails.errors import ArtifactError
from profy.contract.hashing import file_sha256
from profy.contract.layout import CHECKPOINTS_DIR, CONFIG_HASH_FILE, checkpoint_name, onnx_name
from profy.contract.model_io import INPUT_LAYOUT, MODES, input_names, output_names

__all__ = ["applies", "check_checker", "check_latency", "check_parity", "check_quantization",
           "check_signature", "checkpoint_problems", "signature_problems"]


def applies(ctx: RunContext) -> str | None:
    """Skip runs without exported models."""
    if ctx.onnx_models:
        return None
    return None if find_models(ctx.run_dir) else (
        f"no onnx/ in {ctx.run_dir}: run `profy export {ctx.run_dir}`")


def _models(ctx: RunContext) -> list[OnnxArtifact]:
    paths = ctx.onnx_models or find_models(ctx.run_dir)
    if not paths:
        raise ArtifactError(Path(ctx.run_dir) / "onnx", "no .onnx model to check")
    return [OnnxArtifact(Path(p)) for p in paths]


def _result(name: str, passed: bool, per_model: dict[str, Any], *, observed: Any,
            expected: Any, message: str) -> CheckResult:
    return CheckResult(name, "onnx", passed, observed=observed, expected=expected,
                       message=message, details={"models": per_model})


@register("onnx.checker", category="onnx", applies=applies, lane="inference",
          description="ONNX checker (full) and onnxruntime load every exported model")
def check_checker(ctx: RunContext) -> CheckResult:
    per = {}
    for art in _models(ctx):  # OnnxArtifact runs the full checker
        sess = session(art.path)
        per[art.name] = {"sha256": art.sha256, "size_bytes": art.path.stat().st_size,
                         "opset": max((o.version for o in art.proto.opset_import
                                       if o.domain in ("", "ai.onnx")), default=None),
                         "inputs": [i.name for i in sess.get_inputs()]}
    return _result("onnx.checker", True, per, observed=f"{len(per)} model(s) valid",
                   expected="checker + onnxruntime load", message=", ".join(per))


def signature_problems(art: OnnxArtifact, ctx: RunContext) -> list[str]:
    """Every disagreement between the model's graph, its metadata and the run."""
    meta, sig, problems = art.metadata, art.signature(), []
    need = ("mode", "fold", "config_hash", "input_names", "output_names", "sample_rate",
            "n_mels", "frames", "norm_sha256", "norm_path")
    missing = [k for k in need if not meta.get(k)]
    if missing:
        return [f"metadata lacks {missing}"]
    mode = meta["mode"]
    if mode not in MODES:
        return [f"metadata mode {mode!r} is not {'/'.join(MODES)}"]
    if not str(meta["fold"]).isdigit() or f"{art.name}.onnx" != onnx_name(mode, meta["fold"]):
        problems.append(f"file name {art.name} vs metadata mode={mode} fold={meta['fold']}")
    for kind, want, declared in (
            ("inputs", list(input_names(mode)), art.meta_list("input_names")),
            ("outputs", list(output_names(mode)), art.meta_list("output_names"))):
        got = list(sig[kind])
        if got != want or declared != want:
            problems.append(f"{kind}: graph {got}, metadata {declared}, expected {want}")
    features = (ctx.config.get("features") or {}) if ctx is not None else {}
    n_mels = int(features.get("n_mels", meta["n_mels"]))
    for name, spec in sig["inputs"].items():
        if name not in INPUT_LAYOUT:
            continue
        dims, dtype = INPUT_LAYOUT[name]
        want_dims = [n_mels if d == "n_mels" else d for d in dims]
        got = spec["dims"]
        ok = len(got) == len(want_dims) and all(
            isinstance(g, str) if isinstance(w, str) else g == w
            for g, w in zip(got, want_dims, strict=True))
        if not ok or spec["dtype"] != dtype:
            problems.append(f"input {name}: {spec['dtype']} {got}, expected {dtype} {want_dims} "
                            "(B and T symbolic)")
    for name, spec in sig["outputs"].items():
        if len(spec["dims"]) != 2 or spec["dims"][1] != 2 or not isinstance(spec["dims"][0], str):
            problems.append(f"output {name}: dims {spec['dims']}, expected [B, 2]")
    if ctx is None:
        return problems
    if meta["config_hash"] != ctx.config_hash:
        problems.append(f"metadata config_hash {meta['config_hash'][:16]}... differs from the "
                        f"run's {ctx.config_hash[:16]}... ({Path(ctx.run_dir) / CONFIG_HASH_FILE})")
    for key in ("sample_rate", "n_mels", "frames"):
        if key in features and str(features[key]) != meta[key]:
            problems.append(f"metadata {key}={meta[key]}, run config features.{key}="
                            f"{features[key]}")
    norm = Path(ctx.run_dir) / meta["norm_path"]
    if not norm.is_file():
        problems.append(f"normalization artifact {norm} named in the metadata is missing")
    elif hashlib.sha256(norm.read_bytes()).hexdigest() != meta["norm_sha256"]:
        problems.append(f"{norm} sha256 differs from the metadata's norm_sha256")
    problems += checkpoint_problems(art, Path(ctx.run_dir))
    return problems


def checkpoint_problems(art: OnnxArtifact, run_dir: Path) -> list[str]:
    """The model's ``checkpoint``/``checkpoint_sha256`` metadata against the run's file.

    The checkpoint must be ``RUN/checkpoints/<mode>_fold<K>.safetensors`` (the model's own
    mode and fold) and its sha256, recomputed here, must equal the metadata's: otherwise
    the ONNX file was exported from weights this run does not hold.
    """
    meta = art.metadata
    rel, recorded = meta.get("checkpoint"), meta.get("checkpoint_sha256")
    if not rel or not recorded:
        return [f"{art.path} metadata lacks checkpoint/checkpoint_sha256: the model cannot "
                "be tied to a checkpoint of the run (re-export with `profy export RUN`)"]
    fold = str(meta.get("fold"))
    if not fold.isdigit():
        return [f"{art.path} metadata fold {fold!r} is not a fold number: the model cannot be "
                "tied to a checkpoint of the run"]
    want = f"{CHECKPOINTS_DIR}/{checkpoint_name(str(meta.get('mode')), int(fold))}"
    ckpt = run_dir / want
    if rel != want:
        return [f"{art.path} metadata names checkpoint {rel}, not the run's {want} "
                f"({ckpt})"]
    if not ckpt.is_file():
        return [f"checkpoint {ckpt} named in {art.path}'s metadata is missing"]
    actual = file_sha256(ckpt)
    if actual != recorded:
        return [f"checkpoint {ckpt} has sha256 {actual[:16]}..., {art.path}'s metadata "
                f"checkpoint_sha256 is {recorded[:16]}... (the model was not exported from "
                "this checkpoint)"]
    return []


@register("onnx.signature", category="onnx", applies=applies, lane="inference",
          description="inputs/outputs vs metadata and layout; metadata vs the run's config")
def check_signature(ctx: RunContext) -> CheckResult:
    per = {}
    for art in _models(ctx):
        problems = signature_problems(art, ctx)
        if problems:
            raise ArtifactError(art.path, "metadata mismatch: " + "; ".join(problems))
        per[art.name] = {"mode": art.metadata["mode"], "config_hash": art.metadata["config_hash"],
                         "checkpoint": art.metadata["checkpoint"],
                         "checkpoint_sha256": art.metadata["checkpoint_sha256"],
                         **art.signature()}
    return _result("onnx.signature", True, per, observed="consistent",
                   expected="graph == metadata == run config and checkpoint",
                   message=", ".join(per))


def _errors(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    scale = np.abs(ref.astype(np.float64))
    return {"max_abs": float(diff.max(initial=0.0)),
            "max_rel": float((diff / np.maximum(scale, 1e-12)).max(initial=0.0)),
            "within": bool(np.all(diff <= atol + rtol * scale))}


@register("onnx.parity", category="onnx", applies=applies, lane="inference",
          params={"atol": 1e-4, "rtol": 1e-3, "threads": 1},
          description="onnxruntime vs PyTorch-eager references: max abs/rel error, class agreement")
def check_parity(ctx: RunContext, *, atol: float, rtol: float, threads: int) -> CheckResult:
    per, failures = {}, []
    for art in _models(ctx):
        sess = session(art.path, threads=threads)
        inputs, outputs = art.meta_list("input_names"), art.meta_list("output_names")
        cases = {}
        for case, arrays in art.references().items():
            got = dict(zip(outputs, sess.run(outputs, {n: arrays[n] for n in inputs}),
                           strict=True))
            errs = {o: _errors(got[o], arrays[o], atol, rtol) for o in outputs}
            agree = float(np.mean(got["probs"].argmax(1) == arrays["probs"].argmax(1)))
            cases[case] = {"batch": int(arrays[inputs[0]].shape[0]),
                           "outputs": errs, "class_agreement": agree}
            bad = [o for o, e in errs.items() if not e["within"]]
            if bad or agree < 1.0:
                failures.append(f"{art.name}/{case}: " + ", ".join(
                    [f"{o} max abs {errs[o]['max_abs']:.3g}" for o in bad]
                    + ([f"class agreement {agree:.1%}"] if agree < 1.0 else [])))
        per[art.name] = cases
    worst = max((e["max_abs"] for c in per.values() for v in c.values()
                 for e in v["outputs"].values()), default=0.0)
    return _result("onnx.parity", not failures, per, observed=f"max abs error {worst:.3g}",
                   expected=f"|ort - eager| <= {atol} + {rtol}*|eager|, class agreement 100%",
                   message="; ".join(failures[:5]) or f"{len(per)} model(s) match eager")


def _bench_feeds(art: OnnxArtifact, batch: int) -> dict[str, np.ndarray]:
    refs = art.references()
    val = refs.get("val") or next(iter(refs.values()))
    out = {}
    for n in art.meta_list("input_names"):
        a = val[n]
        out[n] = np.ascontiguousarray(np.concatenate([a] * -(-batch // a.shape[0]))[:batch])
    return out


@register("onnx.latency", category="onnx", applies=applies, lane="timed",
          params={"threads": 2, "batch": 32, "repeats": 20, "max_batch1_ms": None},
          description="batch-1 latency (p50/p95) and batch-N throughput at fixed threads")
def check_latency(ctx: RunContext, *, threads: int, batch: int, repeats: int,
                  max_batch1_ms: float | None) -> CheckResult:
    per, slow = {}, []
    for art in _models(ctx):
        sess = session(art.path, threads=threads)
        one = time_runs(sess, _bench_feeds(art, 1), repeats=repeats)
        many = time_runs(sess, _bench_feeds(art, batch), repeats=max(3, repeats // 4))
        per[art.name] = {"threads": threads, "batch1_p50_ms": float(np.median(one)),
                         "batch1_p95_ms": float(np.percentile(one, 95)), "batch": batch,
                         f"batch{batch}_p50_ms": float(np.median(many)),
                         "throughput_per_s": float(batch / (np.median(many) / 1e3))}
        if max_batch1_ms is not None and per[art.name]["batch1_p50_ms"] > max_batch1_ms:
            slow.append(f"{art.name} {per[art.name]['batch1_p50_ms']:.2f} ms")
    summary = ", ".join(f"{k}: {v['batch1_p50_ms']:.2f} ms @1, {v['throughput_per_s']:.0f}/s "
                        f"@{batch}" for k, v in per.items())
    return _result("onnx.latency", not slow, per, observed=summary,
                   expected=f"batch-1 p50 <= {max_batch1_ms} ms" if max_batch1_ms else
                   "measured (no limit set)", message="too slow: " + ", ".join(slow)
                   if slow else summary)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer advises "pre-processing" on the root logger for every model;
    the advice is not actionable in a gate, so it is kept out of the verdict's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@register("onnx.quantization", category="onnx", applies=applies, lane="timed",
          params={"enabled": True, "min_agreement": 0.9, "threads": 2, "repeats": 10},
          description="dynamic int8 copy: class agreement and speed-up (never swapped in)")
def check_quantization(ctx: RunContext, *, enabled: bool, min_agreement: float, threads: int,
                       repeats: int) -> CheckResult:
    if not enabled:
        return CheckResult("onnx.quantization", "onnx", True, skipped=True,
                           message="skipped: enabled is false")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per, low = {}, []
    for art in _models(ctx):
        inputs, refs = art.meta_list("input_names"), art.references()
        with tempfile.TemporaryDirectory(prefix="guardrails-int8-") as tmp:
            q_path = Path(tmp) / f"{art.name}.int8.onnx"
            try:
                with _quiet_root_logger():
                    quantize_dynamic(str(art.path), str(q_path), weight_type=QuantType.QInt8)
            except Exception as exc:  # report, do not crash: int8 is advisory
                per[art.name] = {"error": f"{type(exc).__name__}: {exc}"}
                low.append(f"{art.name}: quantization failed")
                continue
            fp32, int8 = session(art.path, threads=threads), session(q_path, threads=threads)
            same = total = 0
            for arrays in refs.values():
                feeds = {n: arrays[n] for n in inputs}
                a = fp32.run(["probs"], feeds)[0].argmax(1)
                b = int8.run(["probs"], feeds)[0].argmax(1)
                same, total = same + int((a == b).sum()), total + len(a)
            feeds = _bench_feeds(art, 1)
            t32 = float(np.median(time_runs(fp32, feeds, repeats=repeats)))
            t8 = float(np.median(time_runs(int8, feeds, repeats=repeats)))
            per[art.name] = {"agreement": same / total, "n": total, "fp32_ms": t32,
                             "int8_ms": t8, "speedup": t32 / t8,
                             "size_ratio": q_path.stat().st_size / art.path.stat().st_size}
        if per[art.name]["agreement"] < min_agreement:
            low.append(f"{art.name} agreement {per[art.name]['agreement']:.1%}")
    summary = ", ".join(f"{k}: {v['agreement']:.0%} agree, x{v['speedup']:.2f}"
                        for k, v in per.items() if "agreement" in v)
    return _result("onnx.quantization", not low, per, observed=summary or "n/a",
                   expected=f"class agreement >= {min_agreement:.0%} (fp32 stays the release)",
                   message="; ".join(low) or summary)
