"""``resnet-hub finetune --engine ray``: the same training loop (``train.finetune``) in Ray Train's TorchTrainer.

Ray starts the worker processes (on one machine or a cluster), creates the torch process group (gloo on CPU,
nccl with ``use_gpu``) and sets RANK / LOCAL_RANK / WORLD_SIZE; the loop then runs exactly as under torchrun.
Checkpoints go through Ray: after every epoch rank 0 reports the checkpoint file (and, after the last epoch,
the weights) as a Ray checkpoint, which Ray persists under ``<output>.ray/`` beside the output. When the fit
ends, successfully or not, the newest one is copied to the ordinary checkpoint beside the output, so
``--resume`` continues a Ray run with either engine; a Ray ``--resume`` itself starts from Ray's newest
checkpoint of the run (or from the checkpoint beside the output when Ray has none).

Multi-node: ``--data`` and the output's folder must be on storage every node sees (NFS or similar), as the
workers read the images and Ray persists checkpoints there.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ..errors import MissingDependencyError, TrainingError
from ..leftovers import folder_prefix, sweep_stale_folders
from .train import FinetuneOptions, FinetuneResult, check_output

RUN_NAME = "finetune"
CHECKPOINT_FILE = "checkpoint.safetensors"
WEIGHTS_FILE = "model.safetensors"
WORK_PREFIX = "resnet-hub-ray-"  # each worker's scratch folder in the temp dir: resnet-hub-ray-<pid>-<host>-XXXX


def storage_for(output: str | os.PathLike) -> Path:
    """Ray Train's storage folder for a run writing ``output``: beside it."""
    output = Path(output)
    return output.with_name(output.name[: -len(".safetensors")] + ".ray")


def check_address(address: str | None, timeout: float = 3.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at a ``HOST:PORT`` Ray address (``ray.init`` would
    retry for about a minute before giving up)."""
    if not address or address == "auto" or address.startswith("ray://") and ":" not in address[6:]:
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TrainingError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise TrainingError(f"No Ray cluster answers at {address} ({exc.strerror or exc}). Start one on that machine "
                            f"with `ray start --head --port {port}` (workers join with `ray start --address "
                            f"{hostport}`), or leave out --address to train on a local Ray instance") from None


def finetune_on_ray(
    name: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    options: FinetuneOptions = FinetuneOptions(),
    overwrite: bool = False,
    resume: bool = False,
    num_workers: int = 2,
    address: str | None = None,
    use_gpu: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Run ``train.finetune`` on ``num_workers`` Ray Train workers; write ``output`` and its checkpoint here."""
    try:
        import ray
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise MissingDependencyError("ray[train]", "ray", "--engine ray") from exc
    from .checkpoint import checkpoint_path, load_checkpoint
    from ..weights.io import atomic_write, read_metadata, sha256_of_file

    if num_workers < 1:
        raise TrainingError(f"--num-workers must be >= 1, got {num_workers}")
    if use_gpu and options.device != "cuda":
        options = FinetuneOptions(**{**asdict(options), "device": "cuda"})
    options.validate()
    output = check_output(output, overwrite=overwrite, resume=resume)
    checkpoint = checkpoint_path(output)
    storage = storage_for(output)
    if resume and not _ray_has_checkpoint(storage):
        load_checkpoint(checkpoint)  # the one beside the output must then be there and readable
    if not resume and storage.exists():
        shutil.rmtree(storage)  # a fresh run: Ray would otherwise resume the old one found there
    check_address(address)
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(include_dashboard=False, log_to_driver=True)
    config = dict(name=name, data=str(data), weights=str(weights) if weights else None, pretrained=pretrained,
                  options=asdict(options), resume=resume, resume_file=str(checkpoint.resolve()))
    trainer = TorchTrainer(
        _worker_loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name=RUN_NAME, storage_path=str(storage.resolve()),
                             failure_config=FailureConfig(max_failures=0),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # ray.train.TrainingFailedError and the worker's own error inside it
        kept = _copy_newest(storage, checkpoint, atomic_write)
        where = f"; the last complete epoch's checkpoint is {kept} (add --resume to continue)" if kept else ""
        raise TrainingError(f"Ray Train failed: {_first_line(exc)}{where}") from None
    _copy_newest(storage, checkpoint, atomic_write)
    assert result.checkpoint is not None  # rank 0 reports one after every epoch (see _train_loop)
    with result.checkpoint.as_directory() as folder:
        weights_file = Path(folder) / WEIGHTS_FILE
        atomic_write(output, lambda tmp: shutil.copyfile(weights_file, tmp), overwrite=True)
    import json

    from ..zoo.model_loading import LABEL_NAMES_KEY, TRAINING_KEY
    from .train import EpochRecord

    metadata = read_metadata(output)
    record = json.loads(metadata[TRAINING_KEY])
    shutil.rmtree(storage, ignore_errors=True)  # its newest checkpoint now lives beside the output
    return FinetuneResult(output=output, sha256=sha256_of_file(output), architecture=metadata["architecture"],
                          classes=json.loads(metadata[LABEL_NAMES_KEY]),
                          epochs=[EpochRecord(**h) for h in record["history"]], record=record, checkpoint=checkpoint)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line and not line.startswith(("Traceback", "File "))]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:500]


