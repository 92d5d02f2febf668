"""An export directory as one runnable model: the one reader every command uses (what Ultralytics' AutoBackend is).

``ExportDirectory.open(DIR)`` reads ``manifest.json`` through :func:`export.manifest.read_manifest` (validated),
checks that every listed file stays inside DIR (no absolute paths, ``..`` or symbolic links) and re-hashes it, and
then offers what evaluate, predict, benchmark, ``verify`` and the Ray workers need: the data config the export was
verified with, the class names, and ``logits(device=..., threads=...)``, a function of the normalised float batch
(a graph with embedded preprocessing is fed the batch's uint8 pixels by its runner).

Runners are looked up per manifest format in :data:`RUNNERS`, as ``"module:function"`` strings imported only when a
model is run (ONNX Runtime, TensorRT and OpenVINO are heavy imports, and the reader must not depend on every format
module). A format module registers its runner with :func:`register_runner`; the factory is called as
``factory(directory, device, threads)`` and returns a logits function.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .digest import sha256_of
from .errors import ExportError
from .manifest import FileEntry, Manifest, read_manifest
from .names import GRAPH_FILES, MANIFEST_FILE

Logits = Callable[[Any], Any]
RunnerFactory = Callable[["ExportDirectory", str, "int | None"], Logits]

# format -> "module:function" (imported lazily) or a factory; and the runtime's name for reports.
RUNNERS: dict[str, str | RunnerFactory] = {
    "onnx": "resnet_hub.export.directory:onnx_runner",
    "triton-onnx": "resnet_hub.export.directory:onnx_runner",
    "tensorrt": "resnet_hub.export.directory:tensorrt_runner",
    "triton-tensorrt": "resnet_hub.export.directory:tensorrt_runner",
    "openvino": "resnet_hub.export.openvino_runtime:directory_runner",
}
RUNTIMES: dict[str, str] = {"onnx": "ONNX Runtime (CPU)", "triton-onnx": "ONNX Runtime (CPU)",
                            "tensorrt": "TensorRT", "triton-tensorrt": "TensorRT",
                            "openvino": "OpenVINO (CPU)"}
GPU_FORMATS = {"tensorrt", "triton-tensorrt"}


class ExportDirectoryError(ExportError):
    """An export directory whose files do not match its manifest, or that this machine cannot run."""


def register_runner(fmt: str, factory: str | RunnerFactory, runtime: str, graph_file: str,
                    gpu: bool = False) -> None:
    """Make ``ExportDirectory.logits`` run manifests of format ``fmt`` (e.g. ``"openvino"``, ``"model.xml"``)."""
    RUNNERS[fmt] = factory
    RUNTIMES[fmt] = runtime
    GRAPH_FILES[fmt] = graph_file
    if gpu:
        GPU_FORMATS.add(fmt)


def inside(directory: Path, name: str) -> Path:
    """``directory / name`` if it is a regular file inside ``directory`` reached without symbolic links; raises
    :class:`ExportDirectoryError` otherwise (the manifest's names are data from disk, not trusted paths).
    Nothing outside ``directory`` is opened: only ``lstat`` of the components inside it."""
    root = directory.resolve()
    path = root
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            raise ExportDirectoryError(f"{name} is (or passes through) a symbolic link; an export directory's files "
                                       "must be plain files inside it")
    if not path.resolve().is_relative_to(root):
        raise ExportDirectoryError(f"{name} is outside {directory}")
    return path


def check_file(directory: Path, entry: FileEntry) -> str | None:
    """Why the file ``entry`` names does not match it (None: it matches). The size is compared before any byte is
    read, so a hostile size costs nothing."""
    try:
        path = inside(directory, entry.name)
    except ExportDirectoryError as exc:
        return str(exc)
    if not path.exists():
        return "listed in the manifest, not on disk"
    if not path.is_file():
        return "is not a regular file"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"{size} bytes on disk, the manifest records {entry.bytes}"
    digest = sha256_of(path)
    if digest != entry.sha256:
        return f"sha256 {digest[:12]} on disk, the manifest records {entry.sha256[:12]}"
    return None


@dataclass(frozen=True)
class ExportDirectory:
    """A checked export directory; build it with :meth:`open`."""

    path: Path
    manifest: Manifest
    files_checked: bool

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, check_files: bool = True) -> "ExportDirectory":
        """Read and validate DIR's manifest and (by default) re-hash every file it lists; a file that differs
        raises :class:`ExportDirectoryError` naming it, before anything is loaded or served."""
        directory = Path(path)
        if not directory.is_dir():
            raise ExportDirectoryError(f"{directory} is not a directory; pass the --output of `resnet-hub export`")
        manifest = read_manifest(directory / MANIFEST_FILE)
        if manifest.format not in RUNNERS:
            raise ExportDirectoryError(f"{directory} holds a '{manifest.format}' export, which this resnet-hub cannot "
                                       f"run (it runs {', '.join(sorted(RUNNERS))})")
        if check_files:
            for entry in manifest.files:
                why = check_file(directory, entry)
                if why:
                    raise ExportDirectoryError(f"{directory / entry.name}: {why}. The export was changed after it "
                                               "was verified; re-export it (`resnet-hub verify DIR` lists all)")
        found = cls(directory, manifest, check_files)
        _ = found.graph_path  # a manifest whose files do not include the graph is refused here
        return found

    @property
    def format(self) -> str:
        return self.manifest.format

    @property
    def graph_path(self) -> Path:
        """The model file a runtime loads (a Triton directory keeps it in its version folder)."""
        wanted = GRAPH_FILES[self.format]
        match = next((f.name for f in self.manifest.files if Path(f.name).name == wanted), None)
        if match is None:
            raise ExportDirectoryError(f"{self.path}: the manifest lists no {wanted}, the file a '{self.format}' "
                                       "export serves; re-export it")
        return self.path / match  # Triton: 1/model.onnx, or 1/model.onnx/model.onnx with external weights

    @property
    def runtime(self) -> str:
        return RUNTIMES[self.format]

    @property
    def pixel_input(self) -> bool:
        return self.manifest.pixel_input

    @property
    def num_classes(self) -> int:
        return self.manifest.num_classes

    @property
    def label_names(self) -> list[str] | None:
        return list(self.manifest.label_names) if self.manifest.label_names is not None else None

    def labels(self) -> list[str]:
        """Class names for every output: the recorded ones, or ImageNet's / 'class N'."""
        if self.manifest.label_names is not None:
            return list(self.manifest.label_names)
        from resnet_hub.tasks.predict import class_names

        return class_names(self.num_classes)

    def data_config(self) -> dict[str, Any]:
        return self.manifest.data_config()

    @property
    def needs_gpu(self) -> bool:
        return self.format in GPU_FORMATS

    def describe(self) -> str:
        return f"{self.path} ({self.runtime.split(' (')[0]} {self.manifest.precision})"

    def logits(self, device: str = "cpu", threads: int | None = None) -> Logits:
        """The artifact as a function of the normalised float (N, C, H, W) batch, returning (N, classes) logits."""
        factory = RUNNERS[self.format]
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            factory = getattr(importlib.import_module(module), name)
        return factory(self, device, threads)

    def record(self) -> dict[str, Any]:
        """Provenance for outputs (batch prediction metadata)."""
        weights = self.manifest.data.get("weights") or {}
        graph = next((f for f in self.manifest.files if Path(f.name).name == GRAPH_FILES[self.format]), None)
        return dict(model=str(self.path), runtime=self.runtime, architecture=self.manifest.name,
                    weights=weights.get("source"), weights_sha256=weights.get("file_sha256"),
                    graph_sha256=graph.sha256 if graph else None, files_checked=self.files_checked)


def onnx_runner(directory: ExportDirectory, device: str = "cpu", threads: int | None = None) -> Logits:
    from .runtime import onnx_logits

    if device != "cpu":
        raise ExportDirectoryError(f"{directory.path} is an ONNX export, run by ONNX Runtime on the CPU; "
                                   f"--device {device} applies to PyTorch and TensorRT targets")
    return onnx_logits(directory.graph_path, embedded_preprocessing=directory.pixel_input,
                       data_config=directory.data_config(), threads=threads)


def tensorrt_runner(directory: ExportDirectory, device: str = "cuda", threads: int | None = None) -> Logits:
    from .runtime import engine_logits
    from .tensorrt_runtime import TensorRTModule

    engine = TensorRTModule(directory.graph_path)
    return engine_logits(engine, embedded_preprocessing=directory.pixel_input, data_config=directory.data_config())


def open_export(path: str | os.PathLike[str], *, check_files: bool = True) -> ExportDirectory:
    """``ExportDirectory.open``: for predict, evaluate and benchmark."""
    return ExportDirectory.open(path, check_files=check_files)


def is_export_dir(path: str | os.PathLike[str]) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST_FILE).is_file()


def export_target(directory: str | os.PathLike[str], device: str = "cpu") -> Any:
    """An export directory as an evaluation :class:`resnet_hub.tasks.evaluate.Target` (files re-hashed first)."""
    from resnet_hub.tasks.evaluate import Target

    export = ExportDirectory.open(directory)
    # ONNX exports run on ONNX Runtime's CPU provider and engines on the GPU, whatever --device says for PyTorch.
    run_device = "cuda" if export.needs_gpu else "cpu"
    return Target(export.describe(), export.runtime, export.logits(run_device), export.data_config(),
                  export.label_names, export.num_classes)
