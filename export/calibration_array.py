"""One check of a calibration array before any int8 quantizer sees it (ONNX Runtime QDQ and ModelOpt Q/DQ alike).

Shape: a float (N, C, H, W) batch after the weights' preprocessing, or uint8 (N, H, W, 3) pixels for a graph with
embedded preprocessing. Content: activation ranges measured on constant or near-constant images (blank frames, one
image repeated) do not cover real inputs, yet such a graph can still pass a parity check on those same images:
8 all-black images gave an int8 digits model that scored 50.7 % instead of 96.9 %. Such sets are refused.
"""

from __future__ import annotations

import numpy as np

from .errors import ExportOptionError

# A channel whose spatial standard deviation is under 1 % of the set's value range carries no picture; a set where
# most images are like that, or where all images are the same to 0.1 % of the range, is refused.
FLAT_IMAGE = 0.01
FLAT_SHARE = 0.5
SAME_IMAGES = 0.001


def check_calibration_array(calibration: np.ndarray, source: str = "the calibration data") -> np.ndarray:
    """``calibration`` as the quantizer takes it (uint8 kept, anything else float32), or an
    :class:`ExportOptionError` saying why it cannot calibrate int8 ranges."""
    array = np.asarray(calibration)
    pixels = array.dtype == np.uint8
    if array.ndim != 4 or len(array) < 1 or (pixels and array.shape[-1] != 3):
        raise ExportOptionError(f"Calibration data must be a non-empty float (N, C, H, W) batch or uint8 (N, H, W, 3) "
                                f"pixels, got {array.dtype} {array.shape}")
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise ExportOptionError(f"{source}: the calibration batch holds NaN or infinite values")
    channels_last = values if pixels else values.transpose(0, 2, 3, 1)  # (N, H, W, C)
    value_range = channels_last.max(axis=(0, 1, 2)) - channels_last.min(axis=(0, 1, 2))  # per channel
    if float(value_range.max()) == 0.0:
        raise ExportOptionError(f"{source}: all {len(array)} calibration images are one constant colour; int8 ranges "
                                "measured on them do not cover real inputs. Calibrate on a few hundred images like "
                                "those the model will see (--calib-data)")
    scale = np.maximum(value_range, 1e-12)
    spatial = channels_last.std(axis=(1, 2)) / scale  # (N, C)
    flat = int(np.sum(spatial.max(axis=1) < FLAT_IMAGE))
    if flat > FLAT_SHARE * len(array):
        raise ExportOptionError(f"{source}: {flat} of {len(array)} calibration images are blank or nearly so (no "
                                "contrast); int8 ranges measured on them do not cover real inputs. Calibrate on a few "
                                "hundred images like those the model will see (--calib-data)")
    if len(array) > 1 and float((channels_last.std(axis=0) / scale).mean()) < SAME_IMAGES:
        raise ExportOptionError(f"{source}: the {len(array)} calibration images are (nearly) all the same image; int8 "
                                "ranges need varied images like those the model will see (--calib-data)")
    return array if pixels else values
