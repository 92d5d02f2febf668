"""INT8 OpenVINO models: NNCF post-training quantization of the fp32 IR, calibrated on real images.

The calibration images are those of the ONNX int8 export (:mod:`.calibration`: the weights' own preprocessing),
fed one image per item so NNCF's statistics and bias correction see single samples, as its guide asks.
Preprocessing embedded in the model (uint8 pixels in) is added *after* quantization
(:mod:`.openvino`), so the pixel path stays exact f32 and the first convolution quantizes its input once, as it does
for a float input.

What was tried (``benchmarks/openvino_vs_default.py``; ResNet-50 b8, 2 threads, see the README's speed section):

- ``preset``: PERFORMANCE (symmetric activations and weights) is NNCF's default for CNNs and what the CPU plugin's
  u8/s8 kernels want; MIXED (asymmetric activations) quantizes the same ops and was no faster.
- ``model_type``: only TRANSFORMER exists (it keeps attention-specific patterns in float): not for a CNN.
- ``fast_bias_correction``: True (NNCF's default) corrects each layer's bias shift in seconds; False runs the full
  bias correction (several times slower to quantize) for no measurable accuracy gain on the digits model.
- ``subset_size``: all calibration images up to the export's ``--calib-limit`` (NNCF's default cap is 300).
- Activation ranges: NNCF's default (``MEAN_MINMAX``) averages each image's min / max, which clips the images with
  the widest activations. On the digits model (359 val images) that gave max |diff| / logit range 0.16 and a
  worst-image cosine of 0.959 against PyTorch, outside the int8 parity tolerance the ONNX int8 export meets
  (0.25 / 0.98 on every image); global ``MINMAX`` ranges (what ONNX Runtime's minmax calibration takes) gave
  0.023 / 0.9995 with the same top-1 (within one image), so ``range_estimator="minmax"`` is the default here.
- ``overflow_fix``: NNCF's default (7-bit weights in the first layer) is kept: it costs nothing measurable and
  keeps the model exact on AVX2 CPUs without VNNI, whose u8 x s8 multiply-add saturates 16-bit sums.
- ``INFERENCE_PRECISION_HINT`` f32 vs bf16 gave identical int8 logits on the avx512_bf16 CPU: the quantized
  convolutions dominate; f32 is compiled so the non-quantized ops add no second rounding.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration_array import check_calibration_array
from .errors import ExportOptionError

PRESETS = ("performance", "mixed")
RANGE_ESTIMATORS = ("minmax", "mean_minmax")


@dataclass(frozen=True)
class OpenVinoInt8Record:
    """What the manifest says about an NNCF int8 model (the ``int8`` section, as ONNX int8's ``Int8Record``)."""

    quantizer: str
    preset: str
    fast_bias_correction: bool
    range_estimator: str
    calibration_images: int
    calibration_source: str
    quantized_ops: dict[str, int] = field(default_factory=dict)
    nncf_version: str = ""


def require_nncf() -> None:
    from resnet_hub.errors import MissingDependencyError

    try:
        import nncf  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("nncf", "openvino", "OpenVINO int8 (NNCF quantization)") from exc


def _int8_weights(op: Any) -> bool:
    """Whether a Convolution / MatMul takes its weights from an 8-bit constant (NNCF stores quantized weights as
    i8 constants decompressed by Convert / Subtract / Multiply, which the CPU plugin folds into integer kernels)."""
    if len(op.inputs()) < 2:
        return False
    node = op.input(1).get_source_output().get_node()
    while node.get_type_name() in ("Convert", "Subtract", "Multiply", "Reshape", "Transpose"):
        node = node.input(0).get_source_output().get_node()
    return node.get_type_name() == "Constant" and node.get_output_element_type(0).get_type_name() in ("i8", "u8")


def quantized_op_counts(model: Any) -> dict[str, int]:
    """Convolutions / MatMuls with int8 weights, and the FakeQuantize nodes that quantize activations, counted."""
    counts: dict[str, int] = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize" or (kind in ("Convolution", "GroupConvolution", "MatMul") and _int8_weights(op)):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def quantize_openvino(
    model: Any,
    calibration: np.ndarray,
    *,
    preset: str = "performance",
    fast_bias_correction: bool = True,
    range_estimator: str = "minmax",
    calibration_source: str = "array",
) -> tuple[Any, OpenVinoInt8Record]:
    """Quantize an fp32 ``openvino.Model`` (float NCHW input) with NNCF on ``calibration`` (float32 N, C, H, W)."""
    require_nncf()
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if preset not in PRESETS:
        raise ExportOptionError(f"Unknown NNCF preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    if range_estimator not in RANGE_ESTIMATORS:
        raise ExportOptionError(f"Unknown activation range estimator '{range_estimator}'; choose one of: "
                                f"{', '.join(RANGE_ESTIMATORS)}")
    if calibration.ndim != 4 or len(calibration) < 1:
        raise ExportOptionError(f"Calibration data must be a non-empty (N, C, H, W) array, got {calibration.shape}")
    calibration = check_calibration_array(calibration, f"Calibration data {calibration_source}")
    items = [calibration[i:i + 1] for i in range(len(calibration))]
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    estimators = {"minmax": RangeEstimatorParametersSet.MINMAX, "mean_minmax": RangeEstimatorParametersSet.MEAN_MINMAX}
    advanced = AdvancedQuantizationParameters(activations_range_estimator_params=estimators[range_estimator])
    logger = logging.getLogger("nncf")
    previous = logger.level
    # NNCF logs and draws progress bars; library code does not print.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        logger.setLevel(logging.ERROR)
        try:
            quantized = nncf.quantize(model, nncf.Dataset(items), preset=presets[preset], subset_size=len(items),
                                      fast_bias_correction=fast_bias_correction, advanced_parameters=advanced)
        finally:
            logger.setLevel(previous)
    record = OpenVinoInt8Record(quantizer="nncf.quantize (post-training, OpenVINO backend)", preset=preset,
                                fast_bias_correction=fast_bias_correction, range_estimator=range_estimator,
                                calibration_images=len(items),
                                calibration_source=calibration_source, quantized_ops=quantized_op_counts(quantized),
                                nncf_version=nncf.__version__)
    return quantized, record
