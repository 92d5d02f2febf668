"""Strict stand-ins for the three TensorRT classes that need libnvinfer, made from NVIDIA's real classes.

``Builder``, ``OnnxParser`` and ``Runtime`` cannot be constructed without the TensorRT libraries, so they (and
the objects they hand out) are replaced by ``unittest.mock.create_autospec(<real class>, spec_set=True)``:
a method or property the real class lacks raises ``AttributeError``, exactly as the real object would. pybind11
methods expose no ``inspect`` signature, so autospec alone would accept any arguments; every fake method and
constructor therefore also checks its arguments against the signature line(s) NVIDIA's bindings carry in their
docstrings (``set_flag(self: IBuilderConfig, flag: BuilderFlag) -> None``): arity, keyword names and types
(enums, interface classes, int / str / bool / buffer). Property assignments are checked against the setter's
docstring the same way. Everything else (enums, ``Logger``, ``Dims``, ``DataType``) is the real module.

Only ``build_serialized_network`` / ``ITimingCache.serialize`` return plain ``bytes`` where TensorRT returns an
``IHostMemory`` (which supports the buffer protocol but cannot be created without the library).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable
from unittest import mock

_PREFIXES = ("tensorrt_bindings.tensorrt.", "tensorrt.")
_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any = _REQUIRED


def _split_top(text: str) -> list[str]:
    """Split ``a: x, b: list[y, z] = 1`` at the commas outside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _params(inside: str) -> list[Param]:
    params = []
    for part in _split_top(inside):
        name, _, rest = part.partition(":")
        type_text, _, default = rest.partition(" = ")
        params.append(Param(name.strip(), type_text.strip(), default.strip() if default else _REQUIRED))
    return params


def signatures(doc: str | None, name: str) -> list[list[Param]]:
    """Every overload's parameters (``self`` dropped) from a pybind11 docstring; [] when none is stated."""
    found = []
    pattern = re.compile(rf"^(?:\d+\.\s+)?{re.escape(name)}\((.*)\)\s*->\s*(.+)$")
    for line in (doc or "").splitlines():
        match = pattern.match(line.strip())
        if match and match.group(1) not in ("*args, **kwargs",):
            params = _params(match.group(1))
            if params and params[0].name in ("self", "arg0"):
                params = params[1:]
            found.append(params)
    return found


