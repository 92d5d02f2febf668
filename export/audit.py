"""``resnet-hub verify DIR``: is this export still what its manifest says it is, and does that still hold?

Built to hold against a hostile or careless edit of the directory, not only a flipped byte:

* **Nothing outside DIR is read.** Every name in the manifest must be a relative path that stays inside DIR
  without symbolic links; the manifest itself must not be a link. A refused name is never opened.
* **The code decides what is checked.** Which parity runs must exist, their tolerances and batch sizes come from
  this code for the manifest's format and precision; a manifest that lists no verification, loosens a tolerance or
  records a hostile batch size fails. Sizes are capped before anything is read.
* **The manifest is checked against the graph** (input dtype and shape, output width, precision vs Q/DQ nodes and
  fp16 weights) and, when parity re-runs, against the weights (class count, label names, preprocessing).
* **Everything that will be served is covered.** Files in DIR that the manifest does not list fail (unless
  ``allow_extra``); a Triton model directory's ``config.pbtxt`` is hashed and parsed with Triton's own protobuf,
  its name, platform, tensors and ``label_filename`` compared with the manifest, its ``labels.txt`` with the label
  names, and extra version folders fail.
* **OK means parity was re-run** on the runtimes here (ONNX Runtime always, TensorRT with a CUDA GPU). When it
  cannot be (weights missing or not the exported ones, no TensorRT here) the audit fails unless ``hashes_only``.

Recorded figures that cannot be re-derived from DIR alone (the accuracy gate's numbers, versions, timestamps) are
listed as such in :attr:`AuditResult.unverified`. Nothing is written: the audit only reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from resnet_hub.errors import ResNetHubError

from .directory import ExportDirectoryError, check_file, inside
from .errors import ExportError
from .manifest import Manifest, ManifestError, read_manifest
from .names import (
    CONFIG_FILE,
    ENGINE_FILE,
    FORMAT_ONNX,
    FORMAT_TENSORRT,
    FORMAT_TRITON_ONNX,
    FORMAT_TRITON_TENSORRT,
    FORMAT_OPENVINO,
    XML_FILE,
    BIN_FILE,
    INPUT_NAME,
    LABELS_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    OUTPUT_NAME,
    README_FILE,
    RECORD_FILE,
)

# What each format must have been verified on, by artifact (the code's list, not the manifest's).
REQUIRED_PARITY = {
    FORMAT_ONNX: (ONNX_FILE,),
    FORMAT_TRITON_ONNX: (ONNX_FILE,),
    FORMAT_TENSORRT: (ONNX_FILE, ENGINE_FILE),
    FORMAT_TRITON_TENSORRT: (ENGINE_FILE,),
    FORMAT_OPENVINO: (XML_FILE,),
}
# Batch sizes a verification ever uses: 1 and traced + 1, a static batch, an engine profile, or up to 128 real
# images (64 verification images + 64 held-out int8 images). Larger ones are refused, never run.
MAX_VERIFY_BATCH = 256
MAX_DIRECTORY_ENTRIES = 1_000
TRITON_PLATFORMS = {FORMAT_TRITON_ONNX: "onnxruntime_onnx", FORMAT_TRITON_TENSORRT: "tensorrt_plan"}
UNVERIFIABLE = ("accuracy (the accuracy gate's recorded top-1 figures: re-measure with `resnet-hub evaluate DIR "
                "--data SRC`)", "int8 calibration record (which images calibrated the graph)",
                "created_at, versions and timings (informational)")


class AuditError(ExportError):
    """The path to verify is not a directory."""


@dataclass(frozen=True)
class FileCheck:
    """One file compared with the manifest (or found in DIR without being listed)."""

    name: str
    status: str  # 'ok' | 'modified' | 'missing' | 'refused' | 'unlisted'
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ParityRun:
    """One parity run the code requires, re-run (or not) here."""

    artifact: str
    runtime: str
    status: str  # 'passed' | 'failed' | 'not re-run'
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class ExportAudit:
    """The audit of one directory holding a ``manifest.json``."""

    directory: Path
    format: str
    files: tuple[FileCheck, ...] = ()
    parity: tuple[ParityRun, ...] = ()
    problems: tuple[str, ...] = ()
    hashes_only: bool = False

    @property
    def ok(self) -> bool:
        if self.problems or not all(f.ok for f in self.files):
            return False
        if self.hashes_only:
            return all(p.status != "failed" for p in self.parity)
        return bool(self.parity) and all(p.ok for p in self.parity)


@dataclass(frozen=True)
class AuditResult:
    """Everything ``resnet-hub verify`` found under one path."""

    root: Path
    exports: tuple[ExportAudit, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)
    unverified: tuple[str, ...] = UNVERIFIABLE

    @property
    def ok(self) -> bool:
        return bool(self.exports) and not self.problems and all(e.ok for e in self.exports)

    def failures(self) -> list[str]:
        """One line per reason the audit failed (empty when ``ok``)."""
        lines = list(self.problems)
        for audit in self.exports:
            lines += [f"{audit.directory}: {p}" for p in audit.problems]
            lines += [f"{audit.directory / f.name}: {f.status}" + (f" ({f.detail})" if f.detail else "")
                      for f in audit.files if not f.ok]
            lines += [f"{audit.directory}: {p.artifact} on {p.runtime}: {p.status}: {p.detail}" for p in audit.parity
                      if not p.ok and (p.status == "failed" or not audit.hashes_only)]
            if not audit.hashes_only and not audit.parity and not audit.problems and all(f.ok for f in audit.files):
                lines.append(f"{audit.directory}: no parity run could be re-run")
        return lines


def find_export_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """Directories to audit under ``root`` and problems found while looking (a model directory without one)."""
    if (root / MANIFEST_FILE).exists() or (root / MANIFEST_FILE).is_symlink():
        return [root], []
    dirs, problems = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:MAX_DIRECTORY_ENTRIES]:
        if child.is_symlink():
            problems.append(f"{child}: a symbolic link in the model repository; model directories must be folders")
        elif (child / MANIFEST_FILE).exists() or (child / MANIFEST_FILE).is_symlink():
            dirs.append(child)
        else:
            problems.append(f"{child}: no {MANIFEST_FILE}, so nothing can be checked; re-export it")
    if not dirs and not problems:
        problems.append(f"{root}: no {MANIFEST_FILE} here or in its model directories: not a resnet-hub export, or its "
                        "manifest was removed; re-export it")
    return dirs, problems


def check_files(directory: Path, manifest: Manifest) -> tuple[FileCheck, ...]:
    """Every listed file re-hashed (after its path and size are found sane)."""
    checks = []
    for entry in manifest.files:
        why = check_file(directory, entry)
        if why is None:
            checks.append(FileCheck(entry.name, "ok"))
        elif "outside" in why or "symbolic link" in why or "regular file" in why:
            checks.append(FileCheck(entry.name, "refused", why))
        elif "not on disk" in why:
            checks.append(FileCheck(entry.name, "missing", why))
        else:
            checks.append(FileCheck(entry.name, "modified", why))
    return tuple(checks)


def unlisted_files(directory: Path, manifest: Manifest) -> tuple[FileCheck, ...]:
    """Files (and links, and empty folders) in DIR that the manifest does not cover: they would be served or
    picked up (Triton loads every version folder) without having been verified."""
    listed = {f.name for f in manifest.files} | {MANIFEST_FILE}
    found: list[FileCheck] = []
    seen = 0
    for top, folders, names in os.walk(directory, followlinks=False):
        rel_top = Path(top).relative_to(directory)
        seen += len(folders) + len(names)
        if seen > MAX_DIRECTORY_ENTRIES:
            return (*found, FileCheck(".", "unlisted", f"more than {MAX_DIRECTORY_ENTRIES} entries in the directory"))
        for name in sorted(names) + sorted(f for f in folders if (Path(top) / f).is_symlink()):
            rel = (rel_top / name).as_posix()
            if rel not in listed:
                kind = "a symbolic link" if (Path(top) / name).is_symlink() else "a file"
                found.append(FileCheck(rel, "unlisted", f"{kind} the manifest does not list (not verified)"))
        for folder in folders:
            path = Path(top) / folder
            if not path.is_symlink() and not any(n.startswith((rel_top / folder).as_posix() + "/") for n in listed):
                if not any(path.iterdir()):
                    found.append(FileCheck((rel_top / folder).as_posix(), "unlisted",
                                           "a folder the manifest does not cover"))
    return tuple(found)


def required_files(manifest: Manifest) -> list[str]:
    """Files every export of this format has (beyond the graph, which the directory reader requires)."""
    if manifest.format == FORMAT_TENSORRT:
        return [ONNX_FILE, ENGINE_FILE, RECORD_FILE]
    if manifest.format in TRITON_PLATFORMS:
        return [CONFIG_FILE, LABELS_FILE, README_FILE]
    if manifest.format == FORMAT_OPENVINO:
        return [XML_FILE, BIN_FILE]
    return [ONNX_FILE]


def _listed(manifest: Manifest, base: str) -> str | None:
    return next((f.name for f in manifest.files if Path(f.name).name == base), None)


def structure_problems(directory: Path, manifest: Manifest) -> list[str]:
    """Required files and parity runs the code expects for this format, and recorded settings it refuses."""
    from .tensorrt_plan import parity_tolerance
    from .verify import TOLERANCES

    found = [f"{MANIFEST_FILE} lists no {name}, which every '{manifest.format}' export has"
             for name in required_files(manifest) if _listed(manifest, name) is None]
    if not manifest.verified:
        found.append(f"{MANIFEST_FILE} does not record a passed verification")
    recorded = {v.artifact: v for v in manifest.verification}
    required = REQUIRED_PARITY[manifest.format]
    for artifact in required:
        if artifact not in recorded:
            found.append(f"{MANIFEST_FILE} records no parity run of {artifact}, which the code requires")
    for artifact, entry in recorded.items():
        if artifact not in required:
            found.append(f"{MANIFEST_FILE} records a parity run of {artifact}, which a '{manifest.format}' export "
                         "does not have")
            continue
        if not entry.passed:
            found.append(f"{MANIFEST_FILE} records a failed parity run of {artifact}")
        expected = _expected_tolerance(manifest, artifact, TOLERANCES, parity_tolerance)
        if expected is not None and not _same_tolerance(entry.tolerance, expected):
            found.append(f"{MANIFEST_FILE} records a tolerance for {artifact} other than the code's {expected.name} "
                         "bounds (edited after export); verify applies the code's")
        big = [b for b in entry.batch_sizes if not 1 <= b <= MAX_VERIFY_BATCH]
        if big:
            found.append(f"{MANIFEST_FILE} records batch size {big[0]} for {artifact}, outside the "
                         f"1-{MAX_VERIFY_BATCH} "
                         "any verification uses")
    return found


def _expected_tolerance(manifest: Manifest, artifact: str, tolerances: dict, parity_tolerance: Callable) -> Any:
    if artifact == ENGINE_FILE:
        record = manifest.engine_record or {}
        precision = str(record.get("precision") or manifest.precision)
        return parity_tolerance(precision) if precision in ("fp32", "fp16", "int8") else None
    onnx_precision = manifest.precision if manifest.format != FORMAT_TENSORRT else (
        "fp16" if (manifest.data.get("export") or {}).get("half") else "fp32")
    return tolerances.get(onnx_precision)


def _same_tolerance(recorded: dict[str, Any], expected: Any) -> bool:
    keys = ("max_rel_diff", "min_cosine", "min_top1_agreement", "min_top5_overlap")
    try:
        return all(float(recorded[k]) == float(getattr(expected, k)) for k in keys)
    except (KeyError, TypeError, ValueError):
        return False


def graph_problems(directory: Path, manifest: Manifest) -> list[str]:
    """The manifest against the ONNX graph it describes: input dtype / shape, output width, precision."""
    from .graph_ops import graph_precision, load_structure, onnx_signature

    name = _listed(manifest, ONNX_FILE)
    if name is None:
        return []
    try:
        model = load_structure(inside(directory, name))
        signature = onnx_signature(model)
    except ExportDirectoryError as exc:
        return [str(exc)]
    except Exception as exc:  # a file that is not an ONNX graph at all
        return [f"{name} is not a readable ONNX graph ({type(exc).__name__})"]
    found = []
    channels, height, width = manifest.input_size
    inputs, outputs = signature["inputs"], signature["outputs"]
    if len(inputs) != 1 or len(outputs) != 1:
        return [f"{name} has {len(inputs)} inputs and {len(outputs)} outputs; an export has one of each"]
    graph_in, graph_out = inputs[0], outputs[0]
    dtype, sample = ("uint8", [height, width, 3]) if manifest.pixel_input else ("float32", [channels, height, width])
    if graph_in["name"] != INPUT_NAME or graph_out["name"] != OUTPUT_NAME:
        found.append(f"{name} names its tensors {graph_in['name']!r} / {graph_out['name']!r}, not "
                     f"{INPUT_NAME!r} / {OUTPUT_NAME!r}")
    if graph_in["dtype"] != dtype or list(graph_in["shape"][1:]) != sample:
        found.append(f"{name} takes {graph_in['dtype']} {graph_in['shape'][1:]} per image; the manifest records "
                     f"{dtype} {sample}")
    if list(graph_out["shape"][1:]) != [manifest.num_classes]:
        found.append(f"{name} outputs {graph_out['shape'][1:]} logits per image; the manifest records "
                     f"{manifest.num_classes} classes")
    recorded_inputs = manifest.data.get("inputs")
    if isinstance(recorded_inputs, list) and recorded_inputs and recorded_inputs[:1] != inputs:
        found.append(f"{MANIFEST_FILE}'s inputs record differs from {name}'s input")
    if manifest.format != FORMAT_TENSORRT:
        precision = graph_precision(model)
        if precision != manifest.precision:
            found.append(f"the manifest records precision {manifest.precision}, but {name} is {precision} "
                         "(Q/DQ nodes: int8; fp16 weights: fp16)")
    batch = graph_in["shape"][0]
    if isinstance(batch, int) and not 1 <= batch <= MAX_VERIFY_BATCH:
        found.append(f"{name} has a static batch of {batch}, outside 1-{MAX_VERIFY_BATCH}")
    return found


def triton_problems(directory: Path, manifest: Manifest) -> list[str]:
    """config.pbtxt re-parsed with Triton's ModelConfig and compared with the manifest; labels.txt vs label names;
    one version folder."""
    if manifest.format not in TRITON_PLATFORMS:
        return []
    from .triton import parse_config

    found = []
    config_name, labels_name = _listed(manifest, CONFIG_FILE), _listed(manifest, LABELS_FILE)
    graph = _listed(manifest, ONNX_FILE if manifest.format == FORMAT_TRITON_ONNX else ENGINE_FILE)
    versions = {n.split("/")[0] for n in (f.name for f in manifest.files) if "/" in n}
    if len(versions) != 1 or not next(iter(versions), "x").isdigit():
        found.append(f"the manifest's model files sit in folders {sorted(versions)}; a model directory has one "
                     "version folder")
    if graph is not None and not ("/" in graph and graph.split("/")[0].isdigit()):
        found.append(f"{graph} is not in a version folder, where Triton loads it from")
    if config_name is not None:
        try:
            config = parse_config(inside(directory, config_name).read_text())
        except ResNetHubError as exc:  # tritonclient missing: the config cannot be parsed here
            return found + [f"{CONFIG_FILE} cannot be parsed here: {exc}"]
        except Exception as exc:
            return found + [f"{CONFIG_FILE} is not a valid Triton model config ({type(exc).__name__}: "
                            f"{str(exc)[:80]})"]
        found += _config_problems(directory, manifest, config)
    if labels_name is not None:
        try:
            lines = inside(directory, labels_name).read_text().splitlines()
        except (OSError, UnicodeDecodeError, ExportDirectoryError) as exc:
            return found + [f"{LABELS_FILE} is unreadable ({exc})"]
        if len(lines) != manifest.num_classes:
            found.append(f"{LABELS_FILE} has {len(lines)} lines for {manifest.num_classes} classes")
        elif manifest.label_names is not None and lines != [" ".join(n.split()) for n in manifest.label_names]:
            found.append(f"{LABELS_FILE} differs from the manifest's label names")
    return found


def _config_problems(directory: Path, manifest: Manifest, config: Any) -> list[str]:
    found = []
    if config.name != directory.name:
        found.append(f"{CONFIG_FILE} names the model {config.name!r}, but Triton serves it from {directory.name!r}")
    if config.platform != TRITON_PLATFORMS[manifest.format] or config.backend:
        found.append(f"{CONFIG_FILE} says platform {config.platform!r} backend {config.backend!r}; a "
                     f"'{manifest.format}' model is {TRITON_PLATFORMS[manifest.format]!r}")
    wanted_file = ONNX_FILE if manifest.format == FORMAT_TRITON_ONNX else ENGINE_FILE
    if config.default_model_filename not in ("", wanted_file):
        found.append(f"{CONFIG_FILE} points default_model_filename at {config.default_model_filename!r}, not the "
                     f"verified {wanted_file}")
    if config.model_repository_agents.agents or config.model_transaction_policy.decoupled:
        found.append(f"{CONFIG_FILE} adds repository agents or a decoupled policy that the export did not write")
    channels, height, width = manifest.input_size
    sample = [height, width, 3] if manifest.pixel_input else [channels, height, width]
    in_type = "TYPE_UINT8" if manifest.pixel_input else "TYPE_FP32"
    if len(config.input) != 1 or len(config.output) != 1:
        return found + [f"{CONFIG_FILE} declares {len(config.input)} inputs / {len(config.output)} outputs, not 1 / 1"]
    tensor_in, tensor_out = config.input[0], config.output[0]
    from tritonclient.grpc import model_config_pb2

    dims_in, dims_out = list(tensor_in.dims), list(tensor_out.dims)
    batch_axis = [] if config.max_batch_size > 0 else dims_in[:1]
    if (tensor_in.name != INPUT_NAME or model_config_pb2.DataType.Name(tensor_in.data_type) != in_type
            or dims_in != batch_axis + sample):
        found.append(f"{CONFIG_FILE}'s input is {tensor_in.name!r} "
                     f"{model_config_pb2.DataType.Name(tensor_in.data_type)} {dims_in}; the manifest records "
                     f"{INPUT_NAME!r} {in_type} {batch_axis + sample}")
    if tensor_out.name != OUTPUT_NAME or dims_out[-1:] != [manifest.num_classes]:
        found.append(f"{CONFIG_FILE}'s output is {tensor_out.name!r} {dims_out}; the manifest records "
                     f"{OUTPUT_NAME!r} with {manifest.num_classes} classes")
    if tensor_out.label_filename not in ("", LABELS_FILE):
        found.append(f"{CONFIG_FILE}'s label_filename is {tensor_out.label_filename!r}, not the hashed {LABELS_FILE}")
    if config.max_batch_size < 0 or config.max_batch_size > MAX_VERIFY_BATCH * 16:
        found.append(f"{CONFIG_FILE}'s max_batch_size {config.max_batch_size} is not a batch size")
    return found


def _reference(manifest: Manifest, weights: Path | None) -> tuple[Any, str | None]:
    """The ModelSource the export was verified against, rebuilt from the recorded weights, or (None, why not)."""
    from .source import load_model_source

    source = manifest.weights_source
    try:
        if weights is not None:
            built = load_model_source(manifest.name, weights=weights)
        elif source == "random-init":
            return None, "the export was made from random-init weights, which cannot be rebuilt (pass --weights)"
        elif source.startswith("pretrained:"):
            built = load_model_source(manifest.name, pretrained=True)
        elif manifest.weights_path and Path(manifest.weights_path).is_file():
            built = load_model_source(manifest.name, weights=manifest.weights_path)
        elif source and Path(source).is_file():
            built = load_model_source(manifest.name, weights=source)
        else:
            where = manifest.weights_path or source or "(not recorded)"
            return None, f"the weights {where} are not on this machine (pass --weights FILE)"
    except ResNetHubError as exc:
        return None, f"the weights could not be loaded: {str(exc).splitlines()[0][:200]}"
    if manifest.state_dict_sha256 and built.state_dict_sha256 != manifest.state_dict_sha256:
        return None, ("the weights found are not the ones exported (state-dict sha256 "
                      f"{built.state_dict_sha256[:12]} != recorded {manifest.state_dict_sha256[:12]})")
    return built, None


def weights_problems(manifest: Manifest, source: Any) -> list[str]:
    """The manifest's class count, label names and preprocessing against the weights it was exported from."""
    found = []
    if source.num_classes != manifest.num_classes:
        found.append(f"the manifest records {manifest.num_classes} classes, the weights have {source.num_classes}")
    names = tuple(source.label_names) if source.label_names else None
    if names != manifest.label_names:
        found.append("the manifest's label names are not the weights' (edited or swapped after export)")
    img_size = (manifest.data.get("export") or {}).get("img_size")
    try:
        expected = source.data_config(tuple(img_size) if img_size else None)
    except Exception as exc:  # an img_size the weights' preprocessing cannot take
        return found + [f"the manifest's export.img_size is not usable ({type(exc).__name__})"]
    recorded = manifest.data_config()
    for key in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std"):
        if _normal(recorded.get(key)) != _normal(expected.get(key)):
            found.append(f"the manifest's preprocessing {key} {recorded.get(key)} is not the weights' "
                         f"{expected.get(key)}")
    return found


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(round(float(v), 9) if isinstance(v, float) else v for v in value)
    return round(value, 9) if isinstance(value, float) else value


