"""Shared by the training tests: real digit images as an image folder, and a fine-tune run in a fresh process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from helpers.cli import run_python

REPO_ROOT = Path(__file__).resolve().parents[1]


def digit_folder(root: Path, per_class: int = 6, labels=(0, 1, 7), split: str | None = None, start: int = 0) -> Path:
    """Real scikit-learn digit images written as PNG files in ImageFolder layout (``root[/split]/digitN/``)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    base = root / split if split else root
    for label in labels:
        folder = base / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(digits.target == label)[start:start + per_class]:
            Image.fromarray(np.uint8(digits.images[i] * 255 / 16)).save(folder / f"{i}.png")
    return root


# One thread per process (what torchrun sets), so runs with 1 and with 2 processes compute alike; never the Hub.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


# A fine-tune in a fresh process with torch on one thread; KILL_AT="epoch,step" SIGKILLs itself at that step.
FINETUNE_SCRIPT = """
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    from resnet_hub.tasks.train import FinetuneOptions, finetune
    data, output, options, resume, kill_at = sys.argv[1:6]
    kill = tuple(int(v) for v in kill_at.split(",")) if kill_at else None

    def on_step(update):
        if kill and (update.epoch, update.step) == kill:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind runs, as with an OOM kill or power loss

    notes = []
    result = finetune("myresnet18", data, output, options=FinetuneOptions(**json.loads(options)),
                      resume=resume == "1", on_step=on_step, on_note=notes.append)
    print(json.dumps(dict(val_top1=result.val_top1, notes=notes, run=result.record["run"])))
"""


def finetune_in_subprocess(data, output, options: dict, resume: bool = False, kill_at: str = ""):
    import json

    return run_python(FINETUNE_SCRIPT, str(data), str(output), json.dumps(options), "1" if resume else "0", kill_at,
                      env=ONE_THREAD)
