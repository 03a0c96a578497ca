"""One input policy: ``data inspect`` lists exactly the takes the feature pipeline refuses.

A family of broken corpora (each take clean or broken by one defect of
:mod:`broken_inputs`) is inspected, then every take is put through the feature pipeline
alone. Inspect must name every take the pipeline raises on (with its file, in full) and
no take the pipeline accepts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from broken_inputs import DEFECTS, write_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profy.data import InputPolicy, build_manifest, inspect_corpus
from profy.errors import ProfyError
from profy.features import compute_features

N_TAKES = 4


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("policy") / "corpus"
    write_corpus(root, N_TAKES)
    return root, build_manifest(root).table  # every take good: the pipeline's input rows


def _pipeline_refuses(root: Path, table, sample_id: str, scratch: Path) -> str | None:
    one = table.filter(table["sample_id"].to_numpy(zero_copy_only=False) == sample_id)
    try:
        compute_features(root, one, scratch / sample_id, cache_dir=scratch / "cache", workers=1)
    except ProfyError as exc:
        return str(exc)
    return None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(st.sampled_from([None, *DEFECTS]), min_size=N_TAKES, max_size=N_TAKES))
def test_inspect_lists_exactly_what_features_refuse(clean, plan):
    base, table = clean
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        shutil.copytree(base, root)
        ids = table["sample_id"].to_pylist()
        for sample_id, name in zip(ids, plan, strict=True):
            if name is not None:
                DEFECTS[name].apply(root / "playdata" / sample_id)
        report = inspect_corpus(root)
        listed = {p["sample_id"]: p for p in report.problems}
        refused = {s: _pipeline_refuses(root, table, s, Path(tmp) / "out") for s in ids}
        assert set(listed) == {s for s, err in refused.items() if err is not None}
        for sample_id, problem in listed.items():
            # the same file and words as the pipeline's error, the path in full
            file = problem["path"]
            assert file.startswith(f"playdata/{sample_id}/")
            assert file in refused[sample_id] and problem["problem"] in refused[sample_id]


def test_policy_follows_the_feature_config():
    from profy.config import FeatureConfig

    policy = InputPolicy.from_features(FeatureConfig(input_sample_rate=0, n_fft=2048))
    assert policy.input_sample_rate == 0 and policy.min_audio_frames(44_100) == 5644
