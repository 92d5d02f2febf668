"""`resnet-hub predict --engine ray` on a real local Ray (2 CPUs, started once per session): its output equals
local predict's for every file of a folder with good and bad files, from PyTorch weights and from an ONNX export.

Ray takes ~5-10 s to start and each worker imports torch, so these tests are few and share one cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report: tests never reach the network
os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")

import ray  # noqa: E402  (dev extra; a missing ray must fail this module, not skip it)

from resnet_hub.tasks.batch_predict import (  # noqa: E402
    METADATA_KEY, TorchBatchModel, predict_with_ray, read_predictions,
)
from resnet_hub.tasks.predict import build_predictor  # noqa: E402
from resnet_hub.weights.io import sha256_of_file  # noqa: E402
from helpers.cli import run_cli

RAY_TEST_SECONDS = 240  # a hung pipeline fails the test instead of the whole CI run


@contextlib.contextmanager
def deadline(seconds: int):
    def expire(signum, frame):
        raise TimeoutError(f"Ray batch prediction took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for this module; its address lets CLI subprocesses join it (--address). Shut down
    after the module: a Ray left running in the pytest process breaks later tests' own ``ray.init`` and shares the
    process with every later test's native libraries."""
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def local_entries(predict_json: dict) -> dict[str, dict]:
    """Local `predict --json` as one entry per path: predictions and skipped files alike."""
    entries = {p["path"]: p for p in predict_json["predictions"]}
    entries.update({s["path"]: s for s in predict_json["skipped"]})
    return entries


def assert_same_entry(ray_row: dict, local: dict, tolerance: float) -> None:
    assert set(ray_row) == set(local), (ray_row, local)  # same fields as local --json's entries
    if "reason" in local:
        assert ray_row["reason"] == local["reason"]
        return
    assert [t["index"] for t in ray_row["topk"]] == [t["index"] for t in local["topk"]]
    assert [t["label"] for t in ray_row["topk"]] == [t["label"] for t in local["topk"]]
    assert [t["probability"] for t in ray_row["topk"]] == pytest.approx(
        [t["probability"] for t in local["topk"]], abs=tolerance)


def test_ray_jsonl_equals_local_predict_for_every_file(ray_cluster, image_dir, predict_weights,
                                                       tmp_path):
    local = run_cli("predict", "myresnet18", str(image_dir), "--weights", str(predict_weights),
                    "--topk", "3", "--json")
    assert local.returncode == 0, local.stderr
    local_json = json.loads(local.stdout)
    output = tmp_path / "predictions.jsonl"
    output.write_text("an older run\n")  # --force replaces it
    result = run_cli("predict", "myresnet18", str(image_dir), "--weights", str(predict_weights),
                     "--topk", "3", "--engine", "ray", "--address", ray_cluster, "--num-workers", "2",
                     "--batch-size", "2", "--output", str(output), "--force", timeout=RAY_TEST_SECONDS)
    assert result.returncode == 0, result.stderr
    assert "3 predicted, 2 skipped, 2 worker(s)" in result.stderr

    metadata, rows = read_predictions(output)
    expected = local_entries(local_json)
    assert [row["path"] for row in rows] == sorted(expected)  # every file once, in the folder's order
    for row in rows:
        assert_same_entry(row, expected[row["path"]], tolerance=1e-5)
    assert "cannot decode" in expected[str(image_dir / "d_corrupted.jpg")]["reason"]
    assert metadata["model"] == "myresnet18" and metadata["num_workers"] == 2
    assert metadata["weights_sha256"] == sha256_of_file(predict_weights)
    assert metadata["preprocessing"] == local_json["preprocessing"]


def test_onnx_export_on_ray_to_parquet_equals_local_torch_predict(ray_cluster, image_dir, predict_weights, tmp_path):
    import pyarrow.parquet as pq

    from resnet_hub.export.api import export
    from resnet_hub.export.batch_model import ExportBatchModel
    from resnet_hub.export.onnx import OnnxOptions

    exported = export("myresnet18", "onnx", tmp_path / "onnx", weights=predict_weights,
                      onnx=OnnxOptions(exporter="torchscript", batch_size=2))
    output = tmp_path / "predictions.parquet"
    with deadline(RAY_TEST_SECONDS):  # file:// goes through pyarrow's filesystem listing and reading
        result = predict_with_ray(ExportBatchModel(str(exported.output)), [image_dir.as_uri()], output, k=3,
                                  batch_size=2, num_workers=1)
    assert result.predicted == 3 and result.skipped == 2 and not result.started_ray

    local = build_predictor("myresnet18", weights=predict_weights).predict_paths([image_dir], k=3)
    expected = {f"file://{p.path}": dict(path=f"file://{p.path}", topk=[
        dict(index=i, label=lbl, probability=prob) for i, lbl, prob in zip(p.indices, p.labels, p.probabilities)])
        for p in local.predictions}
    expected.update({f"file://{s.path}": dict(path=f"file://{s.path}", reason=s.reason) for s in local.skipped})
    metadata, rows = read_predictions(output)
    assert [row["path"] for row in rows] == sorted(expected)
    for row in rows:
        assert_same_entry(row, expected[row["path"]], tolerance=1e-5)  # ORT vs PyTorch: same top-k
    table = pq.read_table(output)
    assert table.column_names == ["path", "indices", "labels", "probabilities", "reason"]
    assert json.loads(table.schema.metadata[METADATA_KEY.encode()]) == metadata
    assert metadata["runtime"] == "ONNX Runtime (CPU)"
    assert metadata["weights_sha256"] == sha256_of_file(predict_weights)  # provenance: the weights exported
    assert metadata["graph_sha256"] == sha256_of_file(exported.output / "model.onnx")