def code_batches(directory: Path, manifest: Manifest, artifact: str) -> tuple[int, ...]:
    """The batch sizes this code verifies ``artifact`` at: a dynamic graph at 1 and 3, a static one at its own
    batch; an engine at its profile's ends and optimum (from its record)."""
    if artifact == ENGINE_FILE:
        from .tensorrt_plan import BatchProfile

        profile = (manifest.engine_record or {}).get("profile") or [1, 1, 1]
        return BatchProfile(*(int(v) for v in profile)).verification_batches()
    inputs = manifest.data.get("inputs") or [{}]
    batch = (inputs[0].get("shape") or ["batch"])[0]
    return (batch, batch) if isinstance(batch, int) else (1, 3)


def _runner(path: Path, artifact: str, data_config: dict[str, Any] | None) -> tuple[Callable | None, str]:
    """``data_config``: given for a graph with embedded preprocessing (fed uint8 NHWC pixels)."""
    if artifact == XML_FILE:
        from .openvino_runtime import audit_runner

        return audit_runner(path, data_config)
    if artifact == ENGINE_FILE:
        import torch

        from .runtime import engine_logits
        from .tensorrt_runtime import TensorRTModule, import_tensorrt

        try:
            trt = import_tensorrt()
        except ResNetHubError as exc:
            return None, str(exc)
        if not torch.cuda.is_available():
            return None, f"TensorRT {trt.__version__} is installed but torch sees no CUDA GPU here"
        module = TensorRTModule(path)
        return (engine_logits(module, embedded_preprocessing=data_config is not None, data_config=data_config),
                f"TensorRT {trt.__version__}")
    from .runtime import onnx_logits
    from .verify import check_onnx_file

    try:
        checker = check_onnx_file(path)
    except ImportError as exc:
        return None, f"ONNX Runtime is not installed ({exc}); install the onnx extra"
    return onnx_logits(path, embedded_preprocessing=data_config is not None, data_config=data_config), checker


