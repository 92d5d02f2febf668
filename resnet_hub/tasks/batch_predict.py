"""Batch prediction on Ray Data: the scale-out path of ``resnet-hub predict`` for collections one process cannot
get through (millions of files, in object storage).

It is built on Ray Data's batch-inference pattern rather than on a home-made pool: a dataset of file paths, a
stateless ``map_batches`` stage that decodes and preprocesses images, and a pool of actors
(``map_batches(callable class, compute=ActorPoolStrategy(size=N))``) that each load the model once and classify
batches. Decoding goes through :func:`resnet_hub.tasks.data.load_image` and the weights' timm transform, exactly as
local predict does, so the two engines give the same top-k; unreadable files become rows with a reason instead
of failing the run.

What a worker runs is a :class:`BatchModel`: PyTorch weights here (:class:`TorchBatchModel`, built by the same
``build_predictor`` as local predict), exported ONNX / TensorRT directories in
``resnet_hub.export.batch_model`` (the export layer sits above this module). A ``BatchModel`` is pickled to
the workers, so on a cluster the files it names must be readable there (shared storage).

Output is one file, written atomically on the driver as results stream in (rows in input order):

* ``.parquet``: columns ``path``, ``indices``, ``labels``, ``probabilities`` (top-k lists, best first) and
  ``reason`` (null, or why the file was skipped); the run's metadata (model, weights sha256, preprocessing)
  as JSON under the schema metadata key ``resnet_hub``.
* ``.jsonl``: every line is one file, with the fields of local ``predict --json``'s entries: ``{"path",
  "topk": [{"index", "label", "probability"}]}`` for a prediction, ``{"path", "reason"}`` for a skipped file,
  so ``pandas.read_json(F, lines=True)``, ``ray.data.read_json`` and ``jq`` read it as-is; the run's metadata
  goes into the sidecar ``F.jsonl.meta.json`` (:func:`metadata_path`).

An input that does not exist is a row with its reason, in input order among the others; when no input exists
at all the run is refused before Ray starts and nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

from .data import ImageLoadError, SkippedFile, expand_image_paths, load_image
from ..errors import MissingDependencyError, ResNetHubError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from PIL import Image as PILImage

OUTPUT_SUFFIXES = (".jsonl", ".parquet")
METADATA_KEY = "resnet_hub"  # parquet schema metadata key holding the run's metadata as JSON
METADATA_SUFFIX = ".meta.json"  # .jsonl output: the run's metadata in a sidecar file beside it
FORMAT_NAME = "resnet-hub predictions"
FORMAT_VERSION = 1

Logits = Callable[["np.ndarray"], Any]  # float32 (N, C, H, W) -> (N, classes) torch tensor or numpy array


class BatchPredictionError(ResNetHubError, ValueError):
    """Batch prediction cannot start as asked (output exists, unknown suffix, not enough workers' resources)."""


# --- what the workers run ---------------------------------------------------------------------------------


@dataclass
class ModelDescription:
    """What the driver needs before any worker starts: the preprocessing, class names, provenance."""

    data_config: dict[str, Any]  # timm data config (what create_transform takes)
    labels: list[str]
    record: dict[str, Any]  # model, runtime, weights, weights_sha256, ... (goes into the output's metadata)
    num_gpus: float = 0.0  # per worker


class BatchModel(Protocol):
    """A picklable recipe for a model: described once on the driver, loaded once in every worker."""

    def describe(self) -> ModelDescription: ...

    def load(self, threads: int) -> Logits: ...


@dataclass(frozen=True)
class TorchBatchModel:
    """A variant with local weights (``weights``), its published ones (``pretrained``) or random ones; built by
    :func:`resnet_hub.tasks.predict.build_predictor`, the same function local predict uses."""

    name: str
    weights: str | None = None
    pretrained: bool = False
    optimize: bool = True
    device: str = "cpu"

    def describe(self) -> ModelDescription:
        from .predict import build_predictor

        predictor = build_predictor(self.name, weights=self.weights, pretrained=self.pretrained, optimize=False)
        record = dict(model=self.name, runtime="PyTorch", weights=self._weights_file() or
                      ("pretrained" if self.pretrained else "random-init"), weights_sha256=self._sha256())
        return ModelDescription(dict(predictor.data_config), list(predictor.labels), record,
                                num_gpus=1.0 if self.device.startswith("cuda") else 0.0)

    def load(self, threads: int) -> Logits:
        import torch

        from .predict import build_predictor

        torch.set_num_threads(threads)
        predictor = build_predictor(self.name, weights=self.weights, pretrained=self.pretrained,
                                    optimize=self.optimize, device=self.device)

        def run(pixels: "np.ndarray") -> "torch.Tensor":
            with torch.inference_mode():
                return predictor.model(torch.from_numpy(pixels).to(predictor.device))

        return run

    def _weights_file(self) -> str | None:
        """The local weights file: ``weights``, or ``name`` itself when it names a weights file."""
        from .predict import is_weights_file

        return self.weights if self.weights is not None else (self.name if is_weights_file(self.name) else None)

    def _sha256(self) -> str | None:
        from ..weights.io import sha256_of_file

        weights_file = self._weights_file()
        if weights_file is not None:
            return sha256_of_file(weights_file)
        if self.pretrained:  # the file the Hub cache holds, when it is there (the driver's build fetched it)
            from huggingface_hub import try_to_load_from_cache

            from ..weights.lookup import get_variant

            variant = get_variant(self.name)
            tag = variant.tag(self.name.split(".", 1)[1]) if "." in self.name else variant.default_tag
            cached = try_to_load_from_cache(tag.hf_hub_id, "model.safetensors") if tag is not None else None
            return sha256_of_file(cached) if isinstance(cached, str) else None
        return None


# --- sources ----------------------------------------------------------------------------------------------


def is_uri(source: str | os.PathLike) -> bool:
    return "://" in str(source)


def list_sources(sources: Iterable[str | os.PathLike]) -> tuple[list[str], list[SkippedFile]]:
    """Files to predict, in order, and the sources that are not (missing, pipes, ...).

    Local paths are listed by :func:`resnet_hub.tasks.data.expand_image_paths`, exactly as local predict lists them.
    URIs (``s3://``, ``gs://``, ``file://``, anything ``pyarrow.fs`` resolves) are listed through pyarrow's
    filesystems with the same rules: a file as given, a folder's files sorted, not recursive, hidden files left out.
    """
    entries = list_sources_in_order(sources)
    return ([e for e in entries if isinstance(e, str)], [e for e in entries if isinstance(e, SkippedFile)])


def list_sources_in_order(sources: Iterable[str | os.PathLike]) -> list[str | SkippedFile]:
    """What :func:`list_sources` lists, as one sequence in input order: a file to predict (its path) or a
    source that cannot be (a :class:`SkippedFile`): the order of the output's rows."""
    entries: list[str | SkippedFile] = []
    for source in sources:
        if not is_uri(source):
            local, missing = expand_image_paths([source])
            entries.extend(str(p) for p in local)
            entries.extend(missing)
            continue
        found, missing = _list_uri(str(source))
        entries.extend(found)
        entries.extend(missing)
    return entries


def _list_uri(uri: str) -> tuple[list[str], list[SkippedFile]]:
    import pyarrow.fs as pafs

    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [uri], []
        if info.type == pafs.FileType.NotFound:
            return [], [SkippedFile(uri, "no such file or folder")]
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
    except (OSError, ValueError, NotImplementedError) as exc:
        raise BatchPredictionError(f"Cannot list {uri}: {exc}. Check the URI, its credentials, and that pyarrow "
                                   "supports that filesystem (s3, gs, hdfs)") from None
    scheme = uri.split("://", 1)[0]
    # pyarrow lists 'bucket/key' (s3, gs) or '/abs/path' (file): the scheme in front gives back a URI
    return [f"{scheme}://{e.path}" for e in sorted(entries, key=lambda e: e.path)
            if e.type == pafs.FileType.File and not e.base_name.startswith(".")], []


_FILESYSTEMS: dict[str, Any] = {}


def read_image(path: str) -> "PILImage.Image":
    """A local path through :func:`load_image`; a URI's bytes through pyarrow, then the same decoder."""
    if not is_uri(path):
        return load_image(path)
    import io

    import pyarrow.fs as pafs

    scheme, rest = path.split("://", 1)
    key = f"{scheme}://{rest.split('/', 1)[0]}"  # one client per bucket and process: an S3 client is not free
    try:
        if key not in _FILESYSTEMS:
            _FILESYSTEMS[key] = pafs.FileSystem.from_uri(path)[0]
        with _FILESYSTEMS[key].open_input_stream(rest) as stream:  # 'bucket/key' or '/abs/path', as listed
            data = stream.read()
    except (OSError, ValueError, NotImplementedError) as exc:
        raise ImageLoadError(f"cannot read ({exc})") from None
    return load_image(io.BytesIO(data))


# --- the two Ray Data stages ------------------------------------------------------------------------------


def decode_batch(batch: dict[str, "np.ndarray"], data_config: dict[str, Any]) -> dict[str, "np.ndarray"]:
    """Data stage: files -> preprocessed float32 pixels (zeros and a reason for files that cannot be read)."""
    import numpy as np
    from timm.data import create_transform

    transform = create_transform(**data_config, is_training=False)
    shape = tuple(int(v) for v in data_config["input_size"])
    paths = [str(p) for p in batch["path"]]
    pixels = np.zeros((len(paths), *shape), dtype=np.float32)
    reasons = []
    for i, path in enumerate(paths):
        try:
            pixels[i] = transform(read_image(path)).numpy()
            reasons.append("")
        except ImageLoadError as exc:
            reasons.append(str(exc))
    return {"path": np.array(paths, dtype=object), "pixels": pixels, "reason": np.array(reasons, dtype=object)}


def output_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("indices", pa.list_(pa.int64())), ("labels", pa.list_(pa.string())),
                      ("probabilities", pa.list_(pa.float64())), ("reason", pa.string())])


