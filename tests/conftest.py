"""Shared fixtures: one tiny synthetic corpus per test session, copied before mutation."""

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_corpus_ro(tmp_path_factory) -> Path:
    """A tiny synthetic corpus, generated once; treat as read-only."""
    from profy.data import synthesize_corpus

    root = tmp_path_factory.mktemp("tiny") / "corpus"
    synthesize_corpus(root, size="tiny", seed=7)
    return root


@pytest.fixture
def tiny_corpus(tiny_corpus_ro, tmp_path) -> Path:
    """A private copy of the tiny corpus that a test may break."""
    dst = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_ro, dst, symlinks=True)
    return dst


def _train_tiny(corpus: Path, out: Path, profile: str, epochs: int = 2) -> Path:
    from profy.config import load_profile
    from profy.training import train

    cfg = load_profile(profile, [f"train.epochs={epochs}"])
    result = train(cfg, corpus, out / "runs", cache_dir=out / "cache", profile=profile)
    return Path(result.run_dir)


@pytest.fixture(scope="session")
def tiny_run_ro(tiny_corpus_ro, tmp_path_factory) -> Path:
    """A real mm-audiofix run folder (3 modes x 3 folds, 2 epochs), built once; read-only."""
    return _train_tiny(tiny_corpus_ro, tmp_path_factory.mktemp("tiny_run"), "mm-audiofix")


@pytest.fixture(scope="session")
def tiny_legacy_run_ro(tiny_corpus_ro, tmp_path_factory) -> Path:
    """A real legacy-20250925 run folder on the same corpus and splits; read-only."""
    return _train_tiny(tiny_corpus_ro, tmp_path_factory.mktemp("tiny_legacy"), "legacy-20250925")


@pytest.fixture
def tiny_run(tiny_run_ro, tmp_path) -> Path:
    """A private copy of the tiny run folder that a test may mutate."""
    dst = tmp_path / tiny_run_ro.name
    shutil.copytree(tiny_run_ro, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def onnx_run_ro(tiny_run_ro, tmp_path_factory) -> Path:
    """A copy of ``tiny_run_ro`` with fold 0 of every mode exported to onnx/ (3 exports in
    fresh processes, 2 at once, ~1-2 min); read-only."""
    from profy.export import export_models

    dst = tmp_path_factory.mktemp("onnx_run") / tiny_run_ro.name
    shutil.copytree(tiny_run_ro, dst, symlinks=True)
    export_models(dst, [("sensor", 0), ("audio", 0), ("multimodal", 0)], workers=2)
    return dst


@pytest.fixture
def onnx_run(onnx_run_ro, tmp_path) -> Path:
    """A private copy of ``onnx_run_ro`` that a test may break."""
    dst = tmp_path / onnx_run_ro.name
    shutil.copytree(onnx_run_ro, dst, symlinks=True)
    return dst
