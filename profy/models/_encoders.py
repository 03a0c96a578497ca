"""Stream encoders: sensor key front end + Conv1d stack, ``audio_cnn2d``, Conv1d resampler.

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

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from profy.config import ModelConfig
from profy.models._layers import (
    TCN,
    downsample_mask,
    zero_invalid,
)

__all__ = [
    "AudioCNN2d",
    "AudioEncoder",
    "Conv1dResampler",
    "KeyFrontEnd",
    "SensorEncoder",
    "pool_over_mels",
]


class _TakeNorm(nn.Module):
    """BatchNorm over take-level feature vectors ``(B, F)``.

    Per-take statistics of a key's movement (how steady a held key is, how long it sits
    at part depth) differ between players by a few percent of their value; standardizing
    them across takes, as a probe's StandardScaler would, is what lets ~100 optimizer
    steps find them. A training batch of one take cannot estimate a variance, so it is
    normalized with the running statistics instead (eval mode always uses those: a fixed
    affine map in the exported graph).
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.norm.running_mean, self.norm.running_var,
                                self.norm.weight, self.norm.bias, False, 0.0, self.norm.eps)
        return self.norm(x)

    @torch.no_grad()
    def refit(self, batches: Iterable[Tensor]) -> None:
        """Set the running statistics to the exact mean and (unbiased) variance of all
        rows of ``batches``.

        The features move with every optimizer step, so an exponential running average
        lags behind the weights being evaluated; refitting after each epoch ("precise
        BatchNorm") makes eval-mode outputs those of the current weights.
        """
        rows = torch.cat(list(batches))  # (N, F): a few hundred takes at most
        if rows.shape[0] < 2:
            return
        self.norm.running_mean.copy_(rows.mean(0))
        self.norm.running_var.copy_(rows.var(0, unbiased=True))


