"""Registers every variant of the table with timm.

timm has no plugin discovery: ``register_model`` must run when ``resnet_hub`` is imported, and it reads
``default_cfgs`` from this module, so that dict is built (from the table) before the entrypoints are.
"""

from __future__ import annotations

from typing import Any, Callable

from timm.models import PretrainedCfg, build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ..model.configs import VARIANTS, VariantConfig, pretrained_cfg_for  # noqa: F401  (pretrained_cfg_for: re-exported)
from ..model.architectures import model_class
from ..weights.converters import timm_resnetv2
from ..weights.metadata_checks import check_build_request

__all__: list[str] = []


def _default_cfgs() -> dict:
    cfgs: dict[str, dict[str, Any] | PretrainedCfg] = {}
    for variant in VARIANTS.values():
        if not variant.pretrained:
            cfgs[variant.name] = pretrained_cfg_for(variant, None)
        for tag in variant.pretrained:
            cfgs[f"{variant.name}.{tag.tag}"] = pretrained_cfg_for(variant, tag)
    return generate_default_cfgs(cfgs)


default_cfgs = _default_cfgs()


def build_variant(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``name`` through timm's builder, which brings pretrained loading, ``features_only``,
    ``num_classes`` / ``in_chans`` adaptation of loaded weights, and ``pretrained_cfg`` bookkeeping."""
    variant = VARIANTS[name]
    check_model_args(name, kwargs)
    check_build_request(name, kwargs)  # head size and a given pretrained_cfg, before anything is allocated
    kwargs = check_factory_args(name, kwargs, loads_weights=pretrained)
    model_cls = model_class(variant)
    model_args = dict(variant.model_args(), model_name=name)
    model_args.update(kwargs)
    from ..weights.hub import prepare_pretrained  # local import: hub pulls in huggingface_hub lazily

    # Always called: it also strips hub_org / hub_revision, which the model classes do not take.
    model_args = prepare_pretrained(variant, model_args, pretrained=pretrained)
    try:
        return build_model_with_cfg(
            model_cls,
            name,
            pretrained,
            pretrained_filter_fn=timm_resnetv2.pretrained_filter,
            **model_args,
        )
    except RuntimeError as exc:
        if pretrained and "Error(s) in loading state_dict" in str(exc):
            raise _pretrained_mismatch(name, model_args, exc) from None
        raise


# Feature maps our models expose to ``features_only``: the stem and layer1..layer4.
NUM_FEATURE_LEVELS = 5


def check_model_args(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse arguments that would build a useless model or fail later with a bare IndexError."""
    from ..errors import ModelArgumentError

    in_chans = kwargs.get("in_chans", 3)
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ModelArgumentError(f"in_chans must be a whole number >= 1 (3 for RGB, 1 for greyscale); "
                                 f"got {in_chans!r}.")
    num_classes = kwargs.get("num_classes", 0)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ModelArgumentError(f"num_classes must be a whole number >= 0 (0 drops the classifier); "
                                 f"got {num_classes!r}.")
    if not kwargs.get("features_only"):
        return
    out_indices = kwargs.get("out_indices", tuple(range(NUM_FEATURE_LEVELS)))
    levels = NUM_FEATURE_LEVELS
    valid = (f"{name} has {levels} feature levels: 0 (stem, stride 2), 1-4 (layer1-layer4, strides 4-32); "
             f"valid out_indices are 0..{levels - 1} or -{levels}..-1 counting from the deepest")
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        if not 1 <= out_indices <= levels:
            raise ModelArgumentError(f"out_indices={out_indices} asks for the last {out_indices} feature levels; "
                                     f"{valid}, or an int 1..{levels}.")
        return
    try:
        indices = list(out_indices)
    except TypeError:
        raise ModelArgumentError(f"out_indices must be a sequence of ints; got {out_indices!r}. {valid}.") from None
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int) or not -levels <= i < levels]
    if bad or not indices:
        raise ModelArgumentError(f"out_indices {tuple(indices)} are out of range ({bad or 'empty'}): {valid}.")


# dtype names accepted besides torch.dtype objects (JSON configs, torch.hub calls written as strings).
FLOAT_DTYPES = {
    "float32": "float32", "float": "float32", "bfloat16": "bfloat16",
    "float16": "float16", "half": "float16", "float64": "float64", "double": "float64",
}


