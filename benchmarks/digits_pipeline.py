"""The main job on the embedded default, end to end, through the real CLI: fine-tune myresnet18 on the built-in
handwritten digits, evaluate it, export ONNX fp32 / fp16 / int8 behind the accuracy gate, and print the table the
README shows. Runs offline on a fresh machine (the digits ship inside scikit-learn's wheel).

    python benchmarks/digits_pipeline.py --workdir digits-run            # the README table (markdown)
    python benchmarks/digits_pipeline.py --workdir digits-run --epochs 3 # quicker, a little less accurate
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def _cli(*args: str) -> str:
    """Run one resnet-hub command as a user would; its progress goes to our stderr, its stdout is returned."""
    command = [sys.executable, "-m", "resnet_hub", *args]
    print("$ resnet-hub " + " ".join(args), file=sys.stderr, flush=True)
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"resnet-hub {args[0]} failed (exit {proc.returncode})")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("digits-run"))
    parser.add_argument("--model", default="myresnet18")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--precisions", default="fp32,fp16,int8")
    parser.add_argument("--force", action="store_true", help="Start over in an existing workdir.")
    args = parser.parse_args()

    work = args.workdir
    if work.exists() and args.force:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    weights = work / f"{args.model}-digits.safetensors"
    if not weights.exists():
        _cli("finetune", args.model, "--data", "digits", "--img-size", str(args.img_size), "--epochs",
             str(args.epochs), "--output", str(weights))
    evaluation = json.loads(_cli("evaluate", str(weights), "--data", "digits", "--json"))
    rows = []
    for precision in args.precisions.split(","):
        out = work / f"onnx-{precision}"
        extra = ["--calib-data", "digits"] if precision == "int8" else []
        _cli("export", args.model, "--weights", str(weights), "--output", str(out), "--precision", precision,
             "--eval-data", "digits", "--force", *extra)
        manifest = json.loads((out / "manifest.json").read_text())
        accuracy, report = manifest["accuracy"], manifest["verification"][0]
        size = sum(f["bytes"] for f in manifest["files"])
        rows.append((precision, accuracy, report, size))

    print(f"`python benchmarks/digits_pipeline.py` — {args.model} fine-tuned on the built-in digits "
          f"({args.epochs} epochs at {args.img_size} px, seed 0, {platform.machine()}); evaluated on the "
          f"{evaluation['n']} held-out digits:\n")
    print(f"PyTorch (`resnet-hub evaluate`): top-1 {evaluation['top1']:.2%}, top-5 {evaluation['top5']:.2%}\n")
    print("| ONNX export | size | PyTorch top-1 | artifact top-1 | delta (points) | allowed drop | top-1 agreement "
          "| max \\|diff\\| / logit range | min cosine | gate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for precision, accuracy, report, size in rows:
        checks = report["checks"]
        rel = max(c["max_rel_diff"] for c in checks)
        cosine = min(c["min_cosine"] for c in checks)
        print(f"| {precision} | {size / 2**20:.1f} MiB | {accuracy['reference_top1']:.2%} | "
              f"{accuracy['artifact_top1']:.2%} | {accuracy['delta_top1']:+.2f} | {accuracy['max_accuracy_drop']:g} | "
              f"{accuracy['top1_agreement']:.1%} | {rel:.1e} | {cosine:.5f} | "
              f"{'PASS' if accuracy['passed'] else 'FAIL'} |")


if __name__ == "__main__":
    main()
