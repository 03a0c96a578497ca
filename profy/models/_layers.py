"""Masked building blocks shared by the encoders and the fusion gate.

Every module here takes a boolean mask beside its tensor (True = valid frame) and keeps
one invariant: **values at invalid frames never reach a valid output** (see
:mod:`profy.models._encoders`). Masks are downsampled by reshape + ``amax``, which the
dynamo ONNX exporter keeps symbolic in T (``F.max_pool1d`` would tie its kernel to the
example length).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TCN", "MaskedAttentionPool", "downsample_mask", "pad_time", "zero_invalid"]

# Score given to invalid frames before the softmax: exp(-1e9 - max) is exactly 0.0 in
# float32, so padded frames get exactly zero weight (-inf would give NaN on empty rows).
_NEG_FILL = -1e9


def pad_time(x: Tensor, multiple: int, dim: int = -1, value: float | bool = 0) -> Tensor:
    """Pad dimension ``dim`` at its end up to the next multiple of ``multiple``.

    The pad amount is symbolic arithmetic on the (possibly dynamic) length, so the ONNX
    graph computes it at run time instead of baking in the example length.

    Args:
        x (Tensor): any tensor; ``dim`` is its time axis.
        multiple (int): a positive int.
        dim (int, optional): time axis. (Default: ``-1``)
        value (float or bool, optional): fill value (``False`` for masks). (Default: ``0``)

    Returns:
        Tensor: same as ``x`` with ``dim`` of length ``ceil(T / multiple) * multiple``.
    """
    if multiple == 1:
        return x
    length = x.shape[dim]
    extra = (multiple - length % multiple) % multiple
    dim = dim % x.dim()
    pads = [0, 0] * (x.dim() - 1 - dim) + [0, extra]  # F.pad lists the LAST dim first
    return F.pad(x, pads, value=value)


def downsample_mask(mask: Tensor, factor: int) -> Tensor:
    """Coarsen a frame mask: a coarse frame is valid if any of its ``factor`` frames is.

    Args:
        mask (Tensor): ``(B, L)`` bool, ``L`` a multiple of ``factor``.
        factor (int): a positive int.

    Returns:
        Tensor: ``(B, L // factor)`` bool.
    """
    if factor == 1:
        return mask
    # reshape + amax instead of max_pool1d: exports with a symbolic L (see module doc)
    grouped = mask.to(torch.float32).reshape(mask.shape[0], -1, factor)  # (B, L/f, f)
    return grouped.amax(dim=-1) > 0.5


def zero_invalid(x: Tensor, mask: Tensor) -> Tensor:
    """Zero ``x`` (B, C, L) at frames where ``mask`` (B, L) is False."""
    return torch.where(mask[:, None, :], x, 0.0)


class MaskedAttentionPool(nn.Module):
    """Attention pooling over time in which invalid frames get exactly zero weight.

    Rule for a row with no valid frame: it pools to the zero vector (finite, and the
    head then sees only its bias), never NaN.

    Args:
        dim (int): feature size H.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Pool ``x``.

        Args:
            x (Tensor): ``(B, L, H)``.
            mask (Tensor): ``(B, L)`` bool, True = valid.

        Returns:
            Tensor: ``(B, H)``.
        """
        x = torch.where(mask[:, :, None], x, 0.0)  # (B, L, H), no NaN leaks
        scores = self.score(x).squeeze(-1)  # (B, L)
        scores = scores.masked_fill(~mask, _NEG_FILL)
        weights = torch.softmax(scores, dim=-1)  # (B, L); all-invalid rows: uniform...
        weights = weights * mask.any(dim=-1, keepdim=True).to(x.dtype)  # ...then zeroed
        # a batched matmul, not einsum: the same kernel in eager (bit-equal), and ONNX
        # Runtime runs MatMul far faster than Einsum at batch 1
        return (weights.unsqueeze(1) @ x).squeeze(1)  # (B, 1, L) @ (B, L, H) -> (B, H)


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of a ``(B, C, L)`` tensor: per frame, so padding never
    dilutes the statistics (unlike BatchNorm/GroupNorm over time)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # (B, C, L)


class _ResidualConvBlock(nn.Module):
    """Pre-norm residual block: norm -> dilated Conv1d -> GELU -> dropout -> 1x1 Conv1d."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = _ChannelNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)  # centred, keeps length
        self.mix = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        y = self.mix(self.drop(F.gelu(self.conv(self.norm(x)))))  # (B, C, L)
        return zero_invalid(x + y, mask)


class TCN(nn.Module):
    """Temporal convolutional network: residual Conv1d blocks with dilations 1, 2, 4, ...

    Args:
        channels (int): C, kept throughout.
        layers (int): number of blocks (0 = identity).
        kernel (int): odd kernel size.
        dropout (float): dropout inside each block.
    """

    def __init__(self, channels: int, layers: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _ResidualConvBlock(channels, kernel, 2 ** i, dropout) for i in range(layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Args: x ``(B, C, L)``, mask ``(B, L)`` bool. Returns ``(B, C, L)``."""
        for block in self.blocks:
            x = block(x, mask)
        return x