class KeyFrontEnd(nn.Module):
    """Per-key temporal filters shared by all 88 keys, pooled over keys by key activity.

    Mixing the 88 keys linearly before any nonlinearity lets a small model memorise
    *which* keys a piece or player uses; how a key moves (press speed, held-depth
    wobble, release overlap with the next key) is what separates players. So, per take
    and key, on valid frames only:

    1. resting level: the mean of the frames at or above the key's mean (a key is held
       a minority of the time, so these are its resting frames; a loose key that rests
       high no longer looks pressed);
    2. depth = rest - x (pressed > 0), divided by the key's travel in this take (its
       largest depth), floored at ``key_floor`` x the take's largest travel over keys so
       the sensor noise of an untouched key is not blown up (the fold's per-key z-score
       gives each key a different scale; this removes it);
    3. a Conv1d stack over time, ``|conv| -> conv -> GELU`` (the absolute value turns a
       learned high-pass into an envelope: wobble, press and release edges), with the
       SAME weights for every key (keys are folded into the batch: ``(B * 88, 1, T)``);
    4. pooling over keys weighted by activity ``a = clip(depth, 0, 1)^2`` (features of
       the keys being played, not of the 80-odd idle ones), plus the activity itself
       (how many keys are down at once: legato overlap). Per frame this gives
       ``(B, C + 1, T)``; over the whole take (keys and frames) a take-level vector
       ``(B, 2C + 1)``: activity-weighted and plain means of the filters and the mean
       number of keys down.

    No parameter is tied to a key, so the encoder cannot learn a key's identity. All
    reductions are masked sums/maxima (no percentile over a dynamic axis), so the ONNX
    graph keeps a symbolic batch and time.

    Args:
        cfg (ModelConfig): uses ``key_channels``, ``key_kernel``, ``key_floor``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, k = cfg.key_channels, cfg.key_kernel
        # stride 2 when the fusion rate allows it: the filters still see every frame
        # (kernel > stride), and the tensors after them are half as long
        self.stride = 2 if cfg.fusion_stride >= 2 else 1
        self.conv1 = nn.Conv1d(1, c, k, stride=self.stride, padding=k // 2)
        self.conv2 = nn.Conv1d(c, c, 3, padding=1)
        self.floor = cfg.key_floor
        self.slots = min(cfg.key_slots, cfg.n_keys)
        self.frame_channels = c + 1
        self.take_features = 2 * c + 1

    def forward(self, sensor: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Args: sensor ``(B, T, K)``, mask ``(B, T)`` bool, T a multiple of ``stride``.

        Returns:
            tuple[Tensor, Tensor]: per-frame features ``(B, C + 1, T / stride)`` (0 off
            the downsampled mask) and take-level features ``(B, 2C + 1)``.
        """
        valid = mask[:, :, None]  # (B, T, 1)
        x = torch.where(valid, sensor, 0.0)  # (B, T, K)
        m = valid.to(x.dtype)
        n_frames = m.sum(1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
        mean = x.sum(1, keepdim=True) / n_frames  # (B, 1, K)
        upper = ((x >= mean) & valid).to(x.dtype)  # (B, T, K) resting frames
        rest = (x * upper).sum(1, keepdim=True) / upper.sum(1, keepdim=True).clamp(min=1.0)
        depth = (rest - x) * m  # (B, T, K), pressed > 0, 0 off-mask
        travel = depth.amax(1, keepdim=True)  # (B, 1, K)
        floor = self.floor * travel.amax(2, keepdim=True)  # (B, 1, 1)
        depth = depth / torch.maximum(travel, floor).clamp(min=1e-6)
        b, t, k = depth.shape
        s = self.stride
        count = depth.clamp(0.0, 1.0).square().sum(2)  # (B, T): keys down (all keys)
        count = count.reshape(b, -1, s).mean(-1)[:, None, :]  # (B, 1, T/s)
        # the filters run on the `slots` keys that travel furthest in this take (a piece
        # uses a few dozen keys; the idle rest would only cost time). top-k and gather
        # are symmetric in the keys, so key identity still cannot matter.
        idx = travel[:, 0, :].topk(self.slots, dim=-1).indices  # (B, S)
        d = torch.gather(depth, 2, idx[:, None, :].expand(b, t, self.slots))  # (B, T, S)
        d = d.transpose(1, 2)  # (B, S, T)
        z = d.reshape(b * self.slots, 1, t)  # keys folded into the batch
        z = F.gelu(self.conv2(torch.abs(self.conv1(z))))  # (B*S, C, T/s)
        mask = downsample_mask(mask, s)  # (B, T/s)
        z = z.reshape(b, self.slots, -1, z.shape[-1]) * mask[:, None, None, :].to(z.dtype)
        act = d.clamp(0.0, 1.0).square().reshape(b, self.slots, -1, s).mean(-1)  # (B, S, T/s)
        act = act[:, :, None, :]  # (B, S, 1, T/s)
        weighted_sum = (z * act).sum(1)  # (B, C, T/s)
        act_sum = act.sum(1)  # (B, 1, T/s)
        per_frame = torch.cat([weighted_sum / act_sum.clamp(min=1e-3), count], dim=1)
        n = mask.to(z.dtype).sum(1, keepdim=True).clamp(min=1.0)  # (B, 1) frames at T/s
        weighted = weighted_sum.sum(2) / act_sum.sum(2).clamp(min=1e-3)  # (B, C)
        plain = z.sum((1, 3)) / (n * self.slots)  # (B, C)
        take = torch.cat([weighted, plain, count.sum(2) / n], dim=1)  # (B, 2C + 1)
        return zero_invalid(per_frame, mask), take


class SensorEncoder(nn.Module):
    """Key-depth frames to a masked sequence at the fusion rate.

    ``sensor_frontend="keys"`` (default): :class:`KeyFrontEnd` first; its per-frame
    features feed the temporal stack below, and its take-level vector, standardized
    across takes (:class:`_TakeNorm`) and projected to H, is added to every valid step.
    ``"linear"``: the 88 keys go straight into the first Conv1d (the original design,
    kept for ablation). The temporal stack: a strided Conv1d projection to H (one
    stride-2 conv per factor 2 of ``fusion_stride``) and ``sensor_layers`` residual
    dilated conv blocks.

    Args:
        cfg (ModelConfig): uses ``n_keys``, ``hidden``, ``fusion_stride``,
            ``sensor_layers``, ``sensor_kernel``, ``dropout``, ``sensor_frontend`` and
            the ``key_*`` fields.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.keys = KeyFrontEnd(cfg) if cfg.sensor_frontend == "keys" else None
        if self.keys is not None:
            self.take_norm = _TakeNorm(self.keys.take_features)
            self.take_proj = nn.Linear(self.keys.take_features, cfg.hidden)
        n_down = cfg.fusion_stride.bit_length() - 1
        if self.keys is not None:
            n_down -= self.keys.stride.bit_length() - 1  # the front end strided already
        convs: list[nn.Module] = []
        in_ch = self.keys.frame_channels if self.keys is not None else cfg.n_keys
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

    @torch.no_grad()
    def refit_take_norm(self, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Refit the take-level standardization on ``(sensor, mask)`` batches (the
        training takes), so eval mode uses statistics of the current weights."""
        if self.keys is None:
            return
        self.take_norm.refit(self.keys(sensor, mask)[1] for sensor, mask in batches)

    def forward(self, sensor: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode.

        Args:
            sensor (Tensor): ``(B, T, n_keys)``, T a multiple of ``fusion_stride``.
            mask (Tensor): ``(B, T)`` bool.

        Returns:
            tuple[Tensor, Tensor]: features ``(B, T / fusion_stride, H)`` (zero at invalid
            frames) and their mask ``(B, T / fusion_stride)``.
        """
        take = None
        if self.keys is not None:
            x, take_vec = self.keys(sensor, mask)  # (B, C + 1, T/s), (B, 2C + 1)
            mask = downsample_mask(mask, self.keys.stride)  # (B, T/s)
            take = self.take_proj(self.take_norm(take_vec))  # (B, H)
        else:
            x = zero_invalid(sensor.transpose(1, 2), mask)  # (B, 88, T)
        for conv, stride in zip(self.proj, self.strides, strict=True):
            mask = downsample_mask(mask, stride)
            x = zero_invalid(F.gelu(conv(x)), mask)  # (B, H, L/2)
        x = self.blocks(x, mask)  # (B, H, L)
        if take is not None:
            x = x + take[:, :, None]  # the take's key-movement profile at every step
        x = self.norm(x.transpose(1, 2))  # (B, L, H)
        return torch.where(mask[:, :, None], x, 0.0), mask


def pool_over_mels(attn: Tensor, x: Tensor) -> Tensor:
    """Attention-weighted sum over mel bins: ``einsum("bhfl,bcfl->bhcl")`` as a batched
    matmul, which is what einsum runs in eager (same numbers) and exports as an ONNX
    ``MatMul`` (ONNX Runtime's ``Einsum`` kernel is several times slower at batch 1).

    Args:
        attn (Tensor): ``(B, heads, F, L)``, weights over ``F``.
        x (Tensor): ``(B, C, F, L)``.

    Returns:
        Tensor: ``(B, heads, C, L)``.
    """
    b, c, f, length = x.shape
    # x.permute(0, 3, 2, 1) as two moves: (B, C*F, L) -> (B, L, C*F), then the last two
    # axes. Same values; ONNX Runtime's Transpose runs the first ~14x faster than the
    # general 4-D permutation (555 -> 39 us at batch 1) and folds the second into the
    # MatMul. `.contiguous()` hands matmul the operand layout it always had (bit-equal).
    xt = x.reshape(b, c * f, length).transpose(1, 2).reshape(b, length, c, f)
    xt = xt.transpose(2, 3).contiguous()  # (B, L, F, C)
    # (B, L, heads, F) @ (B, L, F, C) -> (B, L, heads, C)
    return (attn.permute(0, 3, 1, 2) @ xt).permute(0, 2, 3, 1)


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
        x = torch.where(mask[:, None, :], x, 0.0).unsqueeze(1)  # (B, 1, F, T)
        for conv, stride in zip(self.convs, self.strides, strict=True):
            mask = downsample_mask(mask, stride)
            # multiply, not where: values are finite past the input, and this is the
            # model's largest tensor (a where + zeros_like here cost ~20% of a step)
            x = F.gelu(conv(x)) * mask[:, None, None, :].to(x.dtype)  # (B, C, F, L/2)
        scores = self.freq_score(x) + self.freq_bias  # (B, heads, F, L)
        attn = torch.softmax(scores, dim=2)  # over mel bins
        pooled = pool_over_mels(attn, x)  # (B, heads, C, L)
        pooled = pooled.flatten(1, 2)  # (B, heads*C, L)
        return zero_invalid(self.proj(pooled), mask), mask  # (B, H, L)


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
        return torch.where(fused_mask[:, :, None], x, 0.0), fused_mask
