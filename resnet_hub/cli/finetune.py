"""``resnet-hub finetune``: train a variant on an image folder or the built-in ``digits``, write safetensors.

One process by default; ``--nproc N`` starts N data-parallel processes on this machine (torch.distributed's
launcher, as ``torchrun --nproc-per-node N -m resnet_hub finetune ...`` does, which works too), ``--engine ray``
runs the same loop on Ray Train workers. Only rank 0 prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

ENGINES = ("local", "ray")


def finetune_command(
    name: str = typer.Argument(..., help="Variant to fine-tune, optionally with a pretrained tag."),
    data: str = typer.Option(..., "--data", help="Image folder (one sub-folder per class; train/ and val/ used "
                                                  "when present) or 'digits' (built-in, offline)."),
    output: Path = typer.Option(..., "--output", "-o",
                                help="Where to write the fine-tuned .safetensors (its checkpoint is kept beside it: "
                                     "NAME.checkpoint.safetensors)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Start from these safetensors weights."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Start from the default (or NAME.tag) pretrained weights."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=32,
                                           help="Square training/inference size (default: the weights' size)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per step per process."),
    lr: float = typer.Option(0.05, "--lr", help="Peak learning rate (cosine schedule, 1 warm-up epoch)."),
    opt: str = typer.Option("sgd", "--opt", help="sgd (momentum 0.9) | adamw"),
    val_split: float = typer.Option(0.2, "--val-split", help="Hold-out fraction when SRC has no val/ folder."),
    seed: int = typer.Option(0, "--seed", help="Seeds order, crops and init: same seed, same weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (mixed precision and channels-last on cuda)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0,
                                          help="Decoding processes per training process (0: in-process; default: "
                                               "from the CPUs this process may use)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run that writes --output from "
                                                        "its last complete epoch."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes on this machine (torchrun)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="BatchNorm statistics over all processes' images."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model (CUDA, long runs)."),
    engine: str = typer.Option("local", "--engine", help="local (this machine, --nproc) | ray (Ray Train)."),
    num_workers: int = typer.Option(2, "--num-workers", min=1, help="Ray Train workers (--engine ray)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster HOST:PORT (--engine ray; default: "
                                                                  "a local Ray instance)."),
    use_gpu: bool = typer.Option(False, "--use-gpu", help="One GPU per Ray worker (--engine ray)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file (and its checkpoint)."),
    as_json: bool = typer.Option(False, "--json", help="Print the training record as JSON on stdout."),
) -> None:
    """Fine-tune NAME on labelled images; the output records classes, preprocessing and validation accuracy."""
    from ..errors import ResNetHubError, WeightsChoiceError
    from ..tasks.train import FinetuneOptions

    WeightsChoiceError.check(weights, pretrained)  # one rule, one message, before any work
    if engine not in ENGINES:
        raise typer.BadParameter(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    curves = output.with_suffix(".png")  # the training curves, drawn beside the weights (the plots extra)
    if curves.exists() and not force:
        raise typer.BadParameter(f"{curves} (where the training curves go) already exists; pass --force to replace it",
                                 param_hint="--output")
    options = FinetuneOptions(epochs=epochs, img_size=img_size, batch_size=batch_size, lr=lr, opt=opt,
                              val_split=val_split, seed=seed, device=device, workers=workers, sync_bn=sync_bn,
                              compile=compile_model)
    rank = int(os.environ.get("RANK", "0"))
    if engine == "ray":
        _run_ray(name, data, output, weights, pretrained, options, force, resume, num_workers, address, use_gpu,
                 as_json)
        return
    from ..tasks.distributed import launched_by_torchrun

    if nproc > 1 and not launched_by_torchrun():
        _launch(nproc, options, output, force, resume)
        return
    try:
        _run_local(name, data, output, weights, pretrained, options, force, resume, as_json, quiet=rank != 0)
    except ResNetHubError:
        if rank != 0:  # rank 0 meets the same error and prints it: one line, not one per process
            raise typer.Exit(1)
        raise


def _launch(nproc: int, options, output: Path, force: bool, resume: bool) -> None:
    """Check what can be checked once, then start NPROC copies of this command under torch's launcher."""
    from ..tasks.checkpoint import checkpoint_path, read_info
    from ..tasks.distributed import launch_local
    from ..tasks.train import check_output

    options.validate()
    check_output(output, overwrite=force, resume=resume)
    if resume:
        read_info(checkpoint_path(output))  # no checkpoint, or not one: say so before starting N processes
    argv = _argv_without_nproc(sys.argv[1:])
    launch_local(nproc, argv)


