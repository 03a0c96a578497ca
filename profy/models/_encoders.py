"""Stream encoders: sensor Conv1d stack, ``audio_cnn2d``, Conv1d resampler, TCN, masked pooling.

Every module here takes a boolean mask beside its tensor (True = valid frame) and keeps
one invariant: **values at invalid frames never reach a valid output**. Inputs are
replaced by zeros at invalid frames (``torch.where``, so even NaN there is harmless) and
every stage zeroes its invalid frames again, so a stage sees what a zero-padded
unpadded take would show it, whatever the caller left in the padding.

Time strides are powers of two. ``UnifiedAttentionModel`` pads T up to a multiple of the
largest stride once, so each stride-s stage maps length L to exactly L/s and masks are
downsampled by reshape + ``amax`` (ONNX-exportable with a symbolic T, unlike
``F.max_pool1d``, whose exported kernel the dynamo exporter ties to the example length).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from profy.config import ModelConfig

__all__ = [
    "AudioCNN2d",
    "AudioEncoder",
    "Conv1dResampler",
    "MaskedAttentionPool",
    "SensorEncoder",
    "TCN",
    "downsample_mask",
    "pad_time",
]

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


def _zero_invalid(x: Tensor, mask: Tensor) -> Tensor:
    """Zero ``x`` (B, C, L) at frames where ``mask`` (B, L) is False."""
    return torch.where(mask[:, None, :], x, torch.zeros_like(x))


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
        x = torch.where(mask[:, :, None], x, torch.zeros_like(x))  # (B, L, H), no NaN leaks
        scores = self.score(x).squeeze(-1)  # (B, L)
        scores = scores.masked_fill(~mask, _NEG_FILL)
        weights = torch.softmax(scores, dim=-1)  # (B, L); all-invalid rows: uniform...
        weights = weights * mask.any(dim=-1, keepdim=True).to(x.dtype)  # ...then zeroed
        return torch.einsum("bl,blh->bh", weights, x)  # (B, H)


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
        return _zero_invalid(x + y, mask)


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


class SensorEncoder(nn.Module):
    """Key-depth frames to a masked sequence at the fusion rate.

    Strided Conv1d projection (88 keys -> H, one stride-2 conv per factor 2 of
    ``fusion_stride``) followed by ``sensor_layers`` residual dilated conv blocks.

    Args:
        cfg (ModelConfig): uses ``n_keys``, ``hidden``, ``fusion_stride``,
            ``sensor_layers``, ``sensor_kernel``, ``dropout``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_down = cfg.fusion_stride.bit_length() - 1
        convs: list[nn.Module] = []
        in_ch = cfg.n_keys
        for i in range(max(n_down, 1)):
            stride = 2 if i < n_down else 1
            kernel = 5 if i == 0 else 3  # wider first kernel: a key press spans ~3-6 frames
            convs.append(nn.Conv1d(in_ch, cfg.hidden, kernel, stride=stride,
                                   padding=kernel // 2))
            in_ch = cfg.hidden
        self.proj = nn.ModuleList(convs)
        self.strides = [2 if i < n_down else 1 for i in range(len(convs))]
        self.blocks = TCN(cfg.hidden, cfg.sensor_layers, cfg.sensor_kernel, cfg.dropout)
        self.norm = nn.LayerNorm(cfg.hidden)

    def forward(self, sensor: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode.

        Args:
            sensor (Tensor): ``(B, T, n_keys)``, T a multiple of ``fusion_stride``.
            mask (Tensor): ``(B, T)`` bool.

        Returns:
            tuple[Tensor, Tensor]: features ``(B, T / fusion_stride, H)`` (zero at invalid
            frames) and their mask ``(B, T / fusion_stride)``.
        """
        x = _zero_invalid(sensor.transpose(1, 2), mask)  # (B, 88, T)
        for conv, stride in zip(self.proj, self.strides, strict=True):
            mask = downsample_mask(mask, stride)
            x = _zero_invalid(F.gelu(conv(x)), mask)  # (B, H, L/2)
        x = self.blocks(x, mask)  # (B, H, L)
        x = self.norm(x.transpose(1, 2))  # (B, L, H)
        return torch.where(mask[:, :, None], x, torch.zeros_like(x)), mask


class AudioCNN2d(nn.Module):
    """``audio_cnn2d``: Conv2d stack over the log-mel image, mel axis collapsed by attention.

    Each Conv2d strides TIME only (``cnn_time_strides``), so all ``audio_channels_used``
    mel bins keep their own resolution through the stack (the pre-plan model reshaped
    the input and fed only 64 of 128 channels). A multi-head frequency attention then
    collapses the mel axis: head h scores every (mel, frame) cell from the CNN channels
    plus a learned per-mel bias (convolutions alone cannot tell which mel bin they are
    in), takes a softmax over mels, and averages the C channels with it; the heads are
    concatenated and projected to H.

    Args:
        cfg (ModelConfig): uses ``audio_channels_used``, ``cnn_channels``, ``freq_heads``,
            ``hidden``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_mels = cfg.audio_channels_used
        chans = (1, *cfg.cnn_channels)
        self.strides = cfg.cnn_time_strides
        # kernel (3 mels, s+1 frames rounded up to odd) with centred padding: exactly L/s
        # frames out, and neighbouring windows overlap so no frame falls between them
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, (3, s + 1 + s % 2), stride=(1, s), padding=(1, (s + 1) // 2))
            for c_in, c_out, s in zip(chans[:-1], chans[1:], self.strides, strict=True))
        self.freq_score = nn.Conv2d(chans[-1], cfg.freq_heads, 1)
        self.freq_bias = nn.Parameter(torch.zeros(cfg.freq_heads, self.n_mels, 1))
        self.proj = nn.Conv1d(cfg.freq_heads * chans[-1], cfg.hidden, 1)
        self.stride = cfg.audio_time_stride

    def forward(self, logmel: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode.

        Args:
            logmel (Tensor): ``(B, n_mels_in, T)``, T a multiple of the CNN's time stride.
            mask (Tensor): ``(B, T)`` bool.

        Returns:
            tuple[Tensor, Tensor]: ``(B, H, T / stride)`` (zero at invalid frames) and its
            mask ``(B, T / stride)``.
        """
        x = logmel[:, : self.n_mels, :]  # (B, F, T): legacy profile keeps only F=64
        x = torch.where(mask[:, None, :], x, torch.zeros_like(x)).unsqueeze(1)  # (B, 1, F, T)
        for conv, stride in zip(self.convs, self.strides, strict=True):
            mask = downsample_mask(mask, stride)
            # multiply, not where: values are finite past the input, and this is the
            # model's largest tensor (a where + zeros_like here cost ~20% of a step)
            x = F.gelu(conv(x)) * mask[:, None, None, :].to(x.dtype)  # (B, C, F, L/2)
        scores = self.freq_score(x) + self.freq_bias  # (B, heads, F, L)
        attn = torch.softmax(scores, dim=2)  # over mel bins
        pooled = torch.einsum("bhfl,bcfl->bhcl", attn, x)  # (B, heads, C, L)
        pooled = pooled.flatten(1, 2)  # (B, heads*C, L)
        return _zero_invalid(self.proj(pooled), mask), mask  # (B, H, L)


class Conv1dResampler(nn.Module):
    """Learnable Conv1d resampling between two power-of-two time strides (no interpolation).

    Upsampling by r uses ``ConvTranspose1d(kernel=2r, stride=r, padding=r/2)`` (each
    output frame blends its two nearest input frames, exactly r*L long); downsampling by
    r uses the mirror strided ``Conv1d``; equal strides use a length-preserving Conv1d
    (k=3) so the audio stream still gets a learnable alignment layer.

    Args:
        channels (int): C in and out.
        stride_in (int): input frames per step of the incoming sequence.
        stride_out (int): input frames per step wanted (the fusion stride).
    """

    def __init__(self, channels: int, stride_in: int, stride_out: int) -> None:
        super().__init__()
        self.conv: nn.Module
        if stride_in > stride_out:
            r = stride_in // stride_out
            self.conv = nn.ConvTranspose1d(channels, channels, 2 * r, stride=r, padding=r // 2)
        elif stride_in < stride_out:
            r = stride_out // stride_in
            self.conv = nn.Conv1d(channels, channels, 2 * r, stride=r, padding=r // 2)
        else:
            self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, C, L)``. Returns ``(B, C, L * stride_in / stride_out)``."""
        return self.conv(x)


class AudioEncoder(nn.Module):
    """``audio_cnn2d`` -> optional TCN -> Conv1d resampler to the fusion rate -> LayerNorm.

    Args:
        cfg (ModelConfig): see ``AudioCNN2d``, plus ``use_tcn``, ``tcn_layers``,
            ``tcn_kernel``, ``dropout``, ``fusion_stride``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cnn = AudioCNN2d(cfg)
        self.tcn = TCN(cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel, cfg.dropout) \
            if cfg.use_tcn else None
        self.resample = Conv1dResampler(cfg.hidden, self.cnn.stride, cfg.fusion_stride)
        self.fusion_stride = cfg.fusion_stride
        self.norm = nn.LayerNorm(cfg.hidden)

    def forward(self, logmel: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode.

        Args:
            logmel (Tensor): ``(B, n_mels_in, T)``, T a multiple of both strides.
            mask (Tensor): ``(B, T)`` bool.

        Returns:
            tuple[Tensor, Tensor]: ``(B, T / fusion_stride, H)`` (zero at invalid frames)
            and its mask ``(B, T / fusion_stride)``.
        """
        fused_mask = downsample_mask(mask, self.fusion_stride)  # (B, L_f), from fine frames
        x, coarse_mask = self.cnn(logmel, mask)  # (B, H, L_a)
        if self.tcn is not None:
            x = self.tcn(x, coarse_mask)
        x = self.resample(x)  # (B, H, L_f)
        x = self.norm(x.transpose(1, 2))  # (B, L_f, H)
        return torch.where(fused_mask[:, :, None], x, torch.zeros_like(x)), fused_mask
