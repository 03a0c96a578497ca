"""ONNX export: the graph equals training's normalization + model, at any B and T."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from profy.config import config_hash
from profy.contract.model_io import input_names, output_names
from profy.export import NormalizedModel, select_models
from profy.export._references import MIN_FRAMES, held_out_ids, load_raw
from profy.features import FeatureStore, NormStats
from profy.training import load_checkpoint, load_corpus, normalize_fold

MODES = ("sensor", "audio", "multimodal")


def _wrapper(run, mode, fold=0):
    ckpt = load_checkpoint(run / "checkpoints" / f"{mode}_fold{fold}.safetensors")
    feats = ckpt.config.features
    stats = NormStats.from_json(run / f"norm_stats/fold_{fold}.json", n_mels=feats.n_mels)
    return ckpt, NormalizedModel(ckpt.build_model(), stats,
                                 feature_config_hash=config_hash(feats),
                                 normalization=feats.normalization).eval()


@pytest.mark.parametrize("which", ["tiny_run_ro", "tiny_legacy_run_ro"])
def test_graph_normalization_equals_training(which, request):
    """Raw features through the wrapper == the model on normalize_fold's inputs (global and
    legacy per-sample), so the exported graph is what training evaluated."""
    run = request.getfixturevalue(which)
    for mode in MODES:
        ckpt, wrapper = _wrapper(run, mode)
        feats = ckpt.config.features
        ids = held_out_ids(run, 0, limit=4)
        store = FeatureStore(run / "features" / "feature_index.parquet")
        corpus = load_corpus(store, ids, features=feats)
        labels = pd.read_parquet(run / "splits.parquet").drop_duplicates("sample_id") \
            .set_index("sample_id")["label"]
        stats = NormStats.from_json(run / "norm_stats/fold_0.json", n_mels=feats.n_mels)
        fold = normalize_fold(corpus, stats, labels, features=feats)
        with torch.inference_mode():
            want = wrapper.model(**{k: v for k, v in fold.batch(torch.arange(len(ids)),
                                                                 mode).items()
                                    if v is not None})
            raw = load_raw(run, list(corpus.sample_ids), input_names(mode))
            got = wrapper(*(torch.from_numpy(raw[n]) for n in input_names(mode)))
        torch.testing.assert_close(got[0], want.logits, rtol=0, atol=1e-6)


def _random_inputs(raw, names, batch, length, rng):
    rows = rng.integers(0, raw[names[0]].shape[0], size=batch)
    out = {}
    for n in names:
        a = raw[n][rows]
        if n in ("sensor", "sensor_mask", "audio_mask"):
            a = a[:, :length]
        elif n == "logmel":
            a = a[:, :, :length]
        out[n] = np.ascontiguousarray(a)
    if "audio_mask" in out:  # a silent row: edge case of the masked pooling
        out["audio_mask"][0] = False
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_round_trip_other_lengths_and_batches(onnx_run_ro, mode):
    """ORT == eager at lengths and batch sizes the export never saw (B=2, T=frames)."""
    run = onnx_run_ro
    _, wrapper = _wrapper(run, mode)
    names, outs = input_names(mode), output_names(mode)
    raw = load_raw(run, held_out_ids(run, 0), names)
    sess = ort.InferenceSession(str(run / "onnx" / f"{mode}_fold0.onnx"),
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch, length in [(1, 64), (3, 251), (7, 560), (5, 333), (2, 17 * 8)]:
        feeds = _random_inputs(raw, names, batch, length, rng)
        got = sess.run(list(outs), feeds)
        with torch.inference_mode():
            want = wrapper(*(torch.from_numpy(feeds[n]) for n in names))
        for name, g, w in zip(outs, got, want, strict=True):
            assert g.shape == tuple(w.shape) == (batch, 2), name
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
        assert (got[1].argmax(1) == want[1].numpy().argmax(1)).all()


@pytest.mark.slow
def test_metadata_symbolic_axes_and_references(onnx_run_ro):
    run = onnx_run_ro
    run_hash = (run / "config_hash").read_text().strip()
    for mode in MODES:
        path = run / "onnx" / f"{mode}_fold0.onnx"
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["mode"] == mode and meta["fold"] == "0"
        assert meta["config_hash"] == run_hash
        assert meta["input_names"].split(",") == list(input_names(mode))
        assert meta["output_names"].split(",") == list(output_names(mode))
        shapes = json.loads(meta["input_shapes"])
        for name in input_names(mode):
            assert shapes[name][0] == "B"
        for inp in proto.graph.input:
            dims = inp.type.tensor_type.shape.dim
            assert dims[0].dim_param, inp.name  # batch symbolic
            if inp.name != "quality":
                t_axis = 2 if inp.name == "logmel" else 1
                assert dims[t_axis].dim_param, inp.name  # time symbolic
        with np.load(path.with_suffix(".npz")) as ref:
            cases = ref["__cases__"].tolist()
            assert {"val", "batch1", "batch_many", "shortest", "odd_length"} <= set(cases)
            assert ("silent" in cases) == (mode != "sensor")
            for name in (*input_names(mode), *output_names(mode)):
                assert name in ref.files
            assert ref["batch1.probs"].shape == (1, 2)
            assert ref["batch_many.probs"].shape[0] >= 16
            t_shapes = {ref[f"{c}.{input_names(mode)[1]}"].shape[1] for c in cases}
            assert len(t_shapes) >= 3  # full, shortest, odd: lengths the export never saw
            assert min(t_shapes) >= MIN_FRAMES  # no case below the declared Dim min


def test_select_models_picks_best_fold(tiny_run_ro, tmp_path):
    """Best by the kept epoch's VALIDATION macro F1 (epochs.parquet), never by held-out
    F1 (issue 18 item 10: a fold picked on held-out scores carries the winner's curse)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    epochs = pq.read_table(tiny_run_ro / "epochs.parquet").to_pylist()
    kept = {(r["mode"], r["fold"]): r["val_macro_f1"] for r in epochs if r["best"]}
    pairs = dict(select_models(tiny_run_ro))
    assert set(pairs) == set(MODES)
    for mode, fold in pairs.items():
        val = {k: f1 for (m, k), f1 in kept.items() if m == mode}
        assert val[fold] == max(val.values())
    # held-out scores do not move the choice: make fold 2 the best on validation only
    run = tmp_path / "run"
    shutil.copytree(tiny_run_ro, run, symlinks=True)
    for r in epochs:
        if r["best"]:
            r["val_macro_f1"] = 0.9 if r["fold"] == 2 else 0.1
    pq.write_table(pa.Table.from_pylist(epochs, schema=pq.read_schema(run / "epochs.parquet")),
                   run / "epochs.parquet")
    results = json.loads((run / "complete_results.json").read_text())
    for block in results["modes"].values():  # and the worst on held-out takes
        for k, row in block["folds"].items():
            row["macro_f1"] = 0.0 if k == "2" else 1.0
    (run / "complete_results.json").write_text(json.dumps(results))
    assert dict(select_models(run)) == dict.fromkeys(MODES, 2)
    assert select_models(tiny_run_ro, modes=["audio"], fold=2) == [("audio", 2)]
    assert len(select_models(tiny_run_ro, all_folds=True)) == 9


def test_select_models_missing_checkpoint_is_clear(tmp_path):
    from profy.errors import MissingInputError

    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(MissingInputError, match="checkpoints"):
        select_models(tmp_path)


@pytest.mark.slow
def test_export_is_deterministic(onnx_run_ro, tmp_path):
    """Same checkpoint -> same ONNX bytes (a second export, in another fresh process)."""
    from profy.export import export_model

    again = export_model(onnx_run_ro, "sensor", 0, out_dir=tmp_path)
    first = (onnx_run_ro / "onnx" / "sensor_fold0.onnx").read_bytes()
    assert Path(again.onnx_path).read_bytes() == first
    assert again.size_bytes == len(first) and again.max_abs_error < 1e-4


@pytest.mark.slow
def test_paper_architecture_exports_with_a_dynamic_time_axis(tiny_corpus_ro, tmp_path):
    """The paper's architecture (TCN audio stream, audio stride 8, fusion stride 4, 2-layer
    BiLSTM head) exports with a symbolic T and ORT == eager at lengths it never saw.

    Its BiLSTM runs over a DERIVED length, T_pad / 4; the exporter's step 2 used to unroll
    the LSTM over it at the example length and fail (``stack expects each tensor to be
    equal size``). Paper switches at a tiny width, one fold pair and epoch: ~1 min.
    """
    from profy.config import load_profile
    from profy.export import export_model
    from profy.training import train

    cfg = load_profile("paper", ["model.hidden=8", "model.cnn_channels=[4, 4, 4]",
                                 "model.gate_hidden=8", "train.epochs=1", "train.n_folds=2",
                                 "train.modes=[multimodal]"])
    m = cfg.model
    assert (m.head, m.head_layers, m.use_tcn, m.fusion_stride, m.audio_time_stride) == (
        "bilstm", 2, True, 4, 8)
    run = Path(train(cfg, tiny_corpus_ro, tmp_path / "runs", cache_dir=tmp_path / "cache",
                     profile="paper").run_dir)
    result = export_model(run, "multimodal", 0)
    assert result.max_abs_error < 1e-4 and not list((run / "onnx").glob("*.export.log"))

    _, wrapper = _wrapper(run, "multimodal")
    names, outs = input_names("multimodal"), output_names("multimodal")
    raw = load_raw(run, held_out_ids(run, 0), names)
    export_length = raw["sensor"].shape[1]
    sess = ort.InferenceSession(result.onnx_path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for batch, length in [(3, export_length - 101), (1, MIN_FRAMES + 3)]:
        feeds = _random_inputs(raw, names, batch, length, rng)
        got = sess.run(list(outs), feeds)
        with torch.inference_mode():
            want = wrapper(*(torch.from_numpy(feeds[n]) for n in names))
        for name, g, w in zip(outs, got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_failed_export_is_one_line_and_keeps_the_log(tiny_run_ro, tmp_path, monkeypatch):
    """An exporter failure: one line naming the model, the run and the root cause; the
    exporter's full output stays in <mode>_fold<K>.export.log; no .onnx is written."""
    import os

    from profy.errors import ExportError
    from profy.export import export_in_process

    def broken(*args, **kwargs):
        os.write(2, b"exporter chatter on fd 2\n")  # native output, as torch's C++ logs
        try:
            raise RuntimeError("stack expects each tensor to be equal size\n(details)")
        except RuntimeError as exc:
            raise ValueError("Failed to decompose the FX graph. This is step 2/3.") from exc

    monkeypatch.setattr(torch.onnx, "export", broken)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(ExportError) as info:
            export_in_process(tiny_run_ro, "sensor", 0, out_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    message, log = str(info.value), tmp_path / "sensor_fold0.export.log"
    assert "\n" not in message
    assert f"sensor fold 0 of {tiny_run_ro.resolve()}" in message and str(log) in message
    assert ("Failed to decompose the FX graph: RuntimeError: stack expects each tensor to be "
            "equal size") in message
    text = log.read_text()
    assert "exporter chatter on fd 2" in text and "Traceback" in text and "(details)" in text
    assert not list(tmp_path.glob("*.onnx"))


def _block_swap(perm: list[int]) -> bool:
    """True if ``perm`` keeps a leading run of axes and swaps the two blocks after it
    (``[0, 3, 1, 2]``, ``[0, 2, 1]``): ONNX Runtime runs that as a batched 2-D transpose;
    any other permutation (``[0, 3, 2, 1]``) takes its generic path, ~14x slower on the
    audio CNN's feature map."""
    n = len(perm)
    return perm == list(range(n)) or any(
        perm == [*range(a), *range(c, n), *range(a, c)]
        for a in range(n) for c in range(a + 1, n))


def test_graph_uses_the_ops_onnx_runtime_runs_fast(onnx_run_ro):
    """What made ORT >= 2x eager at batch 1 stays in the graph users deploy: GELU is one
    ``Gelu`` op (not the five-node erf chain) and every Transpose is a block swap."""
    assert _block_swap([0, 3, 1, 2]) and _block_swap([0, 2, 1]) and _block_swap([0, 1, 3, 2])
    assert not _block_swap([0, 3, 2, 1]) and not _block_swap([1, 0, 3, 2])
    for mode in MODES:
        proto = onnx.load(str(onnx_run_ro / "onnx" / f"{mode}_fold0.onnx"))
        ops = [n.op_type for n in proto.graph.node]
        assert "Erf" not in ops and "Gelu" in ops, mode
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 20
        perms = [list(a.ints) for n in proto.graph.node if n.op_type == "Transpose"
                 for a in n.attribute if a.name == "perm"]
        assert perms and all(_block_swap(p) for p in perms), (mode, perms)
