"""``profy export``: argument parsing and bad input (no export runs here)."""

import pytest

from profy.cli import build_parser, main


def test_export_arguments():
    args = build_parser().parse_args(["export", "RUN", "--mode", "sensor", "--fold", "1",
                                      "--tag", "sensor-v1", "--workers", "1"])
    assert (args.mode, args.fold, args.tag, args.workers, args.all_folds) == (
        "sensor", 1, "sensor-v1", 1, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "RUN", "--fold", "1", "--all-folds"])


def test_export_of_a_folder_without_checkpoints_exits_2(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    assert main(["export", str(tmp_path)]) == 2
    assert "checkpoints" in capsys.readouterr().err