def rerun_parity(directory: Path, manifest: Manifest, weights: Path | None,
                 problems: list[str] | None = None) -> tuple[ParityRun, ...]:
    """Re-run every parity check the code requires for this format, with the code's tolerances and batch sizes.
    Problems found against the weights (label names, preprocessing) are appended to ``problems``."""
    from .tensorrt_plan import parity_tolerance
    from .verify import TOLERANCES, compare_runtime

    config = manifest.data_config()
    pixels = config if manifest.pixel_input else None
    source, why_not = None, None
    runs = []
    for artifact in REQUIRED_PARITY[manifest.format]:
        recorded = next((v for v in manifest.verification if v.artifact == artifact), None)
        runtime = recorded.runtime if recorded else artifact
        name = _listed(manifest, artifact)
        if name is None:
            runs.append(ParityRun(artifact, runtime, "failed", "the manifest does not list the artifact"))
            continue
        try:
            run, label = _runner(inside(directory, name), artifact, pixels)
        except ResNetHubError as exc:  # an engine for another TensorRT / GPU, a path refused
            runs.append(ParityRun(artifact, runtime, "failed", str(exc).splitlines()[0]))
            continue
        except Exception as exc:  # onnx.checker / ONNX Runtime reject a damaged graph
            first = str(exc).splitlines()[0][:160] if str(exc) else ""
            runs.append(ParityRun(artifact, runtime, "failed", f"cannot load it: {type(exc).__name__}: {first}"))
            continue
        if run is None:
            runs.append(ParityRun(artifact, runtime, "not re-run", label))
            continue
        if source is None and why_not is None:
            source, why_not = _reference(manifest, weights)
            if source is not None and problems is not None:
                problems.extend(weights_problems(manifest, source))
        if source is None:
            runs.append(ParityRun(artifact, runtime, "not re-run", str(why_not)))
            continue
        model = source.model
        if pixels is not None:
            from .preprocessing_graph import PixelGrid

            model = PixelGrid(model, pixels["mean"], pixels["std"])
        tolerance = _expected_tolerance(manifest, artifact, TOLERANCES, parity_tolerance)
        try:
            report = compare_runtime(model, run, chw=manifest.input_size, batch_sizes=code_batches(
                directory, manifest, artifact), tolerance=tolerance, artifact=artifact, runtime=runtime)
        except Exception as exc:  # a runtime that fails on the code's shapes is a failed check
            runs.append(ParityRun(artifact, runtime, "failed", f"{type(exc).__name__}: {str(exc)[:160]}"))
            continue
        runs.append(ParityRun(artifact, runtime, "passed" if report.passed else "failed",
                              f"re-run here ({label}): {report.describe()}"))
    return tuple(runs)


