"""One fold of one mode: epochs, early stopping on the val split, best-epoch weights kept.

The pre-plan loop kept the last epoch's weights and called them "best". Here the
weights of the best epoch are kept as a deep copy, ``copy.deepcopy(model.state_dict())``:
``state_dict()`` alone returns views of the live parameters, which later optimizer steps
would overwrite. "Best" is ``train.checkpoint_metric``: the lowest val loss (ties: higher
val macro F1; the default, smoother on ~30-70 val takes) or the highest val macro F1
(ties: lower val loss). ``checkpoint="last"`` (legacy profile only) reproduces the bug
on purpose.

Before each validation the sensor encoder's take-level BatchNorm is refitted on the
training takes (:func:`refit_take_norm`), so the evaluated and kept weights carry the
statistics of those very weights, not a running average that lags behind them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from profy.config import TrainConfig
from profy.evaluation.metrics import macro_f1_score
from profy.features import TimeMaskAugment
from profy.training._data import FoldInputs, batch_order, class_weights

__all__ = ["EpochStats", "FoldOutcome", "Predictions", "evaluate", "predict", "train_fold"]

_F1_TIE = 1e-12  # F1 values closer than this are a tie, decided by val loss
_LOSS_TIE = 1e-12  # likewise for val losses under checkpoint_metric="val_loss"


@dataclass
class EpochStats:
    """One epoch of one fold: losses, val metrics, and whether its weights were kept."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_macro_f1: float
    val_accuracy: float
    seconds: float
    best: bool = False  # set after training: this epoch's weights are the checkpoint


@dataclass(frozen=True)
class Predictions:
    """Eval-mode outputs over a set of takes, on the CPU.

    Attributes:
        probability: float64 ``(N,)`` P(pro).
        prediction: int64 ``(N,)`` argmax class.
        logits: float32 ``(N, 2)``.
        weights: float32 ``(N, 2)`` [sensor, audio] fusion weights.
        temperature: float32 ``(N,)`` gate temperature (1 where the mode has no gate).
    """

    probability: np.ndarray
    prediction: np.ndarray
    logits: Tensor
    weights: Tensor
    temperature: Tensor


@dataclass
class FoldOutcome:
    """What :func:`train_fold` returns; ``model`` holds ``state_dict`` on return."""

    state_dict: dict[str, Tensor]  # the kept weights (a deep copy)
    kept_epoch: int  # the epoch ``state_dict`` comes from
    best_epoch: int  # the epoch with the best val criterion (== kept_epoch unless "last")
    history: list[EpochStats] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


# on_gate(epoch, batch, rows, weights (B, 2), quality (B, 5), temperature (B,))
GateHook = Callable[[int, int, Tensor, Tensor, Tensor, Tensor], None]


@torch.no_grad()
def predict(model: nn.Module, inputs: FoldInputs, *, mode: str, batch_size: int) -> Predictions:
    """Run ``model`` in eval mode over ``inputs`` in order (no gradient)."""
    model.eval()
    logits, weights, temps = [], [], []
    for rows in torch.arange(len(inputs)).split(batch_size):
        kw = inputs.batch(rows, mode)
        out = model(**kw)
        logits.append(out.logits.float().cpu())
        weights.append(out.modality_weights.float().cpu())
        gate = getattr(model, "gate", None)
        temps.append(gate.temperature(kw["quality"]).float().cpu() if gate is not None
                     else torch.ones(len(rows)))
    lg = torch.cat(logits)
    probs = torch.softmax(lg.double(), dim=-1)[:, 1]
    return Predictions(probability=probs.numpy(), prediction=lg.argmax(-1).numpy(), logits=lg,
                       weights=torch.cat(weights), temperature=torch.cat(temps))


def evaluate(model: nn.Module, inputs: FoldInputs, *, mode: str, batch_size: int
             ) -> tuple[float, float, float]:
    """``(val_loss, val_macro_f1, val_accuracy)`` of ``model`` on ``inputs``.

    The loss is the plain (unweighted) mean cross-entropy, so it measures the same thing
    whatever ``class_balance`` training used.
    """
    pred = predict(model, inputs, mode=mode, batch_size=batch_size)
    y = inputs.labels.cpu()
    loss = float(nn.functional.cross_entropy(pred.logits, y))
    y_np = y.numpy()
    f1 = float(macro_f1_score(y_np, pred.prediction, labels=[0, 1]))
    return loss, f1, float((pred.prediction == y_np).mean())


@torch.no_grad()
def refit_take_norm(model: nn.Module, train: FoldInputs, *, mode: str, batch_size: int) -> None:
    """Refit the sensor encoder's take-level BatchNorm on every training take, in order.

    Its running average lags behind weights that moved all epoch; the exact statistics of
    the current weights make the evaluated (and kept) model the one that was trained.
    A no-op for models without a key front end (audio mode, ``sensor_frontend=linear``).
    """
    encoder = getattr(model, "sensor_encoder", None)
    if encoder is None or getattr(encoder, "keys", None) is None:
        return
    batches = (train.batch(rows, mode) for rows in torch.arange(len(train)).split(batch_size))
    encoder.refit_take_norm(_padded_sensor(model, kw) for kw in batches)


def _padded_sensor(model: nn.Module, kw: dict[str, Tensor | None]) -> tuple[Tensor, Tensor]:
    """The sensor and mask a batch feeds the sensor encoder (padded as the model pads)."""
    sensor, mask = kw["sensor"], kw["sensor_mask"]
    assert sensor is not None
    return model.prepare_sensor(sensor, mask)


