"""Output files stay whole and in order: temporary files of killed writers are swept, and batch prediction's
rows follow the input order with missing inputs in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from resnet_hub.tasks.batch_predict import _in_input_order, list_sources_in_order, output_schema
from resnet_hub.tasks.data import SkippedFile
from resnet_hub.leftovers import host_tag as _host
from resnet_hub.weights.io import atomic_write, sweep_stale_tmp


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temporary_file_is_swept_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "predictions.jsonl"
    # What a SIGKILLed writer leaves: the hidden temporary name atomic_write gives, with the writer's pid and host.
    killed = subprocess.run([sys.executable, "-c",
                             "import os, signal\nfrom resnet_hub.weights.io import atomic_write\n"
                             f"atomic_write({str(target)!r}, lambda tmp: os.kill(os.getpid(), signal.SIGKILL))"],
                            cwd=Path(__file__).resolve().parents[1])
    assert killed.returncode == -9
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".predictions.jsonl.") and not target.exists()
    live = tmp_path / f".predictions.jsonl.{os.getppid()}-{_host()}-abc123.tmp"  # a writer that still runs
    live.write_text("in progress")
    other_host = tmp_path / f".predictions.jsonl.{_dead_pid()}-elsewhere-abc123.tmp"  # a shared file system
    other_host.write_text("someone else's")
    unrelated = tmp_path / f".weights.safetensors.{_dead_pid()}-{_host()}-abc123.tmp"
    unrelated.write_text("another file's")

    atomic_write(target, lambda tmp: Path(tmp).write_text("rows\n"))

    assert target.read_text() == "rows\n"
    assert not leftovers[0].exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    assert sweep_stale_tmp(tmp_path / "weights.safetensors") == [unrelated]


def _rows(paths: list[str]) -> pa.Table:
    n = len(paths)
    return pa.table({"path": paths, "indices": [[0]] * n, "labels": [["a"]] * n, "probabilities": [[1.0]] * n,
                     "reason": [None] * n}, schema=output_schema())


def test_rows_follow_the_input_order_with_missing_inputs_in_place(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("b.png", "a.png"):
        (tmp_path / "imgs" / name).write_bytes(b"")
    sources = [tmp_path / "gone1.png", tmp_path / "imgs", tmp_path / "gone2.png", tmp_path / "imgs" / "b.png",
               tmp_path / "gone3.png"]
    entries = list_sources_in_order(sources)
    expected = [str(tmp_path / "gone1.png"), str(tmp_path / "imgs" / "a.png"), str(tmp_path / "imgs" / "b.png"),
                str(tmp_path / "gone2.png"), str(tmp_path / "imgs" / "b.png"), str(tmp_path / "gone3.png")]
    assert [e.path if isinstance(e, SkippedFile) else e for e in entries] == expected
    files = [e for e in entries if isinstance(e, str)]
    # The model's tables arrive in file order but in any grouping (Ray's blocks): 2 + 1 rows here.
    tables = [_rows(files[:2]), _rows(files[2:])]
    merged = pa.concat_tables(list(_in_input_order(entries, tables)))
    assert merged.column("path").to_pylist() == expected
    assert merged.column("reason").to_pylist() == [
        "no such file or folder", None, None, "no such file or folder", None, "no such file or folder"]