class Classifier:
    """Model stage, one instance per Ray actor: loads the model once, then top-k for each batch."""

    def __init__(self, model: BatchModel, labels: Sequence[str], k: int, threads: int) -> None:
        self.logits = model.load(threads)
        self.labels = list(labels)
        self.k = k

    def __call__(self, batch: dict[str, "np.ndarray"]) -> "pa.Table":
        import numpy as np
        import pyarrow as pa
        import torch

        from .predict import topk

        reasons = [str(r) for r in batch["reason"]]
        readable = [i for i, r in enumerate(reasons) if not r]
        results: dict[int, tuple[list[int], list[str], list[float]]] = {}
        if readable:
            logits = self.logits(np.ascontiguousarray(batch["pixels"][readable], dtype=np.float32))
            rows = topk(torch.as_tensor(logits), self.k, self.labels)
            results = dict(zip(readable, rows))
        columns: dict[str, list] = {"path": [], "indices": [], "labels": [], "probabilities": [], "reason": []}
        for i, path in enumerate(batch["path"]):
            indices, labels, probs = results.get(i, (None, None, None))
            columns["path"].append(str(path))
            columns["indices"].append(indices)
            columns["labels"].append(labels)
            columns["probabilities"].append(probs)
            columns["reason"].append(reasons[i] or None)
        return pa.table(columns, schema=output_schema())


