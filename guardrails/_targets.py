"""What a command names on its command line, resolved to the run folder a context opens.

``guardrails onnx`` takes a run folder or one of its ``onnx/*.onnx`` models; every other
run command takes a run folder. Each failure is bad input (exit 2) naming the path.
"""

from __future__ import annotations

from pathlib import Path

from guardrails.errors import BadInputError
from profy.contract.layout import CONFIG_FILE, ONNX_DIR

__all__ = ["onnx_target", "run_folder"]


def run_folder(path: Path) -> Path:
    """``path`` when it is a folder.

    Raises:
        BadInputError: it is not (no such directory).
    """
    if not path.is_dir():
        raise BadInputError(path, "not a run folder (no such directory)")
    return path


def onnx_target(target: Path) -> tuple[Path, list[Path] | None]:
    """``(run_dir, models or None for all)`` of a run folder or a ``RUN/onnx/*.onnx`` file.

    Raises:
        BadInputError: no such path, a run without ``onnx/``, or a model outside a run
            folder's ``onnx/``.
    """
    if target.is_dir():
        if not (target / ONNX_DIR).is_dir():
            raise BadInputError(target / ONNX_DIR, "the run has no ONNX models (run "
                                                   "`profy export RUN`)")
        return target, None
    if not target.exists():
        raise BadInputError(target, "no such ONNX model or run folder")
    run = target.resolve().parent.parent
    if target.resolve().parent.name != ONNX_DIR or not (run / CONFIG_FILE).is_file():
        raise BadInputError(target, "an ONNX model must sit in RUN/onnx/ beside its run's "
                                    "config.yaml")
    return run, [target.resolve()]