def test_too_many_workers_for_the_cluster_is_refused_and_writes_nothing(ray_cluster, image_dir, predict_weights,
                                                                      tmp_path):
    from resnet_hub.tasks.batch_predict import BatchPredictionError

    output = tmp_path / "out.jsonl"
    with deadline(60), pytest.raises(BatchPredictionError, match="need 3 CPUs but this Ray cluster has 2"):
        predict_with_ray(TorchBatchModel("myresnet18", weights=str(predict_weights)), [image_dir], output,
                         num_workers=3)
    assert not output.exists() and list(tmp_path.iterdir()) == []


# --- option and dependency errors: no Ray is started for these ------------------------------------------------


def test_engine_ray_without_ray_installed_names_the_extra(image_dir, predict_weights, tmp_path):
    output = tmp_path / "out.jsonl"
    result = run_cli("predict", "myresnet18", str(image_dir), "--weights", str(predict_weights),
                     "--engine", "ray", "--output", str(output), blocked=("ray",))
    assert result.returncode == 1, result.stderr
    assert "pip install 'resnet-hub[ray]'" in result.stderr and "Traceback" not in result.stderr
    assert "uv sync --extra ray" in result.stderr and "pip install '.[ray]'" in result.stderr  # works in a clone
    assert not output.exists()


def test_existing_output_is_refused_without_force_before_ray_is_needed(image_dir, predict_weights,
                                                                     tmp_path):
    output = tmp_path / "out.parquet"
    output.write_bytes(b"results of an earlier run")
    result = run_cli("predict", "myresnet18", str(image_dir), "--weights", str(predict_weights),
                     "--engine", "ray", "--output", str(output), blocked=("ray",))
    assert result.returncode == 1
    assert "already exists; pass --force" in result.stderr  # checked first: ray (blocked here) was not needed
    assert output.read_bytes() == b"results of an earlier run"


@pytest.mark.parametrize("args, message", [
    (["--engine", "ray"], "pass --output FILE.jsonl"),
    (["--output", "x.jsonl"], "--output only apply with --engine ray"),
    (["--engine", "spark"], "--engine must be 'local' or 'ray'"),
])
def test_engine_options_are_checked(image_dir, args, message):
    result = run_cli("predict", "myresnet18", str(image_dir), *args)
    assert result.returncode == 2 and message in " ".join(result.stderr.split()), result.stderr


# --- output other tools read as-is, in input order, without Ray's noise ----------------------------------------


def test_jsonl_rows_are_in_input_order_and_read_as_is_with_metadata_beside(ray_cluster, image_dir, predict_weights,
                                                                         tmp_path):
    import subprocess
    import sys

    import pandas

    from resnet_hub.tasks.batch_predict import list_sources_in_order, metadata_path
    from resnet_hub.tasks.data import SkippedFile
    from resnet_hub.leftovers import host_tag as _host

    output = tmp_path / "out" / "predictions.jsonl"
    output.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = output.parent / f".predictions.jsonl.{dead.pid}-{_host()}-abcd1234.tmp"  # a SIGKILLed run's
    leftover.write_text('{"path": "half a line')
    sources = [str(tmp_path / "gone1.png"), str(image_dir), str(tmp_path / "gone2.png")]
    with deadline(RAY_TEST_SECONDS):
        result = run_cli("predict", str(predict_weights), *sources, "--engine", "ray", "--output",
                         str(output), "--address", ray_cluster, "--topk", "3")
    assert result.returncode == 0, result.stderr
    expected = [e.path if isinstance(e, SkippedFile) else e for e in list_sources_in_order(sources)]
    assert expected[0] == sources[0] and expected[-1] == sources[-1]
    frame = pandas.read_json(output, lines=True)  # every line is a row: no metadata line to skip
    assert frame["path"].tolist() == expected
    assert set(frame[frame["reason"].notna()]["path"]) == {
        sources[0], sources[2], str(image_dir / "d_corrupted.jpg"), str(image_dir / "notes.txt")}
    predicted = frame[frame["reason"].isna()]
    assert len(predicted) == 3 and all(len(topk) == 3 for topk in predicted["topk"])
    metadata = json.loads(metadata_path(output).read_text())
    assert metadata["weights_sha256"] == sha256_of_file(predict_weights) and metadata["engine"] == "ray"
    assert read_predictions(output) == (metadata, [json.loads(line) for line in output.read_text().splitlines()])
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.jsonl", "predictions.jsonl.meta.json"]
    # Ray's own lines (C++ core-worker log, Ray Data notices) stay off the terminal without --verbose.
    noise = [line for line in result.stderr.splitlines()
             if "core_worker" in line or "Progress bar" in line or line.startswith("[20") or "INFO" in line]
    assert not noise, result.stderr


def test_every_input_missing_exits_1_and_writes_nothing(predict_weights, tmp_path):
    output = tmp_path / "out.jsonl"
    result = run_cli("predict", "myresnet18", str(tmp_path / "gone.png"), str(tmp_path / "nothing"),
                     "--weights", str(predict_weights), "--engine", "ray", "--output", str(output))
    assert result.returncode == 1, result.stderr
    assert "None of the inputs exists" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
