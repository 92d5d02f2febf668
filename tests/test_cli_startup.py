"""The CLI answers without importing the heavy stack, and `import resnet_hub` still registers with timm.

Speed is never asserted here (benchmarks/cli_startup.py prints the ratios); what is checked is structural: which
modules a real ``resnet-hub`` process imports (``python -X importtime`` lists every one), and that timm knows our
variants in every import order, each in a fresh interpreter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import child_env, run_cli, run_python

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "onnxscript", "tensorrt", "ray", "PIL", "numpy",
         "safetensors", "huggingface_hub", "sklearn", "keras", "transformers", "modelopt", "tritonclient")
COMMANDS = ("list", "info", "finetune", "evaluate", "predict", "benchmark", "convert", "publish", "export", "verify")


# The start-up hook (resnet_hub_timm_hook.pth) is off here: these tests prove `import resnet_hub`'s own
# registration in every order; tests/plugin/test_registration.py covers the hook.
NO_HOOK = {"HF_HUB_OFFLINE": "1", "COLUMNS": "120", "RESNET_HUB_NO_TIMM_HOOK": "1", "PYTHONWARNINGS": None}


def _env() -> dict[str, str]:
    return child_env(NO_HOOK)


def imported_modules(*args: str) -> set[str]:
    """Top-level packages a real ``python -m resnet_hub ARGS`` process imported (it must succeed)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "resnet_hub", *args], capture_output=True,
                          text=True, env=_env(), cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, flags=re.M)
    assert "resnet_hub.cli.app" in names, "importtime output not understood"
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("args", [("--help",), ("--version",), *((c, "--help") for c in COMMANDS),
                                  ("list",), ("list", "--json"), ("info", "myresnet50"),
                                  ("info", "myresnet50.tv_in1k")],
                         ids=" ".join)
def test_cli_answers_without_importing_the_heavy_stack(args):
    heavy = sorted(imported_modules(*args) & set(HEAVY))
    assert heavy == [], f"resnet-hub {' '.join(args)} imported {heavy}: import them inside the command that needs them"


def test_list_and_info_report_the_table_counts_without_torch():
    import json

    from resnet_hub.zoo.stats import model_stats

    proc = run_cli("list", "myresnet5*", "--json", env=NO_HOOK, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["myresnet50"]["params"] == model_stats("myresnet50").params == 25_557_032
    assert rows["myresnet50"]["gmacs"] == round(model_stats("myresnet50").gmacs, 3)


def check(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no module of this test process leaks into it); its stdout."""
    proc = run_python(code, env=NO_HOOK, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_resnet_hub_then_timm_registers_right_after_timm_loads():
    out = check("""
        import sys
        import resnet_hub
        assert "timm" not in sys.modules and "torch" not in sys.modules, "import resnet_hub must stay light"
        import timm
        assert "resnet_hub.zoo.registry" in sys.modules
        model = timm.create_model("myresnet50")
        assert type(model).__module__ == "resnet_hub.model.resnet", type(model)
        assert set(timm.list_models("my*")) >= set(resnet_hub.VARIANTS)
        # the one-shot hook is gone and timm's module carries its own loader, not our wrapper
        assert not any(type(f).__name__ == "_TimmFinder" for f in sys.meta_path)
        assert type(timm.__loader__).__name__ != "_RegisteringLoader", timm.__loader__
        assert timm.__spec__.loader is timm.__loader__
        print(sum(p.numel() for p in model.parameters()))
    """)
    assert int(out) == 25_557_032


def test_import_timm_then_resnet_hub_registers_at_once():
    check("""
        import sys
        import timm
        assert not timm.is_model("myresnet50")
        import resnet_hub
        assert timm.is_model("myresnet50")
        assert not any(type(f).__name__ == "_TimmFinder" for f in sys.meta_path)
        timm.create_model("myresnet18", num_classes=3)
    """)


@pytest.mark.parametrize("statement", ["from timm import create_model", "import timm.models as create_model",
                                       "from timm.models import create_model"])
def test_any_form_of_importing_timm_after_resnet_hub_registers(statement):
    check(f"""
        import resnet_hub
        {statement}
        import timm
        assert timm.is_model("myresnet18") and "myresnet18.tv_in1k" in timm.list_pretrained("myresnet18*")
    """)


def test_importing_the_registry_first_registers_once():
    check("""
        import resnet_hub.zoo.registry
        import timm
        assert timm.list_models("myresnet18") == ["myresnet18"]
        timm.create_model("myresnet18")
    """)


def test_torch_hub_local_loads_from_a_fresh_interpreter():
    out = check(f"""
        import torch
        model = torch.hub.load({str(REPO_ROOT)!r}, "myresnet18", source="local", num_classes=7)
        print(type(model).__name__, model.fc.out_features)
    """)
    assert out.split() == ["ResNet", "7"]


def test_public_api_resolves_on_first_use():
    check("""
        import sys
        import resnet_hub
        assert "resnet_hub.zoo.factory" not in sys.modules
        model = resnet_hub.create_model("myresnet18", num_classes=4)   # imports factory, torch and timm now
        assert model.fc.out_features == 4
        import resnet_hub.tasks.publish  # importing the submodule leaves the package's function in place
        from resnet_hub.tasks.publish import build_hub_folder
        assert callable(resnet_hub.publish) and resnet_hub.publish.__module__ == "resnet_hub.tasks.publish"
        assert not isinstance(resnet_hub.publish, type(sys))
        assert resnet_hub.zoo.registry is sys.modules["resnet_hub.zoo.registry"]
        for name in resnet_hub.__all__:
            assert getattr(resnet_hub, name) is not None, name
        try:
            resnet_hub.no_such_thing
        except AttributeError:
            pass
        else:
            raise AssertionError("no AttributeError")
    """)


def test_a_failed_registration_warns_and_leaves_timm_importable():
    proc = run_python("""
        import sys
        import resnet_hub
        sys.modules["resnet_hub.zoo.registry"] = None   # `import resnet_hub.zoo.registry` fails, as in a broken install
        import timm
        assert not timm.is_model("myresnet18")
        print("timm imported")
    """, env=NO_HOOK)
    assert proc.returncode == 0, proc.stderr
    assert "timm imported" in proc.stdout
    assert "RuntimeWarning: resnet_hub could not register its models with timm" in proc.stderr


def test_shell_completion_completes_command_names():
    # The installed console script, as the shell's completion function calls it (the variable is named after it).
    script = Path(sys.executable).parent / "resnet-hub"
    assert script.is_file(), f"{script}: the package is not installed in this environment"
    env = dict(_env(), _RESNET_HUB_COMPLETE="complete_bash", COMP_WORDS="resnet-hub li", COMP_CWORD="1")
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["list"]