def accepts(value: Any, type_text: str, trt) -> bool:
    """Would pybind11 take ``value`` for a parameter annotated ``type_text``? Unknown annotations pass."""
    t = type_text.strip()
    if t.endswith(" | None") or t.startswith("typing.Optional["):
        if value is None:
            return True
        t = t[:-len(" | None")] if t.endswith(" | None") else t[len("typing.Optional["):-1]
    if t in ("typing.SupportsInt", "int"):
        return (isinstance(value, int) and not isinstance(value, bool)) or hasattr(type(value), "__index__")
    if t in ("typing.SupportsFloat", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "bool":
        return isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t in ("typing_extensions.Buffer", "collections.abc.Buffer", "buffer"):
        try:
            memoryview(value)
        except TypeError:
            return False
        return True
    if t == "tuple":
        return isinstance(value, tuple)
    if t.startswith(("list[", "collections.abc.Sequence", "typing.Sequence")) or t == "list":
        return isinstance(value, (list, tuple))
    for prefix in _PREFIXES:
        if t.startswith(prefix):
            cls = getattr(trt, t[len(prefix):], None)
            if cls is None:
                return True
            if isinstance(value, cls):
                return True
            if t[len(prefix):].startswith("Dims") and isinstance(value, (tuple, list)):
                return all(isinstance(v, int) for v in value)
            return False
    return True


def check_call(trt, owner: str, name: str, overloads: list[list[Param]], args: tuple, kwargs: dict) -> None:
    """Raise TypeError (as pybind11 does) unless some overload takes these arguments."""
    if not overloads:
        return
    problems = []
    for params in overloads:
        names = [p.name for p in params]
        if len(args) > len(params):
            problems.append(f"{len(args)} positional arguments for ({', '.join(names)})")
            continue
        bound = dict(zip(names, args))
        bad = [k for k in kwargs if k not in names or k in bound]
        if bad:
            problems.append(f"unexpected keyword(s) {bad} for ({', '.join(names)})")
            continue
        bound.update(kwargs)
        missing = [p.name for p in params if p.name not in bound and p.default is _REQUIRED]
        if missing:
            problems.append(f"missing {missing} for ({', '.join(names)})")
            continue
        wrong = [f"{p.name}: {p.type} got {type(bound[p.name]).__name__}" for p in params
                 if p.name in bound and not accepts(bound[p.name], p.type, trt)]
        if wrong:
            problems.append("; ".join(wrong))
            continue
        return
    raise TypeError(f"{owner}.{name}(): incompatible function arguments: {' | '.join(problems)}")


def _checked_setattr(trt, spec: type) -> Callable[[Any, str, Any], None]:
    def setattr_(self, attr: str, value: Any) -> None:
        prop = getattr(spec, attr, None) if not attr.startswith("_") else None
        if isinstance(prop, property):
            if prop.fset is None:
                raise AttributeError(f"{spec.__name__}.{attr} is read-only")
            setter = signatures(prop.fset.__doc__, "")
            if setter:
                check_call(trt, spec.__name__, attr, setter, (value,), {})
        mock.NonCallableMagicMock.__setattr__(self, attr, value)

    return setattr_


def strict_instance(trt, spec: type, **returns: Any):
    """A spec_set autospec of an instance of ``spec`` whose methods check their arguments and return
    ``returns[name]`` (other methods return autospecced values as usual)."""
    fake = mock.create_autospec(spec, instance=True, spec_set=True)
    for attr in dir(spec):
        if attr.startswith("_"):
            continue
        real = getattr(spec, attr)
        if isinstance(real, property) or not callable(real):
            continue
        method = getattr(fake, attr)
        method.side_effect = _checker(trt, spec.__name__, attr, signatures(real.__doc__, attr))
        if attr in returns:
            method.return_value = returns[attr]
    for attr, value in returns.items():
        if isinstance(getattr(spec, attr, None), property):
            mock.NonCallableMagicMock.__setattr__(fake, attr, value)
    type(fake).__setattr__ = _checked_setattr(trt, spec)
    return fake


def _checker(trt, owner: str, name: str, overloads: list[list[Param]]):
    def side_effect(*args: Any, **kwargs: Any):
        check_call(trt, owner, name, overloads, args, kwargs)
        return mock.DEFAULT

    return side_effect


def strict_class(trt, spec: type, instance):
    """A spec_set autospec of the class ``spec`` whose constructor checks its arguments and returns ``instance``."""
    fake = mock.create_autospec(spec, spec_set=True)
    fake.side_effect = _checker(trt, spec.__name__, "__init__", signatures(spec.__init__.__doc__, "__init__"))
    fake.return_value = instance
    return fake


@dataclass
class Fakes:
    """The fakes installed into the ``tensorrt`` module, kept for the driver's assertions."""

    builder: Any
    network: Any
    parser: Any
    config: Any
    profile: Any
    timing_cache: Any
    runtime: Any
    engine: Any
    context: Any
    built: list


def install(trt, *, chw: tuple[int, int, int], profile: tuple[int, int, int], num_classes: int = 10,
            input_dtype: Any = None) -> Fakes:
    """Replace ``trt.Builder``, ``trt.OnnxParser`` and ``trt.Runtime`` (only those) by strict fakes wired so a
    build and a load run end to end; every build returns new, distinct plan bytes. The engine's input has
    shape (batch, *chw) and ``input_dtype`` (default FLOAT); its output is FLOAT."""
    lo, opt, hi = profile
    Builder, OnnxParser, Runtime = (_real(trt, n) for n in ("Builder", "OnnxParser", "Runtime"))
    network = strict_instance(trt, trt.INetworkDefinition)
    parser = strict_instance(trt, OnnxParser, parse_from_file=True, num_errors=0)
    timing_cache = strict_instance(trt, trt.ITimingCache, serialize=b"timing-cache")
    config = strict_instance(trt, trt.IBuilderConfig, create_timing_cache=timing_cache, get_timing_cache=timing_cache,
                             set_timing_cache=True)
    opt_profile = strict_instance(trt, trt.IOptimizationProfile)
    builder = strict_instance(trt, Builder, create_network=network, create_builder_config=config,
                              create_optimization_profile=opt_profile)
    built: list[bytes] = []

    def build(*args: Any, **kwargs: Any):
        check_call(trt, "Builder", "build_serialized_network",
                   signatures(Builder.build_serialized_network.__doc__, "build_serialized_network"), args, kwargs)
        plan = f"plan #{len(built) + 1}".encode() + bytes(range(32))
        built.append(plan)
        return plan

    builder.build_serialized_network.side_effect = build
    context = strict_instance(trt, trt.IExecutionContext, set_input_shape=True, set_tensor_address=True,
                              execute_async_v3=True, get_tensor_shape=trt.Dims((opt, num_classes)))
    engine = strict_instance(trt, trt.ICudaEngine, create_execution_context=context,
                             get_tensor_profile_shape=[trt.Dims((b, *chw)) for b in (lo, opt, hi)])
    check_dtype_call = engine.get_tensor_dtype.side_effect

    def tensor_dtype(*args: Any, **kwargs: Any):
        check_dtype_call(*args, **kwargs)
        name = args[0] if args else kwargs.get("name")
        return (input_dtype or trt.DataType.FLOAT) if name == "input" else trt.DataType.FLOAT

    engine.get_tensor_dtype.side_effect = tensor_dtype
    runtime = strict_instance(trt, Runtime, deserialize_cuda_engine=engine)
    trt.Builder = strict_class(trt, Builder, builder)
    trt.OnnxParser = strict_class(trt, OnnxParser, parser)
    trt.Runtime = strict_class(trt, Runtime, runtime)
    return Fakes(builder, network, parser, config, opt_profile, timing_cache, runtime, engine, context, built)


def _real(trt, name: str) -> type:
    """The real class even if a fake was installed before (fakes are re-installed per scenario)."""
    import tensorrt_bindings.tensorrt as native

    return getattr(native, name)
