"""Throughput of `resnet-hub predict` locally and on Ray Data with 1 and 2 workers, in one run on one file set.

    python benchmarks/ray_throughput.py --images 256 --img-size 224 --workers 1,2

Every engine classifies the same generated JPEG files (decode + timm preprocessing + model) with the same seeded
weights. Local predict runs in this process with 1 and all threads (--threads); Ray workers get one CPU (and one
thread) each on a local Ray started once with this machine's cores. Ray timings are end to end for one call
(listing, actor start-up with its torch import and model load, streaming, writing the .parquet file) but not Ray's
own start-up, which is printed apart. Read the ratios: absolute numbers move with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")


def make_images(folder: Path, count: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, (1, 1, 3)) * np.linspace(0.3, 1.0, size)[:, None, None]
        noise = rng.integers(0, 40, (size, size, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"img{i:05d}.jpg", quality=90)


def make_weights(path: Path, model: str, img_size: int) -> None:
    import resnet_hub

    net = resnet_hub.create_model(model, num_classes=1000)
    preprocessing = {"input_size": [3, img_size, img_size], "crop_pct": 0.875, "interpolation": "bilinear",
                     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    resnet_hub.save_weights(net, path, architecture=model, metadata={"preprocessing": preprocessing})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="myresnet18")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--img-size", type=int, default=224, help="model input size (files are 1.15x larger)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="comma-separated Ray worker counts")
    parser.add_argument("--threads", default=f"1,{os.cpu_count() or 1}",
                        help="comma-separated torch thread counts for local predict (one row each)")
    args = parser.parse_args()

    import ray
    import torch

    from resnet_hub.tasks.batch_predict import TorchBatchModel, predict_with_ray
    from resnet_hub.tasks.predict import build_predictor

    workdir = Path(tempfile.mkdtemp(prefix="ray-throughput-"))
    images, weights = workdir / "images", workdir / "weights.safetensors"
    images.mkdir()
    make_images(images, args.images, int(args.img_size * 1.15))
    make_weights(weights, args.model, args.img_size)
    rows: list[tuple[str, float, int]] = []

    for threads in dict.fromkeys(int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        begin = time.perf_counter()
        predictor = build_predictor(args.model, weights=weights)
        run = predictor.predict_paths([images], k=5, batch_size=args.batch_size)
        rows.append((f"local, {threads} thread(s)", time.perf_counter() - begin, len(run.predictions)))

    begin = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    ray_start = time.perf_counter() - begin
    try:
        model = TorchBatchModel(args.model, weights=str(weights))
        for workers in (int(w) for w in args.workers.split(",")):
            begin = time.perf_counter()
            result = predict_with_ray(model, [images], workdir / f"ray-{workers}.parquet", k=5,
                                      batch_size=args.batch_size, num_workers=workers)
            rows.append((f"ray, {workers} worker(s) x 1 CPU", time.perf_counter() - begin, result.predicted))
    finally:
        ray.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.model} at {args.img_size}px, {args.images} JPEG files, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, ray {ray.__version__}")
    print(f"Ray start-up (not in the timings): {ray_start:.1f} s")
    print(f"| engine | images | seconds | img/s | vs {rows[0][0]} |")
    print("|---|---:|---:|---:|---:|")
    local_rate = rows[0][2] / rows[0][1]
    for name, seconds, count in rows:
        rate = count / seconds
        print(f"| {name} | {count} | {seconds:.1f} | {rate:.1f} | {rate / local_rate:.2f}x |")


if __name__ == "__main__":
    main()
