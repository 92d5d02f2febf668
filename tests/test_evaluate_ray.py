"""#23 item 6: evaluate --engine ray reports exactly what local evaluate reports (local Ray, 2 CPUs)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("ray")

from resnet_hub.tasks.batch_evaluate import evaluate_on_ray, ray_model_for  # noqa: E402
from resnet_hub.tasks.evaluate import evaluate, resolve_target  # noqa: E402
from test_evaluate import _digits_png_folder  # noqa: E402


def test_ray_evaluation_equals_the_local_one(digits_model, tmp_path):
    folder = _digits_png_folder(tmp_path / "digits-png", per_class=4)
    (folder / "3" / "zz-broken.png").write_bytes(b"\x89PNG truncated")  # skipped mid-stream by both engines
    shutil.copy(folder / "7" / sorted(p.name for p in (folder / "7").iterdir())[0], folder / "7" / "copy.png")
    local = evaluate(str(digits_model), folder, batch_size=8)
    on_ray = evaluate_on_ray(resolve_target(str(digits_model)), folder, ray_model=ray_model_for(str(digits_model)),
                             batch_size=8, num_workers=1, num_cpus=2)
    assert on_ray.n == local.n == 41
    assert (on_ray.top1, on_ray.top5) == (local.top1, local.top5)
    assert on_ray.per_class == local.per_class
    assert [(s.path, s.reason) for s in on_ray.skipped] == [(s.path, s.reason) for s in local.skipped]
    assert len(local.skipped) == 1 and on_ray.data == local.data
    assert on_ray.predictions.tolist() == local.predictions.tolist()
    assert json.dumps(on_ray.to_dict()["per_class"]) == json.dumps(local.to_dict()["per_class"])
