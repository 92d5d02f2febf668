"""Peak memory and img/s of `resnet-hub evaluate` as the image count grows, against a timm validate-style loop.

    python benchmarks/evaluate_scale.py --sizes 1000,4000,16000 --workers 2

Both sides score the same generated folder (small JPEGs in 4 class folders, 160x120 by default) with the same model
(myresnet18 with a seeded 4-class head, 224 px), the same batch size and the same number of decoding workers:
ours is resnet_hub.tasks.evaluate.evaluate (the input pipeline of resnet_hub.tasks.input_pipeline), timm's is the
loop of its validate.py (``timm.data.create_dataset`` + ``create_loader`` without the CUDA prefetcher,
``model(input)``, ``timm.utils.accuracy``), run once as validate.py runs by default and once with its
``--channels-last``. Ours scores a copy of the model with BatchNorm folded and NHWC weights
(``prepare_for_inference``), as a deploying user runs it; the last rate columns show how much of that gain NHWC
alone gives timm. Every run is a fresh child process that reports its own peak resident set (ru_maxrss) and its
workers' largest one; img/s is images over the wall time of the pass (workers' start-up included, model loading
excluded). The CPU and its vector extensions are printed beside the table: rates move with both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("a", "b", "c", "d")


def cpu_line() -> str:
    """The CPU model and the vector extensions that decide inference speed (AVX2, AVX-512, VNNI, AMX)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
                                   ("avx_vnni", "AVX-VNNI"), ("avx512_bf16", "AVX-512 BF16"),
                                   ("amx_tile", "AMX")) if flag in flags]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cpus} CPU(s) usable, {', '.join(isa) or 'no AVX2'}"


def make_folder(root: Path, count: int, pool: Path, size: tuple[int, int]) -> Path:
    """``count`` images in 4 class folders, hard links into one pool of generated JPEGs (made once)."""
    import numpy as np
    from PIL import Image

    pool.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    have = len(list(pool.iterdir()))
    for i in range(have, count):
        yy, xx = np.mgrid[0:size[1], 0:size[0]]
        base = np.stack([xx * 255 / size[0], yy * 255 / size[1], (xx + yy + i) % 255], -1)
        pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(pool / f"{i:06d}.jpg", quality=85)
    for i in range(count):
        target = root / CLASSES[i % len(CLASSES)] / f"{i:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(pool / f"{i:06d}.jpg", target)
    return root


def make_weights(path: Path, img_size: int) -> None:
    import torch

    import resnet_hub  # noqa: F401  (registers the variants with timm)
    from resnet_hub.weights.lookup import get_variant
    from resnet_hub.zoo.factory import create_model
    from resnet_hub.zoo.model_loading import LABEL_NAMES_KEY, PREPROCESSING_KEY, at_input_size
    from resnet_hub.weights.io import save_weights

    torch.manual_seed(0)
    model = create_model("myresnet18", num_classes=len(CLASSES))
    preprocessing = at_input_size(get_variant("myresnet18").default_preprocessing, img_size)
    save_weights(model, path, architecture="myresnet18", overwrite=True, metadata={
        LABEL_NAMES_KEY: json.dumps(list(CLASSES)), PREPROCESSING_KEY: preprocessing.to_json(),
        "num_classes": str(len(CLASSES))})


def child(args: argparse.Namespace) -> None:
    """One measured run, in this (fresh) process."""
    import torch

    from resnet_hub.zoo.model_loading import load_model

    torch.set_num_threads(args.threads)
    if args.child == "ours":
        from resnet_hub.tasks.evaluate import resolve_target, evaluate

        target = resolve_target(args.weights)
        start = time.perf_counter()
        result = evaluate(target, args.data, batch_size=args.batch_size, workers=args.workers)
        seconds, n, top1 = time.perf_counter() - start, result.n, result.top1
    else:
        from timm.data import create_dataset, create_loader
        from timm.utils import accuracy

        loaded = load_model(None, weights=args.weights)
        config = loaded.data_config()
        dataset = create_dataset("", root=args.data, split="validation")
        loader = create_loader(dataset, input_size=config["input_size"], batch_size=args.batch_size,
                               is_training=False, use_prefetcher=False, interpolation=config["interpolation"],
                               mean=config["mean"], std=config["std"], num_workers=args.workers,
                               crop_pct=config["crop_pct"], crop_mode=config.get("crop_mode", "center"))
        model, hits, n = loaded.model.eval(), 0.0, 0
        channels_last = args.child == "timm-channels-last"  # validate.py --channels-last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        start = time.perf_counter()
        with torch.inference_mode():
            for inputs, target in loader:
                if channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                output = model(inputs)
                acc1, _ = accuracy(output, target, topk=(1, min(5, output.shape[1])))
                hits += float(acc1) * inputs.size(0) / 100.0
                n += inputs.size(0)
        seconds, top1 = time.perf_counter() - start, hits / max(n, 1)
    print(json.dumps(dict(n=n, seconds=seconds, top1=top1,
                          peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          workers_peak_mib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)))


def measure(which: str, weights: Path, data: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", which, "--weights", str(weights), "--data", str(data),
               "--workers", str(args.workers), "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{which} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,4000,16000", help="image counts, comma-separated")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--image", default="160x120", help="generated JPEG size WxH")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch_threads_default())
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated images here")
    parser.add_argument("--child", choices=("ours", "timm", "timm-channels-last"), help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    width, height = (int(v) for v in args.image.lower().split("x"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="evaluate-scale-"))
    weights = workdir / "myresnet18-4class.safetensors"
    make_weights(weights, args.img_size)
    print(f"CPU: {cpu_line()}")
    print(f"myresnet18 (4 classes) at {args.img_size} px, {width}x{height} JPEGs, batch {args.batch_size}, "
          f"{args.workers} decoding worker(s), {args.threads} torch thread(s)\n")
    print("| images | ours img/s | timm img/s | ours / timm | timm --channels-last img/s | ours / that | "
          "ours peak MiB (workers) | timm peak MiB (workers) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        data = make_folder(workdir / f"data-{size}", size, workdir / "pool", (width, height))
        ours, timm_ = measure("ours", weights, data, args), measure("timm", weights, data, args)
        timm_cl = measure("timm-channels-last", weights, data, args)
        assert ours["n"] == timm_["n"] == timm_cl["n"] == size, (ours, timm_, timm_cl)
        # same pixels, same model: the same answers, but for a few near-ties that float rounding may turn
        assert abs(ours["top1"] - timm_["top1"]) <= 5 / size, (ours, timm_)
        rate_ours, rate_timm, rate_cl = (size / r["seconds"] for r in (ours, timm_, timm_cl))
        print(f"| {size:,} | {rate_ours:.1f} | {rate_timm:.1f} | {rate_ours / rate_timm:.2f}x | "
              f"{rate_cl:.1f} | {rate_ours / rate_cl:.2f}x | "
              f"{ours['peak_mib']:,.0f} ({ours['workers_peak_mib']:,.0f}) | "
              f"{timm_['peak_mib']:,.0f} ({timm_['workers_peak_mib']:,.0f}) |", flush=True)


def torch_threads_default() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    main()
