"""Input pipeline throughput: img/s from JPEG files to 224 px training tensors, ours against timm's create_loader.

    python benchmarks/loader_throughput.py --images 512 --workers 1,2

Both loaders read the same generated 500x375 JPEGs (4 class folders) into batches of training tensors (random
resized crop to 224 px, scale 0.6-1.0, horizontal flip, ImageNet normalisation, no colour jitter) with the same
batch size and worker count: ours is resnet_hub.tasks.input_pipeline.make_loader over resnet_hub.tasks.data
(EXIF, bit depth
and colour modes handled), timm's is ``timm.data.create_loader`` over ``create_dataset`` without the CUDA
prefetcher. No model runs: this is the rate at which a trainer could be fed. Each pass is timed from creating the
loader to the last batch (worker start-up included), after one untimed warm-up pass of each loader that fills the
page cache. The CPU and its vector extensions are printed beside the table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from evaluate_scale import cpu_line, make_folder

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def ours(folder: Path, workers: int, batch_size: int, img_size: int) -> int:
    from resnet_hub.tasks.data import open_labelled, train_transform
    from resnet_hub.tasks.input_pipeline import make_loader

    images = open_labelled(folder, "eval")
    config = dict(input_size=(3, img_size, img_size), interpolation="bilinear", mean=MEAN, std=STD)
    n = 0
    with make_loader(images, train_transform(config), batch_size, workers=workers, shuffle=True) as loader:
        for batch in loader:
            n += len(batch)
    return n


def timm_loader(folder: Path, workers: int, batch_size: int, img_size: int) -> int:
    from timm.data import create_dataset, create_loader

    dataset = create_dataset("", root=str(folder), split="train")
    loader = create_loader(dataset, input_size=(3, img_size, img_size), batch_size=batch_size, is_training=True,
                           use_prefetcher=False, scale=(0.6, 1.0), hflip=0.5, color_jitter=0.0,
                           interpolation="bilinear", mean=MEAN, std=STD, num_workers=workers,
                           persistent_workers=False)
    n = 0
    for inputs, _ in loader:
        n += inputs.shape[0]
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=1, help="timed passes of each loader (interleaved)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated images here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loader-throughput-"))
    folder = make_folder(workdir / "data", args.images, workdir / "pool", (500, 375))
    print(f"CPU: {cpu_line()}")
    print(f"{args.images} JPEGs 500x375 -> {args.img_size} px training tensors, batch {args.batch_size}\n")
    print("| workers | ours img/s | timm create_loader img/s | ours / timm |")
    print("|---:|---:|---:|---:|")
    for workers in (int(w) for w in args.workers.split(",")):
        best = {"ours": 0.0, "timm": 0.0}
        for run in range(args.rounds + 1):  # the first round warms the page cache and is not counted
            for name, load in (("ours", ours), ("timm", timm_loader)):
                start = time.perf_counter()
                n = load(folder, workers, args.batch_size, args.img_size)
                rate = n / (time.perf_counter() - start)
                assert n == args.images, (name, n)
                if run:
                    best[name] = max(best[name], rate)
        print(f"| {workers} | {best['ours']:.1f} | {best['timm']:.1f} | {best['ours'] / best['timm']:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