# --- output -----------------------------------------------------------------------------------------------


def jsonl_entry(row: dict[str, Any]) -> dict[str, Any]:
    """One output row as local ``predict --json`` writes it: a prediction entry or a skipped entry."""
    if row.get("reason") is not None:
        return dict(path=row["path"], reason=row["reason"])
    return dict(path=row["path"], topk=[dict(index=i, label=lbl, probability=p) for i, lbl, p
                                        in zip(row["indices"], row["labels"], row["probabilities"])])


class _Writer(Protocol):
    def write(self, table: "pa.Table") -> None: ...

    def close(self) -> None: ...


class _JsonlWriter:
    def __init__(self, path: str, metadata: dict[str, Any]) -> None:
        self.handle = open(path, "w", encoding="utf-8")  # the metadata goes into the sidecar (metadata_path)

    def write(self, table: "pa.Table") -> None:
        for row in table.to_pylist():
            self.handle.write(json.dumps(jsonl_entry(row)) + "\n")

    def close(self) -> None:
        self.handle.close()


class _ParquetWriter:
    def __init__(self, path: str, metadata: dict[str, Any]) -> None:
        import pyarrow.parquet as pq

        schema = output_schema().with_metadata({METADATA_KEY: json.dumps(metadata)})
        self.writer = pq.ParquetWriter(path, schema)
        self.schema = schema

    def write(self, table: "pa.Table") -> None:
        self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self.writer.close()


def _open_writer(path: str, suffix: str, metadata: dict[str, Any]) -> _Writer:
    return _ParquetWriter(path, metadata) if suffix == ".parquet" else _JsonlWriter(path, metadata)


def metadata_path(output: str | os.PathLike) -> Path:
    """Where a .jsonl output's run metadata goes: ``F.jsonl.meta.json`` beside it (Parquet keeps it inside)."""
    return Path(f"{output}{METADATA_SUFFIX}")


