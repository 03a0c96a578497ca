"""Checkpoints in safetensors (no code runs on load) and the semantic-tag registry.

A checkpoint describes itself: its safetensors metadata (string to string) carries the
resolved run config, the mode and fold, the kept epoch's metrics and the model summary
as JSON strings, so a file alone is enough to rebuild and audit the model. Loading
reads tensors and JSON only; nothing is unpickled.

Tags (``sensor-v1``, ``mm-audiofix``, ...) name released checkpoints in a JSON registry:
a tag resolves to a run folder, a mode, a fold set and the SHA-256 of every file, which
:func:`resolve_tag` re-verifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from profy.config import RunConfig, config_hash, from_dict, to_dict
from profy.contract.atomic import atomic_write_bytes
from profy.contract.layout import CHECKPOINTS_DIR, checkpoint_folds, checkpoint_name
from profy.contract.tags import TagEntry, add_tag, check_new_tag, list_tags, resolve_tag
from profy.errors import MalformedFileError, MissingInputError

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "TagEntry", "checkpoint_name", "list_tags",
           "load_checkpoint", "register_tag", "resolve_tag", "save_checkpoint"]

CHECKPOINT_FORMAT = "profy-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: weights plus the provenance stored beside them."""

    state_dict: dict[str, Tensor]
    config: RunConfig
    mode: str
    fold: int
    metrics: dict[str, Any]
    summary: dict[str, Any]
    path: Path

    def build_model(self) -> torch.nn.Module:
        """A ``UnifiedAttentionModel`` with these weights, in eval mode."""
        from profy.models import UnifiedAttentionModel

        model = UnifiedAttentionModel(self.config.model, self.mode)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(path: str | Path, state_dict: dict[str, Tensor], *, config: RunConfig,
                    mode: str, fold: int, metrics: dict[str, Any],
                    summary: dict[str, Any] | None = None) -> Path:
    """Write ``state_dict`` and its provenance to ``path`` atomically (safetensors).

    Args:
        path: target file, ``checkpoints/<mode>_fold<K>.safetensors`` in a run.
        state_dict: the weights to keep (moved to CPU, made contiguous).
        config: the run's resolved config (stored as JSON, with its hash).
        mode, fold: which model this is.
        metrics: JSON-ready numbers, e.g. kept epoch and its val/test scores.
        summary: ``model.summary()``.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    metadata = {
        "format": CHECKPOINT_FORMAT, "mode": mode, "fold": str(int(fold)),
        "config": json.dumps(to_dict(config), sort_keys=True),
        "config_hash": config_hash(config),
        "metrics": json.dumps(metrics, sort_keys=True, allow_nan=False),
        "model_summary": json.dumps(summary or {}, sort_keys=True),
    }
    return atomic_write_bytes(path, _sorted_metadata(save(tensors, metadata=metadata)))


def _sorted_metadata(raw: bytes) -> bytes:
    """``raw`` with its header's ``__metadata__`` keys sorted, so a checkpoint's bytes
    depend on its content alone (safetensors writes them in a hash map's random order).

    The header is re-serialized only when doing so reproduces safetensors' own bytes for
    the original order (same length, same padding); otherwise ``raw`` is returned as is.
    """
    size = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + size]
    text = header.rstrip(b" ")
    obj = json.loads(text)

    def dump(o: dict[str, Any]) -> bytes:
        return json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    if "__metadata__" not in obj or dump(obj) != text:
        return raw
    meta = obj.pop("__metadata__")
    canonical = dump({"__metadata__": dict(sorted(meta.items())), **obj})
    return raw[:8] + canonical + header[len(text):] + raw[8 + size:]


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (safetensors only, no pickle).

    Raises:
        MissingInputError: no such file.
        MalformedFileError: not a safetensors file, another format, or metadata whose
            config does not match its recorded hash.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(path, "checkpoint file does not exist")
    try:
        with safe_open(str(path), framework="pt", device=map_location) as handle:
            meta = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises several types for a bad file
        raise MalformedFileError(path, f"not a readable safetensors file ({exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise MalformedFileError(path, f"format {meta.get('format')!r}, expected "
                                       f"{CHECKPOINT_FORMAT!r}")
    try:
        config = from_dict(RunConfig, json.loads(meta["config"]), where=f"{path.name} config")
        metrics, summary = json.loads(meta["metrics"]), json.loads(meta["model_summary"])
        fold = int(meta["fold"])
        mode = meta["mode"]
    except (KeyError, ValueError) as exc:
        raise MalformedFileError(path, f"checkpoint metadata is incomplete or invalid ({exc})"
                                 ) from None
    if config_hash(config) != meta.get("config_hash"):
        raise MalformedFileError(path, "stored config does not match its config_hash")
    return Checkpoint(state_dict=state, config=config, mode=mode, fold=fold, metrics=metrics,
                      summary=summary, path=path)


def register_tag(registry: str | Path, tag: str, run_dir: str | Path, *, mode: str,
                 folds: tuple[int, ...] | None = None, replace: bool = False) -> TagEntry:
    """Name ``mode``'s checkpoints of ``run_dir`` with ``tag`` in the registry file.

    Args:
        registry: the registry JSON (created if absent, rewritten atomically). A run
            under its folder is stored relative to it, so the runs folder stays valid when
            moved or mounted elsewhere (e.g. at ``/runs`` in the guardrails image); a run
            elsewhere is stored as an absolute path.
        tag: lowercase letters, digits, ``.``, ``_``, ``-`` (e.g. ``mm-audiofix``).
        run_dir: a finished run folder.
        mode: which mode's checkpoints.
        folds: which folds. (Default: every ``checkpoints/<mode>_fold*.safetensors``)
        replace: allow moving an existing tag. (Default: ``False``)

    Raises:
        ConfigError: a bad tag name, or an existing tag without ``replace``.
        MissingInputError: a checkpoint is missing.
    """
    check_new_tag(registry, tag, replace=replace)  # before opening any checkpoint
    run_dir = Path(run_dir).resolve()
    folds = checkpoint_folds(run_dir, mode) if folds is None else tuple(folds)
    hashes = {config_hash(load_checkpoint(run_dir / CHECKPOINTS_DIR / checkpoint_name(mode, k))
                          .config) for k in folds}
    return add_tag(registry, tag, run_dir, mode=mode, folds=folds, config_hashes=hashes,
                   replace=replace)
