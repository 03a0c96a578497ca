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