def read_predictions(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The metadata and the rows of a batch prediction file (rows as :func:`jsonl_entry` spells them)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        metadata = json.loads((table.schema.metadata or {})[METADATA_KEY.encode()])
        return metadata, [jsonl_entry(row) for row in table.to_pylist()]
    lines = path.read_text(encoding="utf-8").splitlines()
    metadata = json.loads(metadata_path(path).read_text(encoding="utf-8"))
    return metadata, [json.loads(line) for line in lines if line]


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class BatchPredictionResult:
    output: Path
    predicted: int
    skipped: int
    seconds: float
    num_workers: int
    ray_address: str
    started_ray: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def check_output(output: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a suffix we cannot write and an existing file (unless ``overwrite``) before anything starts."""
    path = Path(output)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise BatchPredictionError(f"--output {path}: use a .jsonl or .parquet file name")
    if path.is_dir():
        raise BatchPredictionError(f"--output {path} is a folder; name a .jsonl or .parquet file")
    if path.exists() and not overwrite:
        raise BatchPredictionError(f"{path} already exists; pass --force to replace it")
    if path.suffix == ".jsonl" and metadata_path(path).exists() and not overwrite:
        raise BatchPredictionError(f"{metadata_path(path)} (the metadata of a .jsonl output) already exists; pass "
                                   "--force to replace it")
    return path


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the `data` extra: pyarrow, pandas)
    except ImportError as exc:
        raise MissingDependencyError("ray[data]", "ray", "Batch prediction with --engine ray") from exc
    return ray


@contextlib.contextmanager
def ray_connection(ray: Any, address: str | None, num_cpus: int | None, **init_kwargs: Any) -> Iterator[bool]:
    """The Ray this process is connected to; else the cluster at ``address``; else a local Ray with ``num_cpus``
    (default: every CPU). Yields whether it started one, and shuts down only what it started (predict and
    evaluate on Ray share this rule)."""
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, **init_kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **init_kwargs)
        started = True
    try:
        yield started
    finally:
        if started:
            ray.shutdown()


def predict_with_ray(
    model: BatchModel,
    sources: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    k: int = 5,
    batch_size: int = 8,
    num_workers: int = 1,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    num_cpus: int | None = None,
    overwrite: bool = False,
    verbose: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchPredictionResult:
    """Classify every file of ``sources`` on Ray Data and write the results to ``output`` (.jsonl / .parquet).

    Uses the Ray this process is already connected to; else connects to ``address`` (a cluster), else starts a
    local Ray with ``num_cpus`` (default: this machine's cores) and shuts down what it started. ``num_workers``
    actors each hold the model (``cpus_per_worker`` CPUs and threads each). ``on_start(total)`` is called once
    the files are listed, ``on_progress(n)`` after each group of n rows is written. Rows come in input order,
    inputs that do not exist included; when none exists, nothing starts and nothing is written. Unless
    ``verbose``, a Ray this function starts keeps its workers' log lines to itself (warnings and errors of
    the driver still show).
    """
    if batch_size < 1 or k < 1 or num_workers < 1 or cpus_per_worker <= 0:
        raise BatchPredictionError("--batch-size, --topk and --num-workers must be >= 1")
    path = check_output(output, overwrite)
    ray = import_ray()
    entries = list_sources_in_order(sources)
    files = [e for e in entries if isinstance(e, str)]
    if not files:
        shown = ", ".join(e.path for e in entries[:3] if isinstance(e, SkippedFile)) + (", ..." if len(entries) > 3
                                                                                        else "")
        raise BatchPredictionError(f"None of the inputs exists or holds an image ({shown or 'no input given'}); "
                                   "nothing was written")
    description = model.describe()
    metadata = dict(format=FORMAT_NAME, format_version=FORMAT_VERSION, **description.record,
                    preprocessing=_jsonable(description.data_config), num_classes=len(description.labels),
                    topk=min(k, len(description.labels)), engine="ray", ray_version=ray.__version__,
                    num_workers=num_workers)
    quiet = dict(logging_level=logging.INFO if verbose else logging.ERROR, log_to_driver=verbose)
    with ray_connection(ray, address, num_cpus, **quiet) as started:
        begin = time.perf_counter()
        counts = dict(predicted=0, skipped=len(entries) - len(files))
        _check_resources(ray, num_workers, cpus_per_worker, description.num_gpus)
        if on_start is not None:
            on_start(len(entries))

        def write(tmp: str) -> None:
            writer = _open_writer(tmp, path.suffix, metadata)
            try:
                tables = _run(ray, model, description, files, k, batch_size, num_workers, cpus_per_worker)
                for table in _in_input_order(entries, tables):
                    writer.write(table)
                    predicted = table.column("reason").null_count  # a prediction has no skip reason
                    counts["predicted"] += predicted
                    if on_progress is not None:
                        on_progress(table.num_rows)
            finally:
                writer.close()
            counts["skipped"] = len(entries) - counts["predicted"]
            if path.suffix == ".jsonl":  # once the rows are complete, just before they are renamed into place
                atomic_write(metadata_path(path), lambda sidecar: Path(sidecar).write_text(
                    json.dumps(metadata, indent=2) + "\n", encoding="utf-8"), overwrite=True)

        from ..weights.io import atomic_write

        atomic_write(path, write, overwrite=overwrite)
        gcs = ray.get_runtime_context().gcs_address
    return BatchPredictionResult(output=path, predicted=counts["predicted"], skipped=counts["skipped"],
                                 seconds=time.perf_counter() - begin, num_workers=num_workers, ray_address=gcs,
                                 started_ray=started, metadata=metadata)


def _skipped_table(skipped: list[SkippedFile]) -> "pa.Table":
    import pyarrow as pa

    return pa.table({"path": [s.path for s in skipped], "indices": [None] * len(skipped),
                     "labels": [None] * len(skipped), "probabilities": [None] * len(skipped),
                     "reason": [s.reason for s in skipped]}, schema=output_schema())


def _in_input_order(entries: list[str | SkippedFile], tables: Iterable["pa.Table"]) -> Iterator["pa.Table"]:
    """The model's tables (one row per file, in file order) with the inputs that were skipped while listing
    put back where they were given, so the output's rows follow the input order."""
    position = 0

    def skipped_here() -> Iterator["pa.Table"]:
        nonlocal position
        start = position
        while position < len(entries) and isinstance(entries[position], SkippedFile):
            position += 1
        if position > start:
            yield _skipped_table([e for e in entries[start:position] if isinstance(e, SkippedFile)])

    for table in tables:
        offset = 0
        while offset < table.num_rows:
            yield from skipped_here()
            run = 0
            while position < len(entries) and isinstance(entries[position], str) and offset + run < table.num_rows:
                position += 1
                run += 1
            if run == 0:
                raise RuntimeError("the model returned more rows than there are files")  # a bug, not bad input
            yield table.slice(offset, run)
            offset += run
    yield from skipped_here()


def _run(ray, model: BatchModel, description: ModelDescription, files: list[str], k: int, batch_size: int,
         num_workers: int, cpus_per_worker: float) -> Iterator["pa.Table"]:
    """The Ray Data pipeline: paths -> decode (tasks) -> classify (actor pool), streamed back in input order."""
    if not files:
        return
    dataset = ray.data.from_items([{"path": f} for f in files],
                                   override_num_blocks=_blocks(len(files), batch_size, num_workers))
    dataset.context.execution_options.preserve_order = True  # rows come back in input order
    dataset.context.enable_progress_bars = False  # a library does not draw on the terminal; callers get on_progress
    decoded = dataset.map_batches(decode_batch, fn_kwargs=dict(data_config=description.data_config),
                                  batch_size=batch_size, batch_format="numpy")
    classified = decoded.map_batches(
        Classifier, fn_constructor_kwargs=dict(model=model, labels=description.labels, k=k,
                                               threads=max(1, int(cpus_per_worker))),
        compute=ray.data.ActorPoolStrategy(size=num_workers), batch_size=batch_size, batch_format="numpy",
        num_cpus=cpus_per_worker, num_gpus=description.num_gpus or None)
    yield from classified.iter_batches(batch_size=None, batch_format="pyarrow")


def _blocks(n_files: int, batch_size: int, num_workers: int) -> int:
    """Blocks of ~4 batches (fine-grained enough to balance, coarse enough that scheduling stays cheap), and at
    least a few per worker so that none idles on a small input."""
    return max(1, min(n_files, max(num_workers * 4, -(-n_files // (batch_size * 4)))))


def _check_resources(ray, num_workers: int, cpus_per_worker: float, gpus_per_worker: float) -> None:
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if num_workers * cpus_per_worker > cpus:
        raise BatchPredictionError(f"{num_workers} workers x {cpus_per_worker:g} CPU need "
                                   f"{num_workers * cpus_per_worker:g} "
                                   f"CPUs but this Ray cluster has {cpus:g}; lower --num-workers or add nodes")
    if num_workers * gpus_per_worker > gpus:
        raise BatchPredictionError(f"{num_workers} workers need {num_workers * gpus_per_worker:g} GPUs but this Ray "
                                   f"cluster has {gpus:g}; lower --num-workers or run on GPU nodes")


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