def _argv_without_nproc(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


def _run_local(name, data, output, weights, pretrained, options, force, resume, as_json, quiet: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn

    from ..tasks.train import finetune
    from .progress import progress_display

    err = Console(stderr=True, quiet=quiet)
    # On a terminal: bars; piped or logged: one plain line per finished epoch (progress_display).
    with progress_display(err, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), disable=quiet) as progress:
        tasks: dict[int, TaskID] = {}

        def on_step(update) -> None:
            if update.epoch not in tasks:
                tasks[update.epoch] = progress.add_task(f"epoch {update.epoch}/{update.epochs}", total=update.steps,
                                                        stats="")
            progress.update(tasks[update.epoch], completed=update.step,
                            stats=f"loss {update.loss:.3f}  train top-1 {update.top1:.1%}")

        def on_epoch(record) -> None:
            task = tasks.get(record.epoch)
            if task is not None:
                progress.update(task, stats=f"loss {record.train_loss:.3f}  train top-1 {record.train_top1:.1%}  "
                                            f"val top-1 {record.val_top1:.1%}  top-5 {record.val_top5:.1%}")

        def on_note(text: str) -> None:
            progress.console.print(f"[yellow]Note:[/yellow] {text}", highlight=False)

        result = finetune(name, data, output, weights=weights, pretrained=pretrained, options=options,
                          overwrite=force, resume=resume, on_step=on_step, on_epoch=on_epoch, on_note=on_note)
    if not quiet:
        _report(result, data, as_json, err)


def _run_ray(name, data, output, weights, pretrained, options, force, resume, num_workers, address, use_gpu,
             as_json) -> None:
    from rich.console import Console

    from ..tasks.ray_train import finetune_on_ray

    err = Console(stderr=True)
    result = finetune_on_ray(name, data, output, weights=weights, pretrained=pretrained, options=options,
                             overwrite=force, resume=resume, num_workers=num_workers, address=address,
                             use_gpu=use_gpu, on_note=lambda text: err.print(f"[yellow]Note:[/yellow] {text}"))
    for record in result.epochs:
        err.print(f"epoch {record.epoch}/{options.epochs}  loss {record.train_loss:.3f}  train top-1 "
                  f"{record.train_top1:.1%}  val top-1 {record.val_top1:.1%}  top-5 {record.val_top5:.1%}",
                  highlight=False)
    _report(result, data, as_json, err)


def _report(result, data, as_json: bool, err) -> None:
    from .text import plain

    for path, reason in sorted(result.skipped.items()):
        err.print(f"[yellow]Warning:[/yellow] skipped {plain(path)}: {plain(reason)}", highlight=False)
    if result.ignored:
        err.print(f"[yellow]Warning:[/yellow] {len(result.ignored)} non-image file(s) ignored, e.g. "
                  f"{plain(result.ignored[0])}", highlight=False)
    from ..errors import ResNetHubError
    from ..tasks.plots import training_curves

    try:
        # Refused at the start when it existed without --force: here it is ours to (re)write.
        curves = Path(result.output).with_suffix(".png")
        training_curves(result.record["history"], curves, title=f"{result.architecture} on {data}", overwrite=True)
        err.print(f"training curves: {plain(str(curves))}", highlight=False)
    except ResNetHubError as exc:  # the weights are written: a missing plots extra only costs the picture
        err.print(f"[yellow]Note:[/yellow] no training curves drawn: {plain(str(exc))}", highlight=False)
    if as_json:
        typer.echo(json.dumps(dict(output=str(result.output), sha256=result.sha256, architecture=result.architecture,
                                   classes=result.classes, checkpoint=str(result.checkpoint), **result.record),
                              indent=2))
        return
    run = result.record.get("run", {})
    typer.echo(f"wrote {result.output} ({result.architecture}, {len(result.classes)} classes, sha256 "
               f"{result.sha256[:12]}...)")
    typer.echo(f"val top-1 {result.val_top1:.2%}, top-5 {result.val_top5:.2%} after {len(result.epochs)} epochs")
    if run:
        speed = f"{run['throughput_img_s']:.1f} img/s" if run.get("throughput_img_s") else "n/a"
        typer.echo(f"ran on {run['world_size']} process(es) ({run['engine']}, {run['device']}): {speed} training, "
                   f"{run['wall_seconds']:.0f} s wall time; checkpoint {result.checkpoint}")
    typer.echo(f"next: resnet-hub evaluate {result.output} --data {data}")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune_command)
