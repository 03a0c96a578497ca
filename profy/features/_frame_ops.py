"""Masked operations on framed features: per-channel normalization (and the legacy
per-sample z-score) and SpecAugment time masking (pure tensor functions).

They apply to log-mel `(..., n_mels, frames)` and framed sensor `(..., frames, keys)`
alike, and keep invalid frames at 0 (the training mean), so padding and silence carry no
signal; import them from :mod:`profy.features.functional`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["normalize", "per_sample_zscore", "time_mask"]


def normalize(x: Tensor, mask: Tensor, mean: Tensor, std: Tensor, *,
              channel_dim: int = -2) -> Tensor:
    """Per-channel standardization; invalid frames become 0 (the mean) so they carry no signal.

    Args:
        x (Tensor): Log-mel `(..., n_mels, frames)` (``channel_dim=-2``) or framed sensor
            `(..., frames, keys)` (``channel_dim=-1``).
        mask (Tensor): Valid frames, bool of dimension `(..., frames)`.
        mean (Tensor): Channel means, dimension `(channels,)`.
        std (Tensor): Channel stds (already floored, > 0), dimension `(channels,)`.
        channel_dim (int, optional): ``-2`` or ``-1``. (Default: ``-2``)

    Returns:
        Tensor: Normalized ``x``, same dimension.
    """
    if channel_dim == -2:
        z = (x - mean.unsqueeze(-1)) / std.unsqueeze(-1)
        return z.masked_fill(~mask.unsqueeze(-2), 0.0)
    if channel_dim == -1:
        return ((x - mean) / std).masked_fill(~mask.unsqueeze(-1), 0.0)
    raise ValueError(f"channel_dim must be -2 or -1, got {channel_dim}")



def per_sample_zscore(logmel: Tensor, *, eps: float = 1e-8) -> Tensor:
    """LEGACY (pre-plan, ``normalization: per_sample``): z-score each item over all of its
    values, padding and silence included.

    Kept only to reproduce the 2025-09-25 behaviour in regression tests: per-item
    statistics erase absolute level, and the padding share shifts them, so short and long
    takes are scaled differently. New runs use global normalization.

    Args:
        logmel (Tensor): Log-mel of dimension `(..., n_mels, frames)`.
        eps (float, optional): Added to the std. (Default: ``1e-8``)

    Returns:
        Tensor: Z-scored log-mel of dimension `(..., n_mels, frames)`.
    """
    mean = logmel.mean(dim=(-2, -1), keepdim=True)
    std = logmel.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (logmel - mean) / (std + eps)



def time_mask(x: Tensor, mask: Tensor, *, max_width: int, n_masks: int,
              generator: torch.Generator | None = None, time_dim: int = -1
              ) -> tuple[Tensor, Tensor]:
    """SpecAugment time masking with torchaudio's sampling, drawn from ``generator``.

    Each of ``n_masks`` masks per item has a width drawn uniformly from
    ``{0, ..., max_width}`` and a start uniform within the item's span (up to its last
    valid frame). Masked frames are set to 0 and dropped from the mask, so apply this
    after normalization, where 0 is the mean. torchaudio's ``mask_along_axis_iid`` draws
    from the global RNG, hence this reimplementation.

    Args:
        x (Tensor): Features with time on ``time_dim``, e.g. `(..., n_mels, frames)`.
        mask (Tensor): Bool of dimension `(..., frames)`.
        max_width (int): Largest mask width in frames.
        n_masks (int): Masks per item.
        generator (torch.Generator, optional): CPU generator. (Default: ``None``, global RNG)
        time_dim (int, optional): Time axis of ``x``: ``-1`` or ``-2``. (Default: ``-1``)

    Returns:
        (Tensor, Tensor): Masked ``x`` and the mask with masked frames set False.
    """
    if max_width < 0 or n_masks < 0:
        raise ValueError(f"max_width and n_masks must be >= 0, got {max_width}, {n_masks}")
    if time_dim not in (-1, -2):
        raise ValueError(f"time_dim must be -1 or -2, got {time_dim}")
    if max_width == 0 or n_masks == 0:
        return x, mask
    frames = mask.shape[-1]
    pos = torch.arange(frames, device=mask.device)
    span = torch.where(mask, pos + 1, 0).amax(-1, keepdim=True).cpu()  # (..., 1)
    # one draw, item-major: a batch gets the same masks as its items one by one
    u = torch.rand((*mask.shape[:-1], n_masks, 2), generator=generator)
    width = (u[..., 0] * (max_width + 1)).long().clamp(max=max_width)
    width = torch.minimum(width, span)
    start = (u[..., 1] * (span - width + 1)).long()
    start = torch.minimum(start, span - width).to(mask.device).unsqueeze(-1)
    end = start + width.to(mask.device).unsqueeze(-1)
    hit = ((pos >= start) & (pos < end)).any(dim=-2)  # (..., frames)
    fill = hit.unsqueeze(-2) if time_dim == -1 else hit.unsqueeze(-1)
    return x.masked_fill(fill, 0.0), mask & ~hit

