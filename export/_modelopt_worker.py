"""Runs ModelOpt's ONNX INT8 quantization in a process of its own (``python -m resnet_hub.export._modelopt_worker``).

``modelopt.onnx.quantization.quantize`` monkeypatches ONNX Runtime's calibrators, quantizers and op registries
(``ort_patching.patch_ort_modules``, ``configure_ort``) and never undoes it: afterwards ONNX Runtime's own
``quantize_static`` -- the CPU int8 export -- fails in the same process ("Quantization parameters are not
specified for param ..."). A child process keeps the caller's ONNX Runtime as it was.

    python -m resnet_hub.export._modelopt_worker MODEL.onnx OUT.onnx CALIBRATION.npy METHOD EP[,EP...]
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys


def main(argv: list[str]) -> int:
    onnx_path, output_path, calibration_path, method, providers = argv
    import numpy as np
    from modelopt.onnx.quantization import quantize

    logging.getLogger("modelopt").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        quantize(onnx_path=onnx_path, quantize_mode="int8", calibration_data=np.load(calibration_path),
                 calibration_method=method, calibration_eps=providers.split(","), output_path=output_path,
                 log_level="ERROR")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
