"""Issue 11 through the real console entry point: bad options give one red line and a non-zero exit code,
never a traceback; Ctrl-C gives exit code 130."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from process_helpers import interrupt_when
import torch

import resnet_hub
from helpers.cli import one_error_line, run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- item 1: integer / NaN weights give no prediction --------------------------------------------------

def test_predict_with_integer_or_nan_weights_exits_1(image_dir, tmp_path):
    state = resnet_hub.create_model("myresnet18").state_dict()
    ints = tmp_path / "int64.safetensors"
    resnet_hub.save_weights({k: v.to(torch.int64) for k, v in state.items()}, ints, architecture="myresnet18")
    nans = tmp_path / "nan.safetensors"
    state["fc.weight"][0, 0] = float("nan")
    resnet_hub.save_weights(state, nans, architecture="myresnet18")
    for weights, needle in ((ints, "wrong type"), (nans, "NaN or infinite")):
        result = run_cli("predict", "myresnet18", str(image_dir / "a_shapes.png"), "--weights", str(weights))
        assert needle in one_error_line(result)
        assert "probability" not in result.stdout


# --- item 6: devices -------------------------------------------------------------------------------------

@pytest.mark.parametrize("device,needle", [
    ("tpu", "Unknown device 'tpu': use cpu, or cuda"),
    pytest.param("cuda", "but this PyTorch", marks=pytest.mark.skipif(torch.cuda.is_available(),
                                                                        reason="a CUDA GPU is present")),
])
def test_predict_on_a_device_that_is_not_there(device, needle, image_dir, predict_weights):
    result = run_cli("predict", "myresnet18", str(image_dir / "a_shapes.png"), "--weights",
                     str(predict_weights), "--device", device)
    assert needle in one_error_line(result)


# --- item 7: unknown pretrained tags ---------------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (("predict", "myresnet18.badtag", "x.png"), "has no pretrained tag 'badtag' (known: a1_in1k, tv_in1k)"),
    (("info", "myresnet18.badtag"), "has no pretrained tag 'badtag'"),
    (("info", "myresnet50_v1.tv_in1k"), "myresnet50_v1 has no published pretrained weights"),
])
def test_unknown_tags_are_one_line(args, needle):
    assert needle in one_error_line(run_cli(*args))


# --- item 17: weights paths that are not files -----------------------------------------------------------

def test_predict_weights_folder_fifo_and_device_say_what_they_are(image_dir, tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for weights, needle in ((tmp_path, "is a folder, not a weights file"), (fifo, "is a named pipe (FIFO)"),
                            (Path("/dev/zero"), "is a character device")):
        result = run_cli("predict", "myresnet18", str(image_dir / "a_shapes.png"), "--weights", str(weights),
                         timeout=120)
        assert needle in one_error_line(result)


# --- item 8: convert into places nobody can write (root included) ----------------------------------------

def test_convert_output_into_proc_or_under_a_file_is_one_line(tmp_path):
    torch.save(resnet_hub.create_model("myresnet18").state_dict(), tmp_path / "r18.pth")
    (tmp_path / "a-file").write_text("x")
    for output, needle in ((Path("/proc/resnet-hub-test/out.safetensors"), "Cannot write /proc/resnet-hub-test"),
                           (Path("/proc/out.safetensors"), "cannot create files in /proc"),
                           (tmp_path / "a-file" / "out.safetensors", "a-file is a file, not a folder")):
        result = run_cli("convert", str(tmp_path / "r18.pth"), "--from", "torchvision", "--model", "myresnet18",
                         "--output", str(output))
        assert needle in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "r18.pth"]
    assert (tmp_path / "a-file").read_text() == "x"


# --- item 12: Ctrl-C -------------------------------------------------------------------------------------

def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _long_benchmark(**env: str) -> subprocess.Popen:
    """A command that imports torch as it starts, then runs for minutes: something to interrupt."""
    return subprocess.Popen([sys.executable, "-m", "resnet_hub", "benchmark", "myresnet18", "--backends", "torch",
                             "--img-size", "32", "--batch-size", "1", "--min-time", "120", "--warmup", "0"],
                            cwd=REPO_ROOT, env=dict(os.environ, COLUMNS="200", **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see when torch is being loaded")
def test_ctrl_c_while_torch_is_loading_exits_130_without_a_traceback():
    # `list` no longer imports torch (issue 12): a command that does, imported inside the command at start-up.
    process = _long_benchmark()
    # libtorch is mapped while `import torch` runs as the command starts: the start-up window of issue 11
    stdout, stderr = interrupt_when(process, lambda: "libtorch" in _maps(process.pid))
    assert process.returncode == 130, (process.returncode, stderr[-3000:])
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert "Interrupted." in stderr


def test_ctrl_c_during_a_command_exits_130_without_a_traceback():
    process = _long_benchmark(PYTHONUNBUFFERED="1")
    # past start-up (libtorch mapped, then 8 s more): into model building and timing
    stdout, stderr = interrupt_when(process, lambda: "libtorch" in _maps(process.pid), settle=8)
    assert process.returncode == 130, (process.returncode, stderr[-3000:])
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr[-3000:]
