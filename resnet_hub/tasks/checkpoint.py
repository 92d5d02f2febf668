"""Training checkpoints: everything a fine-tune needs to continue exactly where it stopped, never as a pickle.

One safetensors file per run, beside the output (``model.safetensors`` -> ``model.checkpoint.safetensors``),
rewritten atomically after every completed epoch, so a crash, preemption or SIGKILL leaves the last complete
epoch on disk and never a half-written file. Tensors (the model, the optimizer's per-parameter state flattened as
``optimizer/<param index>/<name>``, torch's CPU and CUDA RNG states, numpy's key array) are safetensors tensors;
everything else (epoch, optimizer hyper-parameters, scheduler, gradient scaler, python and numpy RNG scalars,
sampler epoch, the recipe that must match to resume, the history so far) is one JSON document in the file's
header. Reading it back therefore cannot run code, unlike ``torch.load`` of a ``.pth`` checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrainingError

if TYPE_CHECKING:
    import torch

FORMAT = "resnet-hub-training-checkpoint"
VERSION = 1
STATE_KEY = "resnet_hub_checkpoint"  # the safetensors metadata key holding the JSON document
SUFFIX = ".checkpoint.safetensors"


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where the checkpoint of a run writing ``output`` lives: beside it, named after it."""
    output = Path(output)
    stem = output.name[: -len(".safetensors")] if output.name.endswith(".safetensors") else output.name
    return output.with_name(stem + SUFFIX)


@dataclass
class TrainingState:
    """One checkpoint in memory. ``info`` is the JSON part that is not optimizer / scheduler / scaler / RNG."""

    epoch: int  # completed epochs
    model: dict[str, "torch.Tensor"]
    optimizer: dict[str, Any]  # torch's Optimizer.state_dict() form
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    rng: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def capture_rng() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA, when initialised) RNG states."""
    import random

    import numpy as np
    import torch

    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(keys), gauss],
        "numpy": [np_name, np.asarray(np_keys, dtype=np.int64), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    if "python" in state:
        version, keys, gauss = state["python"]
        random.setstate((version, tuple(keys), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | os.PathLike, state: TrainingState) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, then rename); the previous checkpoint stays
    whole until the new one is complete."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from ..weights.io import atomic_write

    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.model.items():
        tensors[f"model/{key}"] = value
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state.optimizer.get("state", {}).items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    rng_json: dict[str, Any] = {}
    if "torch" in state.rng:
        tensors["rng/torch"] = state.rng["torch"]
    for i, cuda_state in enumerate(state.rng.get("cuda") or []):
        tensors[f"rng/cuda/{i}"] = cuda_state
    if "numpy" in state.rng:
        name, keys, pos, has_gauss, gauss = state.rng["numpy"]
        tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
        rng_json["numpy"] = [name, pos, has_gauss, gauss]
    if "python" in state.rng:
        rng_json["python"] = state.rng["python"]
    rng_json["cuda_devices"] = len(state.rng.get("cuda") or [])
    document = {
        "format": FORMAT, "version": VERSION, "epoch": state.epoch,
        "optimizer": {"param_groups": state.optimizer.get("param_groups", []), "scalars": scalars},
        "scheduler": state.scheduler, "scaler": state.scaler, "rng": rng_json, "info": state.info,
    }
    text = json.dumps(document, allow_nan=False)
    prepared = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}

    def write(tmp: str) -> None:
        save_file(prepared, tmp, metadata={"format": "pt", STATE_KEY: text})

    return atomic_write(path, write, overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by :func:`save_checkpoint`; TrainingError saying what is wrong otherwise."""
    import numpy as np
    import torch
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"No checkpoint to resume from at {path}: one is written beside --output after each "
                            "completed epoch. Run without --resume to start from the beginning.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get(STATE_KEY)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()} if text else {}
    except Exception as exc:  # safetensors' error types differ between versions
        raise TrainingError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); it may be "
                            "damaged. Delete it and run without --resume to start again.") from None
    if not text:
        raise TrainingError(f"{path} is a safetensors file but not a resnet-hub training checkpoint (no "
                            f"'{STATE_KEY}' record); pass the --output of the run you want to resume.")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise TrainingError(f"{path}: the checkpoint record is not valid JSON ({exc}); it is damaged.") from None
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise TrainingError(f"{path} is a checkpoint of format {document.get('format')!r} version "
                            f"{document.get('version')!r}; this resnet-hub reads {FORMAT!r} version {VERSION}.")
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in document["optimizer"].get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    rng_json = document.get("rng", {})
    rng: dict[str, Any] = {}
    if "python" in rng_json:
        rng["python"] = rng_json["python"]
    if "numpy" in rng_json and "rng/numpy" in tensors:
        name, pos, has_gauss, gauss = rng_json["numpy"]
        rng["numpy"] = [name, tensors["rng/numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss]
    if "rng/torch" in tensors:
        rng["torch"] = tensors["rng/torch"].to(torch.uint8)
    rng["cuda"] = [tensors[f"rng/cuda/{i}"] for i in range(int(rng_json.get("cuda_devices", 0)))]
    return TrainingState(epoch=int(document["epoch"]), model=model,
                         optimizer={"state": state, "param_groups": document["optimizer"]["param_groups"]},
                         scheduler=document.get("scheduler", {}), scaler=document.get("scaler", {}), rng=rng,
                         info=document.get("info", {}))


def read_info(path: str | os.PathLike) -> tuple[int, dict[str, Any]]:
    """(completed epochs, info) of a checkpoint without loading its tensors (for checks before training)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get(STATE_KEY)
        document = json.loads(text) if text else None
    except Exception:
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return load_checkpoint(path).epoch, {}  # raises the precise error
    return int(document.get("epoch", 0)), document.get("info", {})
