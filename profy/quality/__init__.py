"""Recording quality of a take beyond the feature pipeline's quality vector (issue 20).

Pure numpy/scipy (no torch, no file I/O), so both halves can use it:

- :mod:`profy.quality.recording`: DC offset, true peak, clipping runs, dead channel /
  false stereo, effective bandwidth, block levels and noise floor;
- :mod:`profy.quality.sync`: sensor-audio offset and the key sensor's activity;
- :mod:`profy.quality.fingerprint`: Haitsma-Kalker fingerprints and near-duplicate pairs;
- :mod:`profy.quality.take`: one take's ``audio_stats.parquet`` columns.
"""

from profy.quality.fingerprint import DuplicatePair, bit_error_rate, near_duplicates
from profy.quality.take import RECORDING_COLUMNS, take_quality

__all__ = ["RECORDING_COLUMNS", "DuplicatePair", "bit_error_rate",
           "near_duplicates", "take_quality"]
