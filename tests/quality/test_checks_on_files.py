"""Each recording check on real files: a take with the defect fails it, a clean take passes.

The files are a ``tiny-defects`` synthetic corpus: 44.1 kHz float32 stereo
WAVE_FORMAT_EXTENSIBLE, as the real layout, each defect planted by the generator with its
ground truth in ``planted_defects.csv``. Every take is read back by the real readers,
measured by :func:`profy.quality.take_quality` (the columns ``profy features`` writes) and
judged by the ``data.recording`` / ``data.sync`` rules under the default criteria.
"""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import soundfile as sf
import yaml

from guardrails.checks.data_quality_recording import RECORDING_RULES, SYNC_RULES, failing_takes
from profy.data._readers import read_audio, read_sensor
from profy.data._synth_config import FLAGGED_BY
from profy.quality import take_quality

CRITERIA = Path(__file__).parents[2] / "guardrails" / "criteria" / "default.yaml"
CASES = FLAGGED_BY  # rule -> the planted defects that must break it


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    from profy.data import synthesize_corpus

    root = tmp_path_factory.mktemp("defects") / "corpus"
    synthesize_corpus(root, size="tiny-defects", seed=0)
    truth = pd.read_csv(root / "planted_defects.csv", dtype=str, keep_default_na=False)
    rows = []
    for sid in truth.playdata_id:
        files = root / "playdata" / sid / "files"
        wav = files / "sound" / "sound_raw.wav"
        info = sf.info(wav)
        assert (info.format, info.subtype, info.samplerate, info.channels) == \
            ("WAVEX", "FLOAT", 44100, 2)
        audio, sensor = read_audio(wav), read_sensor(files / "hackkey" / "hackkey.csv")
        rows.append({"sample_id": sid, **take_quality(audio.samples, audio.sample_rate,
                                                      sensor.times, sensor.keys)})
    criteria = yaml.safe_load(CRITERIA.read_text())["checks"]
    table = pa.Table.from_pylist(rows)
    failing = failing_takes(table, RECORDING_RULES, criteria["data.recording"])
    sync_failing = failing_takes(table, SYNC_RULES, criteria["data.sync"])
    failing["sync"] = sorted(set().union(*sync_failing.values()))
    kinds = {r.playdata_id: set(filter(None, r.defects.split(";"))) for r in truth.itertuples()}
    return failing, kinds, {r["sample_id"]: r for r in rows}, truth


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_flags_the_defect_and_passes_a_clean_take(measured, rule):
    failing, kinds, _, _ = measured
    with_defect = {sid for sid, k in kinds.items() if k & CASES[rule]}
    clean = {sid for sid, k in kinds.items() if not k}
    assert with_defect, f"the tiny-defects corpus plants no {CASES[rule]}"
    assert clean
    flagged = set(failing[rule])
    assert with_defect <= flagged, f"{rule} missed {with_defect - flagged}"
    assert not flagged & clean, f"{rule} flagged clean takes {flagged & clean}"


def test_sync_offset_matches_the_true_sensor_lead(measured):
    _, kinds, rows, truth = measured
    lead = dict(zip(truth.playdata_id, truth.sensor_lead_s.astype(float), strict=True))
    errors = [abs(rows[s]["sync_offset_s"] - lead[s]) for s in lead if not kinds[s] & {
        "cut_truncated", "cut_zeros"}]
    assert len(errors) >= 10
    assert max(errors) < 0.05  # 10 ms blocks; the key travels a little before the strike
