"""Our variants are in timm's registry however timm is reached, each case in a fresh interpreter.

The oracle is timm itself (``timm.is_model``, ``timm.create_model``) in a child process started from a folder
outside the repository, so only the installed environment (the editable install of ``./dev sync``, or a wheel)
can make it work: the start-up hook ``resnet_hub_timm_hook.pth`` or an explicit ``import resnet_hub``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_OFF = "RESNET_HUB_NO_TIMM_HOOK"
PTH_NAME = "resnet_hub_timm_hook.pth"


def run_child(code: str, tmp_path: Path, hook: bool = True, **env: str) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k not in (ENV_OFF, "PYTHONWARNINGS", "PYTHONPATH")}
    child_env.update(HF_HUB_OFFLINE="1", **env)
    if not hook:
        child_env[ENV_OFF] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=child_env, cwd=tmp_path, timeout=300)


def check(code: str, tmp_path: Path, hook: bool = True, **env: str) -> str:
    proc = run_child(code, tmp_path, hook, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# Every case runs twice: with the start-up hook (no `import resnet_hub` is needed) and with it switched off
# (the package's own install, from `import resnet_hub`, must hold alone).
@pytest.fixture(params=[True, False], ids=["hook", "import-only"])
def hook(request) -> bool:
    return request.param


def script(hook: bool, *parts: str) -> str:
    """The child's code: ``import resnet_hub`` first unless the hook is to do the work alone."""
    return "\n".join(([] if hook else ["import resnet_hub"]) + [textwrap.dedent(p) for p in parts])


def test_find_spec_probes_before_the_import_do_not_lose_registration(tmp_path, hook):
    """transformers asks importlib.util.find_spec('timm') before importing timm (the bug of issue 22)."""
    check(script(hook, """
        import importlib.util, sys
        assert importlib.util.find_spec("timm") is not None
        assert importlib.util.find_spec("timm") is not None   # probing twice changes nothing
        assert "timm" not in sys.modules
        import timm
        assert timm.is_model("myresnet18"), "registration lost after a find_spec probe"
        assert timm.__spec__.loader is timm.__loader__ and type(timm.__loader__).__name__ != "_RegisteringLoader"
        assert not any(type(f).__name__ == "_TimmFinder" for f in sys.meta_path), "the finder did not retire"
    """), tmp_path, hook)


def test_pkgutil_probes_do_not_lose_registration(tmp_path, hook):
    check(script(hook, """
        import pkgutil
        assert any(m.name == "timm" for m in pkgutil.iter_modules())
        create_model = pkgutil.resolve_name("timm.models:create_model")
        assert create_model("myresnet18", num_classes=3).fc.out_features == 3
    """), tmp_path, hook)


@pytest.mark.parametrize("statement", ["import timm", "from timm import create_model",
                                       "import importlib; importlib.import_module('timm.models')",
                                       "import timm.models.resnet"])
def test_every_form_of_importing_timm_registers_from_the_hook_alone(tmp_path, statement):
    """(With `import resnet_hub` first, tests/test_cli_startup.py covers the same forms.)"""
    check(script(True, statement, """
        import timm
        assert timm.is_model("myresnet18") and "myresnet18.tv_in1k" in timm.list_pretrained("myresnet18*")
    """), tmp_path)


def test_timm_imported_before_resnet_hub(tmp_path, hook):
    out = check(textwrap.dedent("""
        import timm
        print(timm.is_model("myresnet50"))
        import resnet_hub
        assert timm.is_model("myresnet50")
        timm.create_model("myresnet18", num_classes=3)
    """), tmp_path, hook)
    assert out.strip() == str(hook)  # the hook registers at timm's import; without it, `import resnet_hub` does


def test_two_threads_importing_timm_at_once_both_see_the_variants(tmp_path, hook):
    out = check(script(hook, """
        import threading
        barrier = threading.Barrier(2)
        seen = []

        def worker():
            barrier.wait()
            import timm
            seen.append(timm.is_model("myresnet18") and len(timm.list_models("myresnet18")) == 1)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(seen)
    """), tmp_path, hook)
    assert out.strip() == "[True, True]"


def test_a_failed_first_import_of_timm_keeps_the_finder_for_the_next(tmp_path, hook):
    """torch missing on the first attempt (sys.modules[name] = None is Python's own import blocker), there on the
    second: the second import of timm registers."""
    out = check(script(hook, """
        import sys
        sys.modules["torch"] = None
        try:
            import timm
        except ImportError as exc:
            print("first import failed:", type(exc).__name__)
        else:
            raise AssertionError("timm imported without torch")
        del sys.modules["torch"]
        for name in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
            del sys.modules[name]
        assert any(type(f).__name__ == "_TimmFinder" for f in sys.meta_path)
        import timm
        assert timm.is_model("myresnet18")
    """), tmp_path, hook)
    assert "first import failed" in out


