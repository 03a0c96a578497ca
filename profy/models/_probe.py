"""Measure, on the model itself, how many mel channels reach the audio encoder.

The config's ``model.audio_channels_used`` says how many channels the audio CNN *should*
see; a reshape or slicing bug in ``forward`` would not change it. So the figure written
into ``model_summary.json`` (and checked by ``gate.audio_channels``) is measured: one probe
batch goes through ``UnifiedAttentionModel.forward`` with row 0 all zeros and row ``c + 1``
holding a 1 on mel channel ``c`` only; a forward pre-hook on the first ``Conv2d`` of
``audio_cnn2d`` captures the tensor entering it (``(B, 1, F, T)``) and stops the forward
there. A mel channel *reaches the encoder* when its row differs from row 0 there, however
the model reshaped, sliced or repeated the mel axis on the way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["PROBE_METHOD", "measure_audio_channels"]

PROBE_METHOD = ("forward probe: one mel channel set per row, tensor entering "
                "audio_encoder.cnn.convs[0] compared with an all-zero row")


class _Captured(Exception):
    """Raised by the hook to stop the probe forward once the encoder input is captured."""


@torch.no_grad()
def measure_audio_channels(model: nn.Module) -> dict[str, Any]:
    """Run the probe on ``model`` (a ``UnifiedAttentionModel``); its mode is restored.

    Args:
        model: the model to measure (any device).

    Returns:
        dict: ``channels`` (input mel channels that change the first audio Conv2d's input;
        0 without an audio encoder), ``n_mels_in``, ``encoder_input_shape`` (``[1, F, T]``
        of one probe row at that conv, ``None`` without an audio encoder) and ``method``.

    Raises:
        RuntimeError: the probe forward never reached the audio encoder's first Conv2d.
    """
    cfg = model.cfg
    out: dict[str, Any] = {"channels": 0, "n_mels_in": cfg.n_mels_in,
                           "encoder_input_shape": None, "method": PROBE_METHOD}
    if model.audio_encoder is None:
        return out
    param = next(model.parameters())
    n, frames = cfg.n_mels_in, max(16, 2 * model.time_multiple)
    rows = torch.arange(n)
    logmel = torch.zeros(n + 1, n, frames)
    logmel[rows + 1, rows, :] = 1.0  # row c + 1: mel channel c only
    ones = torch.ones(n + 1, frames, dtype=torch.bool)
    inputs: dict[str, torch.Tensor] = {"logmel": logmel, "audio_mask": ones}
    if model.sensor_encoder is not None:
        inputs |= {"sensor": torch.zeros(n + 1, frames, cfg.n_keys), "sensor_mask": ones}
    if model.gate is not None:
        inputs["quality"] = torch.zeros(n + 1, cfg.quality_dim)
    inputs = {k: v.to(param.device, v.dtype if v.dtype == torch.bool else param.dtype)
              for k, v in inputs.items()}
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0].detach())
        raise _Captured

    handle = model.audio_encoder.cnn.convs[0].register_forward_pre_hook(hook)
    was_training = model.training
    model.eval()
    try:
        model(**inputs)
    except _Captured:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise RuntimeError("the probe forward never reached audio_encoder.cnn.convs[0]")
    x = captured[0].float()  # (n + 1, 1, F, T)
    changed = (x[1:] - x[:1]).flatten(1).abs().amax(dim=1) > 0  # (n,)
    out |= {"channels": int(changed.sum()), "encoder_input_shape": list(x.shape[1:])}
    return out
