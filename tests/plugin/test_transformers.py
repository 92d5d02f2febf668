"""transformers as a first-class client of our Hub repos, offline: a fine-tuned digits model published with
``resnet-hub publish --dry-run`` is served by ``transformers.pipeline("image-classification", model=FOLDER)`` and
by ``AutoModelForImageClassification`` / ``AutoImageProcessor`` in a child process that never imports
resnet_hub (the start-up hook registers the variants when transformers imports timm), and they agree with
``resnet-hub predict local-dir:FOLDER`` on real digit images: same top-1 classes, same scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

N_IMAGES = 24
# predict runs the BatchNorm-folded, channels-last copy; transformers the plain model: float rounding only.
SCORE_TOLERANCE = 1e-4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RESNET_HUB_NO_TIMM_HOOK", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", COLUMNS="200")
    return env


@pytest.fixture(scope="module")
def published(digits_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("digits-repo") / "repo"
    cli = Path(sys.executable).parent / "resnet-hub"
    proc = subprocess.run([str(cli), "publish", "myresnet18", "--weights", str(digits_model), "--repo-id",
                           "me/myresnet18-digits", "--dry-run", str(folder)], capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    return folder


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory) -> tuple[list[Path], list[int]]:
    """Real handwritten digits from the hold-out split (8x8 grey PNG files, as a user would have them)."""
    from PIL import Image

    from resnet_hub.tasks.data import open_labelled

    images = open_labelled("digits", "val")
    folder = tmp_path_factory.mktemp("digit-images")
    paths, labels = [], []
    for n, (index, label) in enumerate(images.items[:N_IMAGES]):
        path = folder / f"{n:03d}-{label}.png"
        Image.fromarray(np.asarray(images.arrays[index]), mode="L").save(path)
        paths.append(path)
        labels.append(label)
    return paths, labels


def _predict(published: Path, paths: list[Path], tmp_path: Path) -> list[tuple[str, float]]:
    cli = Path(sys.executable).parent / "resnet-hub"
    out = tmp_path / "predict.json"
    proc = subprocess.run([str(cli), "predict", f"local-dir:{published}", *map(str, paths), "--pretrained",
                           "--topk", "1", "--json"], capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out.write_text(proc.stdout)
    rows = json.loads(proc.stdout)["predictions"]
    by_path = {Path(r["path"]).name: r["topk"][0] for r in rows}
    return [(str(by_path[p.name]["label"]), float(by_path[p.name]["probability"])) for p in paths]


TRANSFORMERS_CHILD = """
    import json, sys
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline
    from PIL import Image

    folder, paths = sys.argv[1], sys.argv[2:]
    classifier = pipeline("image-classification", model=folder, device="cpu")
    piped = [out[0] for out in classifier(paths, top_k=1)]
    processor = AutoImageProcessor.from_pretrained(folder)
    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    images = [Image.open(p).convert("RGB") for p in paths]
    with torch.no_grad():
        probs = model(**processor(images, return_tensors="pt")).logits.softmax(-1)
    score, index = probs.max(-1)
    auto = [{"label": model.config.id2label[int(i)], "score": float(s)} for s, i in zip(score, index)]
    print(json.dumps({"pipeline": piped, "auto": auto, "class": type(model).__name__,
                      "registered_by_hook": "resnet_hub.zoo.registry" in sys.modules}))
"""


def test_transformers_serves_a_published_folder_like_predict_does(published, digit_images, tmp_path):
    paths, labels = digit_images
    ours = _predict(published, paths, tmp_path)
    assert "import resnet_hub" not in TRANSFORMERS_CHILD
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(TRANSFORMERS_CHILD), str(published),
                           *map(str, paths)], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["class"] == "TimmWrapperForImageClassification" and result["registered_by_hook"]
    for route in ("pipeline", "auto"):
        theirs = [(str(r["label"]), float(r["score"])) for r in result[route]]
        assert [label for label, _ in theirs] == [label for label, _ in ours], route
        worst = max(abs(a - b) for (_, a), (_, b) in zip(theirs, ours))
        assert worst <= SCORE_TOLERANCE, f"{route}: scores differ from predict's by up to {worst:.2e}"
    accuracy = np.mean([label == str(truth) for (label, _), truth in zip(ours, labels)])
    assert accuracy >= 0.8, f"the published model did not keep what it learned: top-1 {accuracy:.0%}"


def test_transformers_cannot_make_our_builder_allocate_a_hostile_head(tmp_path):
    """transformers builds the model (timm.create_model(architecture, num_classes=N)) before it loads any weights,
    so the builder's own bound is what stops a hostile num_classes on that route."""
    import resnet_hub
    from resnet_hub.tasks.publish import build_hub_folder
    from resnet_hub.weights.io import save_weights

    weights = tmp_path / "w.safetensors"
    save_weights(resnet_hub.create_model("myresnet18", num_classes=3), weights, "myresnet18")
    folder = build_hub_folder("myresnet18", weights, tmp_path / "repo", "me/hostile", label_names=["a", "b", "c"]).path
    config = json.loads((folder / "config.json").read_text())
    huge = 200_000  # above the 100,000 bound, small enough that transformers' own id2label dict stays cheap
    config.update(num_classes=huge)
    config["pretrained_cfg"]["num_classes"] = huge
    config.pop("label_names")
    (folder / "config.json").write_text(json.dumps(config))
    code = textwrap.dedent("""
        import sys
        from transformers import AutoModelForImageClassification
        try:
            AutoModelForImageClassification.from_pretrained(sys.argv[1])
        except Exception as exc:
            print(type(exc).__name__, "|", exc)
        else:
            print("built")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=_env(),
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, _, message = proc.stdout.strip().splitlines()[-1].partition(" | ")
    assert name == "MetadataError" and "200,000" in message and "100,000" in message, proc.stdout
