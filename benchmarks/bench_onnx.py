"""ORT vs PyTorch eager (inference mode) latency per mode, batch 1 and 32, same threads.

Same inputs for both (the held-out takes saved in each model's reference ``.npz``, tiled
to the batch size), same thread count, measured in one run, the two taking turns call by
call; the ratio of medians eager/ORT is the ORT speed-up (target >= 2 at batch 1). Needs an
exported run (``profy export RUN``). ``--threads 1`` is what ``guardrails``' replays and
parity check deploy; ``onnx.latency`` uses the criteria's ``threads`` (2).

    .venv/bin/python benchmarks/bench_onnx.py RUN [--repeats 50] [--threads 2] [--name onnx]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import spread, write_result  # noqa: E402


def _interleaved(fns: dict, repeats: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Spread of each callable's wall time, the callables taking turns call by call.

    Taking turns (not one block each) exposes every candidate to the same machine state,
    so a burst of other load, or a thread pool left spinning by the previous block, does
    not land on one side of the ratio only.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: spread(t) for name, t in times.items()}


def bench_model(run: Path, onnx_path: Path, *, threads: int, repeats: int,
                batches: tuple[int, ...]) -> dict:
    """Latency spread of eager and ORT per batch size for one exported model."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from profy.config import config_hash
    from profy.export import NormalizedModel
    from profy.features import NormStats
    from profy.training import load_checkpoint

    meta_sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = meta_sess.get_modelmeta().custom_metadata_map
    mode, fold = meta["mode"], int(meta["fold"])
    names = meta["input_names"].split(",")
    ckpt = load_checkpoint(run / meta["checkpoint"])
    feats = ckpt.config.features
    stats = NormStats.from_json(run / meta["norm_path"], n_mels=feats.n_mels)
    eager = NormalizedModel(ckpt.build_model(), stats, feature_config_hash=config_hash(feats),
                            normalization=feats.normalization).eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    torch.set_num_threads(threads)
    with np.load(onnx_path.with_suffix(".npz")) as ref:
        val = {n: ref[f"val.{n}"] for n in names}
    out = {"mode": mode, "fold": fold, "threads": threads, "repeats": repeats,
           "n_parameters": sum(p.numel() for p in eager.model.parameters()),
           "frames": int(val[names[0]].shape[2 if names[0] == "logmel" else 1])}
    for b in batches:
        feeds = {n: np.ascontiguousarray(np.concatenate([v] * -(-b // v.shape[0]))[:b])
                 for n, v in val.items()}
        tensors = [torch.from_numpy(feeds[n]) for n in names]

        def run_eager(tensors=tensors):
            with torch.inference_mode():
                return eager(*tensors)

        timed = _interleaved({"ort": lambda feeds=feeds: sess.run(None, feeds),
                              "eager": run_eager}, repeats)
        got = sess.run(None, feeds)[0]
        out[f"batch{b}"] = {**timed,
                            "speedup": round(timed["eager"]["median_s"]
                                             / timed["ort"]["median_s"], 2),
                            "max_abs_logit_diff": float(np.abs(got - run_eager()[0].numpy())
                                                        .max())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="run folder with onnx/ (profy export RUN)")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads of both (default 1: at 2 on 2 cores the two "
                        "runtimes' pools interfere and the ratio measures that)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--name", default="onnx",
                   help="results file benchmarks/results/NAME.json (e.g. onnx_paper)")
    args = p.parse_args(argv)
    models = sorted((args.run / "onnx").glob("*.onnx"))
    if not models:
        print(f"{args.run / 'onnx'}: no ONNX model; run `profy export {args.run}`",
              file=sys.stderr)
        return 2
    rows = [bench_model(args.run, m, threads=args.threads, repeats=args.repeats,
                        batches=tuple(args.batches)) for m in models]
    for r in rows:
        print(f"{r['mode']:>10} fold {r['fold']}: " + "  ".join(
            f"b{b}: ORT {1e3 * r[f'batch{b}']['ort']['median_s']:.2f} ms, eager "
            f"{1e3 * r[f'batch{b}']['eager']['median_s']:.2f} ms, x{r[f'batch{b}']['speedup']:.2f}"
            for b in args.batches))
    b1 = [r["batch1"]["speedup"] for r in rows if "batch1" in r]
    write_result(args.name, {"run": str(args.run.resolve()), "threads": args.threads,
                          "batches": args.batches, "models": rows,
                          "target": "ORT >= 2x eager at batch 1",
                          "target_met": bool(b1) and min(b1) >= 2.0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