def check_factory_args(name: str, kwargs: dict[str, Any], loads_weights: bool = False) -> dict[str, Any]:
    """timm's ``device`` / ``dtype`` factory arguments, checked before anything is built: each mistake is one
    line saying what to pass (PyTorch's own messages come from deep inside the first conv or the CUDA driver).

    Returns the kwargs with a dtype name ('bfloat16') turned into its ``torch.dtype``. ``loads_weights``: the
    caller will copy weights into the model, which a meta-device model cannot hold."""
    import torch

    from ..errors import DeviceError, ModelArgumentError

    kwargs = dict(kwargs)
    dtype = kwargs.get("dtype")
    if dtype is not None:
        if isinstance(dtype, str) and dtype.removeprefix("torch.") in FLOAT_DTYPES:
            dtype = kwargs["dtype"] = getattr(torch, FLOAT_DTYPES[dtype.removeprefix("torch.")])
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.itemsize < 2:
            raise ModelArgumentError(f"dtype={dtype!r} cannot hold {name}'s weights: pass a floating-point dtype, "
                                     "torch.float32, torch.bfloat16, torch.float16 or torch.float64 (or its name).")
    device = kwargs.get("device")
    if device is not None:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise DeviceError(f"Unknown device {device!r}: use 'cpu', 'cuda' / 'cuda:N' for an NVIDIA GPU, 'mps' "
                              "on Apple silicon, or 'meta' to build the model without allocating weights.") from None
        _check_device_exists(resolved, device)
    else:
        get_default = getattr(torch, "get_default_device", None)  # torch >= 2.3: a `with torch.device(...)` block
        resolved = get_default() if get_default is not None else torch.device("cpu")
    if loads_weights and resolved.type == "meta":
        raise DeviceError(f"{name} on device 'meta' has no storage, so weights cannot be loaded into it (timm "
                          "would leave every tensor empty): build on a real device, or build on meta without "
                          "weights, then model.to_empty(device='cpu') and load_state_dict.")
    return kwargs


def _check_device_exists(device: Any, asked: Any) -> None:
    """``cuda`` without a GPU (or ``cuda:3`` on a one-GPU machine) fails here, not in the driver."""
    import torch

    from ..errors import DeviceError

    if device.type in ("cpu", "meta"):
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (f"no GPU is visible (this PyTorch is built for CUDA {torch.version.cuda})" if torch.version.cuda
                   else "this PyTorch is a CPU-only build")
            raise DeviceError(f"device={asked!r} was asked for, but {why}; use device='cpu'.")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device={asked!r}: this machine has {count} CUDA device(s), numbered 0..{count - 1}.")
        return
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device={asked!r} needs Apple's Metal (MPS) backend, which is not available here; "
                              "use device='cpu'.")
        return
    try:  # other backends (xpu, ...): asking for an empty tensor is the check PyTorch itself would make
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0][:160]
        raise DeviceError(f"device={asked!r} is not usable here ({first}); use device='cpu'.") from None


def _pretrained_mismatch(name: str, model_args: dict[str, Any], exc: RuntimeError) -> Exception:
    """timm's strict load failed: name the architecture the file looks like instead of dumping key lists."""
    from safetensors import safe_open

    from ..errors import IncompatibleWeightsError
    from ..weights.identify import looks_like

    overlay = model_args.get("pretrained_cfg_overlay") or {}
    path = overlay.get("file")
    where = f"{path}" + (f" (from {overlay['hf_hub_id']})" if overlay.get("hf_hub_id") else "")
    guess = None
    if path:
        try:
            with safe_open(str(path), framework="pt") as handle:
                shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
            guess = looks_like(shapes, exclude=name)
        except Exception:  # the original error below still says what failed
            guess = None
    if guess:
        return IncompatibleWeightsError(
            f"The pretrained weights {where} do not fit {name}: they look like {guess}. Point hub_org / "
            f"$RESNET_HUB_ORG at a mirror holding {name}'s weights, or create that model instead."
        )
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return IncompatibleWeightsError(
        f"The pretrained weights {where} do not fit {name} ({first} ...). They were made for another architecture "
        "or layout; pass weights converted with `resnet-hub convert` as weights=PATH (CLI: --weights PATH)."
    )


def _make_entrypoint(variant: VariantConfig) -> Callable[..., nn.Module]:
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return build_variant(variant.name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = variant.name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = describe(variant)
    return entrypoint


def describe(variant: VariantConfig) -> str:
    """Docstring of an entrypoint (shown by ``torch.hub.help`` and ``help()``)."""
    tags = ", ".join(t.tag for t in variant.pretrained) or "none published (convert your own)"
    peers = [f"{lib}: {peer}" for lib, peer in (("timm", variant.timm_name), ("torchvision", variant.torchvision_name),
                                                  ("Keras", variant.keras_name)) if peer]
    return (
        f"{variant.description}.\n\n"
        f"Pretrained tags: {tags}.\n"
        + (f"Checkpoint-compatible with {'; '.join(peers)}.\n" if peers else "")
        + "\nArgs:\n"
        "    pretrained: load the default pretrained weights (safetensors from the Hugging Face Hub).\n"
        "    **kwargs: num_classes, in_chans, global_pool, drop_rate, drop_path_rate, zero_init_last,\n"
        "        features_only, out_indices, ... as in timm.create_model.\n"
    )


for _variant in VARIANTS.values():
    globals()[_variant.name] = register_model(_make_entrypoint(_variant))


def _install_hub_seam() -> None:
    from ..weights.hub import install_timm_hub_seam

    install_timm_hub_seam()  # timm.create_model('hf-hub:...') fails fast and clearly, like our own loads


_install_hub_seam()
