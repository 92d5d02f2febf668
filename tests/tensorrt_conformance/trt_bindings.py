"""NVIDIA's real TensorRT Python bindings without a GPU: fetch (and cache) them, and build the C stand-in.

The registry's ``tensorrt-cu12`` and ``tensorrt-cu12-bindings`` wheels hold the real extension module; the
``-libs`` wheel (libnvinfer & co.) is a placeholder that downloads from a host CI cannot reach. The extension
only imports nine C entry points from libnvinfer / libnvinfer_plugin / libnvonnxparser, so a C file defining
them to return NULL, compiled under those three names, lets ``import tensorrt`` succeed: every class, enum,
signature and docstring is then NVIDIA's, and only the objects that need the library (``Builder``,
``OnnxParser``, ``Runtime``) cannot be made (tests replace those with strict autospecs, see trt_strict.py).

Each version is installed with ``pip install --no-deps --target <cache>/<version>`` once and reused; the cache
is ``~/.cache/resnet-hub/tensorrt-bindings`` or ``$RESNET_HUB_TRT_BINDINGS_CACHE``. Run this file to prefetch
(CI does, before pytest, so the conformance tests never skip there):

    python tests/tensorrt_conformance/trt_bindings.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The newest 10.x and 11.x on the registry (`pip index versions tensorrt-cu12-bindings`, checked 2025).
VERSIONS = ("10.16.1.11", "11.4.0.106")
CACHE_ENV = "RESNET_HUB_TRT_BINDINGS_CACHE"
COMPLETE = ".complete"
LIBRARIES = ("nvinfer", "nvinfer_plugin", "nvonnxparser")
STUB_C = r"""
/* Stand-in for the TensorRT C entry points the Python bindings import: every factory returns NULL, so
   Builder/Runtime/OnnxParser construction fails as it would without a GPU, while the module imports. */
#include <stddef.h>
void *createInferBuilder_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return NULL; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return NULL; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return NULL; }
void *getBuilderPluginRegistry(int capability) { return NULL; }
void *getPluginRegistry(void) { return NULL; }
int getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
"""


class BindingsUnavailable(RuntimeError):
    """The wheels could not be fetched (no registry access) or no C compiler exists."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "resnet-hub" / "tensorrt-bindings")


def major(version: str) -> int:
    return int(version.split(".")[0])


def ensure_bindings(version: str) -> Path:
    """The directory to put on PYTHONPATH for ``import tensorrt`` of ``version`` (installed once, then cached)."""
    target = cache_root() / version
    if (target / COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-compile", "--target", str(staging), f"tensorrt-cu12=={version}",
             f"tensorrt-cu12-bindings=={version}"],
            capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not (staging / "tensorrt_bindings").is_dir():
            raise BindingsUnavailable(f"pip could not install tensorrt-cu12(-bindings)=={version}: "
                                      f"{(proc.stderr or proc.stdout).strip()[-600:]}")
        (staging / COMPLETE).write_text(version + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def compiler() -> str | None:
    """The system C compiler ($CC, gcc or cc), or None."""
    for candidate in (os.environ.get("CC"), "gcc", "cc"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def build_stub(directory: Path, majors: tuple[int, ...] = tuple(sorted({major(v) for v in VERSIONS}))) -> Path:
    """Compile the stand-in once and install it as lib{nvinfer,nvinfer_plugin,nvonnxparser}.so.<major>."""
    cc = compiler()
    if cc is None:
        raise BindingsUnavailable("no C compiler (gcc/cc, or $CC) to build the libnvinfer stand-in")
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "nvinfer_stub.c"
    source.write_text(STUB_C)
    built = directory / "libnvinfer_stub.so"
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O0", "-o", str(built), str(source)], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise BindingsUnavailable(f"{cc} could not build the stand-in: {proc.stderr.strip()[-600:]}")
    for number in majors:
        for name in LIBRARIES:
            shutil.copyfile(built, directory / f"lib{name}.so.{number}")
    return directory


def main() -> int:
    for version in VERSIONS:
        print(f"tensorrt {version}: {ensure_bindings(version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