def test_a_failing_registration_is_one_warning_and_timm_still_works(tmp_path, hook):
    proc = run_child(script(hook, """
        import sys, warnings
        sys.modules["resnet_hub.zoo.registry"] = None   # the registry cannot be imported (a broken install)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import timm
            import resnet_hub   # after timm: tries again, must not warn twice
        assert timm.list_models("resnet18") == ["resnet18"] and not timm.is_model("myresnet18")
        ours = [w for w in caught if "resnet_hub could not register" in str(w.message)]
        assert len(ours) == 1 and ours[0].category is RuntimeWarning, [str(w.message) for w in caught]
        print(ours[0].message)
    """), tmp_path, hook)
    assert proc.returncode == 0, proc.stderr[-3000:]
    message = proc.stdout.strip()
    assert "\n" not in message and "resnet_hub.zoo.registry" in message and "ModuleNotFoundError" in message


def test_without_import_resnet_hub_the_hook_alone_registers(tmp_path):
    """Installed is enough: the one-line .pth hook puts the finder in place in every process."""
    out = check("""
        import sys
        started = set(sys.modules)
        assert "_resnet_hub_timm_hook" in started
        heavy = started & {"torch", "timm", "numpy", "resnet_hub", "safetensors", "threading"}
        assert not heavy, f"the start-up hook imported {sorted(heavy)}"
        import timm
        model = timm.create_model("myresnet18", num_classes=5)
        print(type(model).__module__, "resnet_hub" in sys.modules)
    """, tmp_path)
    assert out.split() == ["resnet_hub.model.resnet", "True"]


@pytest.mark.parametrize("value, active", [("1", False), ("yes", False), ("0", True), ("", True)])
def test_the_environment_variable_switches_the_hook_off(tmp_path, value, active):
    out = check("""
        import sys, timm
        print(timm.is_model("myresnet18"), "_resnet_hub_timm_hook" in sys.modules, "resnet_hub" in sys.modules)
        import resnet_hub   # an explicit import still registers: the switch is about the start-up hook only
        assert timm.is_model("myresnet18")
    """, tmp_path, **{ENV_OFF: value})
    assert out.split() == [str(active)] * 3


def test_the_installed_hook_is_the_repository_s_one_line():
    """`./dev sync`'s editable install (and the wheel, checked by .ci/wheel-smoke) carries the .pth; it is one
    short line that security reviews can read, and it checks the off-switch before importing anything."""
    installed = [Path(d) / PTH_NAME for d in site.getsitepackages() if (Path(d) / PTH_NAME).is_file()]
    assert installed, f"{PTH_NAME} is not in site-packages: run ./dev sync"
    text = installed[0].read_text()
    assert text == (REPO_ROOT / PTH_NAME).read_text()
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("import ") and len(lines[0]) <= 200
    assert lines[0].index(ENV_OFF) < lines[0].index("__import__")


def test_the_hook_never_stops_python_from_starting(tmp_path):
    """An import system the finder cannot join (meta_path replaced by a tuple) and a registry that cannot import:
    the start-up function stays silent and returns, and timm still imports."""
    out = check("""
        import sys
        import _resnet_hub_timm_hook as hook
        hook.uninstall()
        saved, sys.meta_path = sys.meta_path, tuple(sys.meta_path)
        hook.install_at_startup()          # cannot insert into a tuple: must not raise
        sys.meta_path = saved
        hook.install_at_startup()
        hook.install_at_startup()          # idempotent: one finder
        print(sum(type(f).__name__ == "_TimmFinder" for f in sys.meta_path))
    """, tmp_path)
    assert out.strip() == "1"


def test_a_broken_resnet_hub_package_costs_one_warning_at_timm_import_and_nothing_at_start(tmp_path):
    shadow = tmp_path / "shadow" / "resnet_hub"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise RuntimeError('half-installed package')\n")
    env = {"PYTHONPATH": str(shadow.parent)}
    started = run_child("print('started')", tmp_path, **env)
    assert started.returncode == 0 and started.stdout.strip() == "started" and started.stderr == "", started.stderr
    proc = run_child("import timm; print(timm.list_models('resnet18'))", tmp_path, **env)
    assert proc.returncode == 0 and proc.stdout.strip() == "['resnet18']", proc.stderr
    warning_lines = [line for line in proc.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warning_lines) == 1 and "half-installed package" in warning_lines[0], proc.stderr
