"""The ``(mode, fold)`` pairs a semantic tag names, checked before anything is exported.

``profy export RUN --tag T`` releases what ``profy tag`` named, not whatever the other
flags would pick: the tag is resolved in the run's registry (``RUN/../tags.json``, as
``profy tag`` writes it), its files are re-hashed, and it must name this very run, so an
ONNX file whose metadata says ``tag=T`` holds exactly T's checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from profy.contract.layout import checkpoint_folds, default_registry

__all__ = ["select_tagged"]


def select_tagged(run_dir: str | Path, tag: str, *, registry: str | Path | None = None,
                  mode: str | None = None, fold: int | None = None,
                  all_folds: bool = False) -> list[tuple[str, int]]:
    """The tag's ``(mode, fold)`` pairs in ``run_dir``, after re-hashing its files.

    ``mode``, ``fold`` and ``all_folds`` may restate the tag's selection (the same mode;
    ``fold`` when the tag names that fold alone; ``all_folds`` when it names every fold
    checkpoint of its mode) but never change it.

    Args:
        run_dir: the run to export.
        tag: a tag of the registry.
        registry: the registry file. (Default: :func:`profy.contract.layout.default_registry`)

    Raises:
        MissingInputError: no registry file, or a tagged file is gone.
        ConfigError: unknown tag, a tag of another run, or a conflicting mode/fold flag.
        MalformedFileError: a tagged file changed since it was tagged, or a bad registry.
    """
    from profy.contract.tags import resolve_tag
    from profy.errors import ConfigError, MissingInputError

    run_dir = Path(run_dir).resolve()
    registry = Path(registry) if registry is not None else default_registry(run_dir)
    if not registry.is_file():  # else "unknown tag" would hide that the file is absent
        raise MissingInputError(registry, f"no tag registry here to resolve tag {tag!r} "
                                          "(`profy tag` writes it; or pass --registry)")
    entry = resolve_tag(registry, tag, verify=True)
    where = f"tag {tag!r} in {registry}"
    tagged_run = Path(entry.run_dir).resolve()  # compare real paths, not spellings
    if tagged_run != run_dir:
        raise ConfigError(f"{where} names run {tagged_run}, not {run_dir}")
    folds = list(entry.folds)
    if mode is not None and mode != entry.mode:
        raise ConfigError(f"--mode {mode} conflicts with {where} (mode {entry.mode}); "
                          "drop --mode, the tag selects it")
    if fold is not None and folds != [fold]:
        raise ConfigError(f"--fold {fold} conflicts with {where} (folds "
                          f"{','.join(map(str, folds))}); drop --fold, the tag selects them")
    if all_folds:
        every = list(checkpoint_folds(run_dir, entry.mode))
        if sorted(folds) != every:
            raise ConfigError(f"--all-folds conflicts with {where} (folds "
                              f"{','.join(map(str, folds))}); drop it, the tag selects them")
    return [(entry.mode, k) for k in folds]
