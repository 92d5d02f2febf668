"""What an ONNX graph is made of, read without running it: its inputs and outputs, and one op counter.

The manifest records these figures at export time and ``verify`` recomputes them from the file, so a manifest that
claims int8 for a graph without Q/DQ nodes, or 10 classes for a 1000-wide output, is caught. Only the graph
structure is loaded (``load_external_data=False``): cheap even for large models.
"""

from __future__ import annotations

import os
from typing import Any

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def load_structure(path: str | os.PathLike) -> Any:
    """The ``onnx.ModelProto`` without its external weights."""
    import onnx

    return onnx.load(str(path), load_external_data=False)


def _model(graph: Any) -> Any:
    return load_structure(graph) if isinstance(graph, (str, os.PathLike)) else graph


def op_counts(graph: Any, *, dequantized_inputs: bool = False) -> dict[str, int]:
    """Nodes per op type, most frequent first. With ``dequantized_inputs`` only the nodes fed by a
    DequantizeLinear are counted (the ones ONNX Runtime / TensorRT can fuse into integer kernels), plus the
    number of QuantizeLinear nodes."""
    model = _model(graph)
    nodes = list(model.graph.node)
    if dequantized_inputs:
        dequantized = {out for n in nodes if n.op_type == "DequantizeLinear" for out in n.output}
        nodes = [n for n in nodes if n.op_type not in QDQ_OPS and any(i in dequantized for i in n.input)]
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    if dequantized_inputs:
        counts["QuantizeLinear"] = sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear")
        return dict(sorted(counts.items()))
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def qdq_counts(graph: Any) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes a graph has (0 means nothing runs in int8)."""
    counts = op_counts(graph)
    return {k: counts.get(k, 0) for k in QDQ_OPS}


def float16_initializers(graph: Any) -> int:
    """How many weight tensors are stored as fp16 (an fp16 export has most of them; fp32 and int8 none)."""
    import onnx

    model = _model(graph)
    return sum(1 for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)


def graph_precision(graph: Any) -> str:
    """The precision a graph's structure shows: int8 (Q/DQ nodes), fp16 (fp16 weights) or fp32."""
    model = _model(graph)
    if any(qdq_counts(model).values()):
        return "int8"
    return "fp16" if float16_initializers(model) else "fp32"


def onnx_signature(graph: Any) -> dict[str, Any]:
    """Names, element types and shapes (symbolic axes by name) of the graph's inputs and outputs, its opset and
    op counts: what the manifest records about the graph."""
    import onnx

    model = _model(graph)

    def describe(values) -> list[dict[str, Any]]:
        out = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
            out.append(dict(name=value.name, dtype=onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
                            shape=dims))
        return out

    return dict(inputs=describe(model.graph.input), outputs=describe(model.graph.output),
                opset=max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                op_counts=op_counts(model))