def _better(f1: float, loss: float, best: tuple[float, float] | None, *,
            metric: str = "val_f1") -> bool:
    """Is an epoch with val ``(f1, loss)`` better than ``best`` under ``metric``?"""
    if best is None:
        return True
    best_f1, best_loss = best
    if metric == "val_loss":
        return loss < best_loss - _LOSS_TIE or (abs(loss - best_loss) <= _LOSS_TIE
                                                and f1 > best_f1 + _F1_TIE)
    return f1 > best_f1 + _F1_TIE or (abs(f1 - best_f1) <= _F1_TIE and loss < best_loss)


def _train_epoch(model: nn.Module, train: FoldInputs, cfg: TrainConfig, *, epoch: int,
                 mode: str, shuffle: torch.Generator, log_rng: torch.Generator,
                 loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 spec_augment: TimeMaskAugment | None, on_gate: GateHook | None) -> float:
    """One pass over ``train`` in ``batch_order``; returns the mean training loss.

    ``log_rng`` picks the ~``cfg.gate_log_fraction`` of batches whose gate outputs go to
    ``on_gate`` (multimodal models only).
    """
    model.train()
    gate = getattr(model, "gate", None)
    batches = batch_order(train.labels, cfg.batch_size, class_balance=cfg.class_balance,
                          generator=shuffle)
    n_log = round(cfg.gate_log_fraction * len(batches))
    n_log = max(n_log, 1) if cfg.gate_log_fraction > 0 else 0
    logged = set(torch.randperm(len(batches), generator=log_rng)[:n_log].tolist())
    total, count = 0.0, 0
    for b, rows in enumerate(batches):
        kw = train.batch(rows, mode)
        if spec_augment is not None and kw["logmel"] is not None:
            kw["logmel"], kw["audio_mask"] = spec_augment(kw["logmel"], kw["audio_mask"])
        y = train.labels.index_select(0, rows.to(train.labels.device))
        out = model(**kw)
        loss = loss_fn(out.logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(rows)
        count += len(rows)
        if on_gate is not None and gate is not None and b in logged:
            with torch.no_grad():
                on_gate(epoch, b, rows.cpu(), out.modality_weights.detach().float().cpu(),
                        kw["quality"].float().cpu(), gate.temperature(kw["quality"]).cpu())
    return total / max(count, 1)


def train_fold(model: nn.Module, train: FoldInputs, val: FoldInputs, cfg: TrainConfig, *,
               mode: str, seed: int, spec_augment: TimeMaskAugment | None = None,
               on_gate: GateHook | None = None,
               on_epoch: Callable[[EpochStats, nn.Module], Any] | None = None) -> FoldOutcome:
    """Train ``model`` on ``train`` with early stopping on ``val``; keep the best weights.

    Args:
        model: a fresh ``UnifiedAttentionModel`` already on its device (``train``/``val``
            on the same device).
        train, val: the fold's ``train`` and ``val`` role inputs.
        cfg: epochs, batch size, optimizer, patience, class balance, checkpoint policy.
        mode: the model's mode (which inputs each batch carries).
        seed: seeds the epoch shuffles and the choice of gate-logged batches.
        spec_augment: time masking for training log-mels (audio modes), or ``None``.
        on_gate: called for the sampled ~``cfg.gate_log_fraction`` of training batches
            (multimodal only) with the gate's training-time outputs.
        on_epoch: called after each epoch with its stats and the model (progress, tests).

    Returns:
        FoldOutcome: the kept weights are loaded into ``model`` as well.
    """
    start = time.perf_counter()
    shuffle = torch.Generator().manual_seed(seed)
    log_rng = torch.Generator().manual_seed(seed + 1)  # separate: logging never moves shuffles
    weight = class_weights(train.labels)  # also checks both classes are present
    loss_fn = nn.CrossEntropyLoss(
        weight=weight.to(train.labels.device) if cfg.class_balance == "weighted_loss" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[EpochStats] = []
    best: tuple[float, float] | None = None
    best_epoch, best_state, since_best, stopped = 0, None, 0, False
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        train_loss = _train_epoch(model, train, cfg, epoch=epoch, mode=mode,
                                  shuffle=shuffle, log_rng=log_rng, loss_fn=loss_fn,
                                  optimizer=optimizer, spec_augment=spec_augment,
                                  on_gate=on_gate)
        refit_take_norm(model, train, mode=mode, batch_size=cfg.batch_size)
        val_loss, val_f1, val_acc = evaluate(model, val, mode=mode, batch_size=cfg.batch_size)
        stats = EpochStats(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                           val_macro_f1=val_f1, val_accuracy=val_acc,
                           seconds=time.perf_counter() - t0)
        history.append(stats)
        if _better(val_f1, val_loss, best, metric=cfg.checkpoint_metric):
            best, best_epoch, since_best = (val_f1, val_loss), epoch, 0
            best_state = copy.deepcopy(model.state_dict())  # a copy, not views of live weights
        else:
            since_best += 1
        if on_epoch is not None:
            on_epoch(stats, model)
        if since_best >= cfg.patience and epoch < cfg.epochs:
            stopped = True
            break
    if cfg.checkpoint == "last":  # LEGACY: the final epoch's weights, whatever val said
        kept_epoch, kept_state = history[-1].epoch, copy.deepcopy(model.state_dict())
    else:
        assert best_state is not None
        kept_epoch, kept_state = best_epoch, best_state
    model.load_state_dict(kept_state)
    for stats in history:
        stats.best = stats.epoch == kept_epoch
    return FoldOutcome(state_dict=kept_state, kept_epoch=kept_epoch, best_epoch=best_epoch,
                       history=history, seconds=time.perf_counter() - start,
                       stopped_early=stopped)