def audit_directory(directory: Path, *, hashes_only: bool = False, weights: Path | None = None,
                    allow_extra: bool = False) -> ExportAudit:
    try:
        manifest = read_manifest(directory / MANIFEST_FILE)
    except ManifestError as exc:
        return ExportAudit(directory, "unknown", problems=(str(exc),), hashes_only=hashes_only)
    files = check_files(directory, manifest)
    if not allow_extra:
        files += unlisted_files(directory, manifest)
    files_ok = all(f.ok for f in files)
    problems = structure_problems(directory, manifest)
    if files_ok:
        problems += graph_problems(directory, manifest) + triton_problems(directory, manifest)
    runs: tuple[ParityRun, ...] = ()
    if not hashes_only:
        if files_ok and not problems:
            runs = rerun_parity(directory, manifest, weights, problems)
        else:
            runs = tuple(ParityRun(a, a, "not re-run", "the directory does not match its manifest")
                         for a in REQUIRED_PARITY[manifest.format])
    return ExportAudit(directory, manifest.format, files, runs, tuple(problems), hashes_only)


def audit_export(path: str | Path, *, hashes_only: bool = False, weights: str | Path | None = None,
                 allow_extra: bool = False) -> AuditResult:
    """Check every export under ``path`` against its manifest and re-run parity (unless ``hashes_only``); reads
    only files inside ``path`` (and the weights, to rebuild the reference model)."""
    root = Path(path)
    if not root.is_dir():
        raise AuditError(f"{root} is not a directory; pass an export directory (the --output of resnet-hub export)")
    dirs, problems = find_export_dirs(root)
    audits = tuple(audit_directory(d, hashes_only=hashes_only, weights=Path(weights) if weights else None,
                                   allow_extra=allow_extra) for d in dirs)
    unverified = UNVERIFIABLE + (("parity with PyTorch, label names and preprocessing against the weights "
                                  "(--hashes-only)",) if hashes_only else ())
    return AuditResult(root, audits, tuple(problems), unverified)
