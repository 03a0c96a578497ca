"""``profy train`` flags checked before any training: --only-fold needs --run-dir, --device."""

from types import SimpleNamespace

import pytest

import profy.training
from profy.cli import main
from profy.config import to_dict


def test_only_fold_without_run_dir_is_a_usage_error(tiny_corpus_ro, tmp_path, capsys):
    runs = tmp_path / "runs"  # a real corpus: only the missing --run-dir may stop the job
    argv = ["train", "--config", "mm-audiofix", "--data", str(tiny_corpus_ro), "--out",
            str(runs), "--only-fold", "1", "--modes", "sensor", "--epochs", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--only-fold" in err and "--run-dir" in err
    assert not runs.exists()  # no experiment_* folder a later `profy collect` cannot merge


@pytest.fixture
def trained_with(monkeypatch):
    """Runs `profy train ARGV` with training replaced by a recorder of the resolved config."""
    seen = []

    def fake_train(cfg, *args, **kwargs):
        seen.append(cfg)
        return SimpleNamespace(run_dir="RUN")

    monkeypatch.setattr(profy.training, "train", fake_train)
    monkeypatch.setattr(profy.training, "render_cv_result", lambda *a, **k: None)

    def run(*flags):
        assert main(["train", "--config", "mm-audiofix", "--data", "DATA", "--out", "RUNS",
                     *flags]) == 0
        return to_dict(seen.pop())  # what the run's config.yaml records

    return run


def test_device_flag_sets_train_device(trained_with, capsys):
    assert trained_with()["train"]["device"] == "auto"  # the profile's default
    assert trained_with("--device", "cpu")["train"]["device"] == "cpu"
    # --set is applied last, as for every other flag
    assert trained_with("--device", "cpu", "--set", "train.device=auto")["train"]["device"] \
        == "auto"
    with pytest.raises(SystemExit):
        main(["train", "--device", "gpu"])
    assert main(["train", "--resume", "RUN", "--device", "cpu"]) == 2
    assert "--device" in capsys.readouterr().err
