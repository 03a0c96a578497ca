"""Pure tensor functions for Profy's features: log-mel, masks, quality, sensor, normalization.

Every parameter is explicit and nothing here reads files or touches global state
(randomness comes from a caller's ``torch.Generator``). The ``nn.Module`` wrappers in
:mod:`profy.features.transforms` resolve defaults from :class:`~profy.config.FeatureConfig`
and hold the buffers.

Framing: audio and sensor share one frame rate, ``sample_rate / hop_length`` (50 frames/s
by default). Frame ``i`` of the log-mel is centred on sample ``i * hop_length``
(``center=True``, reflect padding, as torchaudio and librosa), so a clip of ``n`` samples
has ``1 + n // hop_length`` real frames; clips are cut to their first ``frames`` frames or
padded up to it. Padded log-mel frames hold the floor ``-top_db`` (silence, not signal).

Masks: a frame is *valid* iff it is real (not padding) and its energy is within
``silence_db`` dB of the clip's loudest frame (and above an absolute floor, so a
digitally silent clip has no valid frame). Padded frames are never valid. After
normalization every invalid frame is set to 0 (the training mean), so padding and
silence carry no signal, and the mask travels with the features to the model.

Why ``n_fft=1024`` leaves no mel filter empty: at 16 kHz its bins are 15.6 Hz apart.
The Slaney mel scale is linear below 1 kHz, where 128 filters up to 8 kHz put filter
centres 23.4 Hz apart, so each triangle spans 46.8 Hz and always covers at least two
bins. With ``n_fft=256`` (62.5 Hz bins) some low triangles fall between bins and their
rows are all zero (torchaudio warns); see ``tests/features/test_functional.py``.
"""

from __future__ import annotations

from profy.features._audio import (
    AMIN,
    count_nonzero_frames,
    downmix,
    frame_energy,
    mel_filterbank,
    pad_or_trim,
    power_spectrogram,
    power_to_db,
    silence_mask,
)
from profy.features._audio_quality import (
    CLIP_THRESHOLD,
    LOUDNESS_FLOOR_DB,
    SNR_RANGE_DB,
    AudioQuality,
    clipping_ratio,
    loudness_db,
    quality_vector,
    snr_proxy_db,
    spectral_flatness,
)
from profy.features._frame_ops import normalize, per_sample_zscore, time_mask
from profy.features._sensor import N_KEYS, check_sensor_times, frame_sensor

__all__ = [
    "AMIN", "CLIP_THRESHOLD", "LOUDNESS_FLOOR_DB", "N_KEYS", "SNR_RANGE_DB", "AudioQuality",
    "check_sensor_times", "clipping_ratio", "count_nonzero_frames", "downmix", "frame_energy",
    "frame_sensor", "loudness_db", "mel_filterbank", "normalize", "pad_or_trim",
    "per_sample_zscore", "power_spectrogram", "power_to_db", "quality_vector", "silence_mask",
    "snr_proxy_db", "spectral_flatness", "time_mask",
]
