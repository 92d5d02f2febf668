"""The distribution's metadata and layout: what `pip install resnet-hub` puts on a user's machine.

The full check (build, install the wheel in a clean environment, use it from outside the repository) runs in
``.ci/wheel-smoke``; these tests catch the cheap mistakes at once.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import tomllib
from pathlib import Path

import resnet_hub

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed_for_the_wheel():
    """setuptools is given an explicit package list (export/ is mapped to resnet_hub.export), so a new
    subpackage that is not listed would be silently missing from the wheel."""
    config = _pyproject()["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    found = set()
    for package, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join((package, *relative.parts)))
    assert found <= listed, f"not listed in [tool.setuptools] packages: {sorted(found - listed)}"
    assert "export" not in listed and not any(p.startswith("export.") for p in listed)


def test_version_has_one_source():
    assert resnet_hub.__version__ == md.version("resnet-hub")
    out = subprocess.run([sys.executable, "-m", "resnet_hub", "--version"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == f"resnet-hub {md.version('resnet-hub')}"


def test_metadata_declares_license_urls_and_typing():
    meta = md.metadata("resnet-hub")
    assert meta["License-Expression"] == "Apache-2.0"  # PEP 639
    assert not any(c.startswith("License ::") for c in meta.get_all("Classifier"))  # forbidden with PEP 639
    assert "Typing :: Typed" in meta.get_all("Classifier")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues"} <= set(urls)
    assert (Path(resnet_hub.__file__).parent / "py.typed").is_file()


def test_the_export_pipeline_is_imported_from_the_package():
    import resnet_hub.export as export

    assert export.__name__ == "resnet_hub.export"
    assert Path(export.__file__).parent == ROOT / "export"
