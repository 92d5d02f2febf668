"""Draw the README's three pictures from one real run, offline (needs the digits and plots extras; onnx for the
ONNX Runtime backends):

    python benchmarks/readme_pictures.py                      # writes docs/training_curves.png,
                                                              #   docs/confusion_matrix.png, docs/benchmark.png

1. ``finetune`` myresnet18 on the built-in digits (32 px, seed 0) -> loss and top-1 per epoch;
2. ``evaluate`` it on the digits' val split -> confusion matrix and per-class accuracy;
3. ``benchmark`` myresnet18 on a few backends -> img/s against the measured GEMM ceilings.

The same library calls the commands make (``resnet-hub finetune`` writes the first picture itself,
``evaluate --plot`` and ``benchmark --plot`` the others). Existing pictures are replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs", help="folder for the three PNGs")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--backends", default="torch,torch-optimized,onnxruntime,onnxruntime-int8")
    parser.add_argument("--bench-model", default="myresnet18")
    parser.add_argument("--img-size", type=int, default=224, help="benchmark input size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--force", action="store_true", help="replace existing pictures")
    args = parser.parse_args()

    from resnet_hub.tasks.benchmark import run_benchmark
    from resnet_hub.tasks.evaluate import evaluate
    from resnet_hub.tasks.plots import benchmark_rates, check_plot_path, evaluation_picture, training_curves
    from resnet_hub.tasks.train import FinetuneOptions, finetune

    targets = {name: args.out / f"{name}.png" for name in ("training_curves", "confusion_matrix", "benchmark")}
    for path in targets.values():
        check_plot_path(path, overwrite=args.force)
    with tempfile.TemporaryDirectory(prefix="readme-pictures-") as tmp:
        weights = Path(tmp) / "digits.safetensors"
        print(f"fine-tuning myresnet18 on digits ({args.epochs} epochs at 32 px) ...", file=sys.stderr)
        result = finetune("myresnet18", "digits", weights, options=FinetuneOptions(epochs=args.epochs, img_size=32))
        training_curves(result.record["history"], targets["training_curves"], title="myresnet18 on digits, 32 px",
                        overwrite=args.force)
        evaluation = evaluate(str(weights), "digits")
        evaluation_picture(evaluation, targets["confusion_matrix"],
                           title=f"myresnet18 on the digits' val split: top-1 {100 * evaluation.top1:.2f}% "
                                 f"of {evaluation.n}", overwrite=args.force)
        print(f"benchmarking {args.bench_model} ({args.backends}) ...", file=sys.stderr)
        report = run_benchmark(args.bench_model, args.backends, batch_size=args.batch_size, img_size=args.img_size,
                               iters=args.iters, threads=args.threads,
                               progress=lambda message: print(f"  {message}", file=sys.stderr))
        benchmark_rates(report, targets["benchmark"], overwrite=args.force)
        print(f"load average {report.environment.get('load_average', '?')} at the benchmark's start, "
              f"{report.environment.get('load_average_end', '?')} at its end", file=sys.stderr)
    for path in targets.values():
        shrink(path)
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


def shrink(path: Path, colours: int = 64) -> None:
    """A palette PNG (the pictures are flat colours and text): about a third of the size, same pixels to the eye,
    the embedded numbers kept."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from resnet_hub.tasks.plots import METADATA_KEY
    from resnet_hub.weights.io import atomic_write

    with Image.open(path) as image:
        info = PngInfo()
        for key, value in image.text.items():
            info.add_itxt(key, value, zip=True) if key == METADATA_KEY else info.add_text(key, value)
        small = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    atomic_write(path, lambda tmp: small.save(tmp, format="PNG", optimize=True, pnginfo=info), overwrite=True)


if __name__ == "__main__":
    main()