def _ray_checkpoints(storage: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of each complete checkpoint Ray persisted; one whose upload a dying worker cut short is not."""
    from .checkpoint import read_info

    found = []
    for file in storage.glob(f"{RUN_NAME}/checkpoint_*/{CHECKPOINT_FILE}"):
        try:
            found.append((read_info(file)[0], file))
        except TrainingError:
            continue
    return found


def _ray_has_checkpoint(storage: Path) -> bool:
    return bool(_ray_checkpoints(storage))


def _copy_newest(storage: Path, checkpoint: Path, atomic_write) -> Path | None:
    """Copy Ray's newest complete checkpoint to the ordinary checkpoint path; None when there is none at all."""
    found = _ray_checkpoints(storage)
    if not found:
        return checkpoint if checkpoint.exists() else None
    _, newest = max(found)
    atomic_write(checkpoint, lambda tmp: shutil.copyfile(newest, tmp), overwrite=True)
    return checkpoint


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: ``train.finetune`` with Ray's checkpoint in and out."""
    import ray.train

    from .checkpoint import checkpoint_path
    from .train import finetune

    # A worker that is killed runs no cleanup: its scratch folder names its pid, and the next worker on this
    # machine removes those whose owner is gone.
    sweep_stale_folders(tempfile.gettempdir(), WORK_PREFIX)
    work = Path(tempfile.mkdtemp(prefix=folder_prefix(WORK_PREFIX)))
    output = work / WEIGHTS_FILE
    resume = bool(config["resume"])
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            shutil.copyfile(Path(folder) / CHECKPOINT_FILE, checkpoint_path(output))
        resume = True
    elif resume:
        shutil.copyfile(config["resume_file"], checkpoint_path(output))

    def on_files(record, checkpoint_file, weights_file) -> None:
        metrics = asdict(record)
        if checkpoint_file is None:
            ray.train.report(metrics)
            return
        folder = work / f"epoch-{record.epoch}"
        folder.mkdir()
        shutil.copyfile(checkpoint_file, folder / CHECKPOINT_FILE)
        if weights_file is not None:
            shutil.copyfile(weights_file, folder / WEIGHTS_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))
        shutil.rmtree(folder, ignore_errors=True)  # Ray has persisted it (synchronous upload): one epoch's copy at most

    try:
        finetune(config["name"], config["data"], output, weights=config["weights"], pretrained=config["pretrained"],
                 options=FinetuneOptions(**config["options"]), overwrite=True, resume=resume, engine="ray",
                 on_files=on_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
