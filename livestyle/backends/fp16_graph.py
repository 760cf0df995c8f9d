"""The FP16 ONNX graph for a strongly typed TensorRT build: FP16 convolutions, FP32 norms.

TensorRT 11 builds only strongly typed networks: every tensor has the type the graph gives it,
and the builder flags that let TensorRT 10 pick FP16 kernels on its own (BuilderFlag.FP16,
per-layer precision) are gone. So the precision has to be written into the ONNX graph itself,
which is what `to_fp16` does to one of our exported generators:

- every float tensor becomes float16 (weights, biases and constants included), so the
  convolutions and the cheap elementwise layers around them (Relu, Add, Mul, Pad, Resize,
  Slice, Transpose, Clip, Sigmoid) run in FP16;
- InstanceNormalization keeps FP32, with a Cast to float32 before it and one back to float16
  after it, because it sums x and x^2 over whole feature maps (up to 960x960 values at the
  profile's largest frame): in FP16 those sums lose their low bits or overflow;
- any op not known to be safe in FP16 (see HALF_OPS) keeps FP32 the same way, casts around it;
- inputs that an op's schema fixes to float32 (Resize's `scales`) stay float32;
- the graph's inputs and outputs keep their types (uint8 in, uint8 out for livestyle's models).

Nothing here depends on TensorRT: the result is an ordinary ONNX model, and ONNX Runtime runs
it on the CPU, which is how the tests check it (PSNR against the FP32 graph on photos).
"""

from __future__ import annotations

import numpy as np

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT / FLOAT16, spelled out to keep onnx lazy

# Ops that compute in FP16 here. Each one's float inputs and outputs share one type parameter
# in the ONNX schema, so switching them all to float16 keeps the graph valid.
HALF_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Min",
    "Max", "Conv", "ConvTranspose", "Pad", "Resize", "Upsample", "Slice", "Transpose",
    "Reshape", "Concat", "Split", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Gather",
    "Expand", "Tile", "MaxPool", "AveragePool", "DepthToSpace", "SpaceToDepth", "Cast",
})
# Ops kept in FP32 even though they could take FP16 (see the module docstring).
KEEP_FP32 = frozenset({"InstanceNormalization"})
# Ops that read only the shape or convert: their float input may be of any float type.
ANY_INPUT = frozenset({"Shape", "Size", "Cast"})

__all__ = ["FLOAT", "FLOAT16", "HALF_OPS", "KEEP_FP32", "precision_of_nodes", "to_fp16"]


def _tensor_types(model) -> dict[str, int]:
    """Element type of every named tensor: inputs, initializers, constants, intermediates."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*g.input, *g.output, *g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    return types


def _formal(params, i: int):
    """The schema parameter that input/output slot i binds to (variadic last ones repeat)."""
    from onnx.defs import OpSchema

    if i < len(params):
        return params[i]
    last = params[-1]
    if last.option == OpSchema.FormalParameterOption.Variadic:
        return last
    raise ValueError(f"slot {i} beyond the schema's {len(params)} parameters")


def _follows_node_type(node, schema, i: int, inputs: bool) -> bool:
    """Whether slot i takes a type parameter that allows float16 (so it follows the node's
    precision), as opposed to a fixed type such as Resize's tensor(float) `scales`."""
    param = _formal(schema.inputs if inputs else schema.outputs, i)
    constraints = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
    allowed = constraints.get(param.type_str)
    return allowed is not None and "tensor(float16)" in allowed


def precision_of_nodes(model, types: dict | None = None) -> list[str]:
    """For each node of `model` (an onnx.ModelProto), "fp16", "fp32" or "-" (touches no
    float tensor), as `to_fp16` will convert it. Exposed for tests and diagnostics; `types`
    is the model's _tensor_types when the caller has it already."""
    types = _tensor_types(model) if types is None else types
    out = []
    for node in model.graph.node:
        floats = [n for n in (*node.input, *node.output) if n and types.get(n) == FLOAT]
        if not floats or node.op_type == "Constant":
            out.append("-")
        elif node.op_type in HALF_OPS and node.op_type not in KEEP_FP32:
            out.append("fp16")
        elif node.op_type in ANY_INPUT:
            out.append("-")
        else:
            out.append("fp32")
    return out


def to_fp16(model_bytes: bytes) -> bytes:
    """The serialized ONNX model with its float computation in FP16 except KEEP_FP32 ops.

    Raises ValueError for a model it cannot convert faithfully (a float graph input or output,
    a node in a subgraph, an op without a schema): livestyle's exported generators have none.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    opset = {o.domain: o.version for o in model.opset_import}
    types = _tensor_types(model)
    plan = precision_of_nodes(model, types)
    for v in (*graph.input, *graph.output):
        if v.type.tensor_type.elem_type == FLOAT:
            raise ValueError(f"graph input/output {v.name!r} is float32; to_fp16 keeps graph "
                             "I/O types and handles only non-float I/O (livestyle uses uint8)")

    initializers = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    native: dict[str, int] = {}  # float tensor -> the type it has in the new graph
    converted: dict[tuple[str, int], str] = {}  # (tensor, type) -> name of that version
    new_nodes, new_inits = [], []

    def const_as(name: str, to: int) -> str:
        """A converted copy of a float initializer or Constant, stored as an initializer."""
        if to == FLOAT:
            return name
        key = (name, to)
        if key not in converted:
            src = initializers.get(name)
            value = (numpy_helper.to_array(src) if src is not None else
                     numpy_helper.to_array(next(a.t for a in constants[name].attribute
                                                if a.name == "value")))
            with np.errstate(over="ignore"):  # checked right below
                half = value.astype(np.float16)
            if (np.isinf(half) & ~np.isinf(value)).any():
                raise ValueError(f"constant {name!r} overflows float16 (|x| > 65504)")
            new_name = f"{name}__fp16"
            new_inits.append(numpy_helper.from_array(half, new_name))
            converted[key] = new_name
        return converted[key]

    def version(name: str, to: int) -> str:
        """`name` as a tensor of type `to`, casting (once per tensor and type) if needed."""
        if name in initializers or name in constants:
            return const_as(name, to)
        have = native.get(name, FLOAT)
        if have == to:
            return name
        key = (name, to)
        if key not in converted:
            cast_out = f"{name}__as_{'fp16' if to == FLOAT16 else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [cast_out], to=to,
                                              name=f"livestyle_fp16_cast_{len(converted)}"))
            converted[key] = cast_out
        return converted[key]

    for node, prec in zip(graph.node, plan):
        if node.op_type == "Constant":
            continue  # kept (below) only if some FP32 consumer still reads it
        if node.domain not in ("", "ai.onnx") or any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                for a in node.attribute):
            raise ValueError(f"node {node.name or node.op_type} ({node.op_type}) has a "
                             "subgraph or a custom domain; to_fp16 does not convert those")
        schema = onnx.defs.get_schema(node.op_type, opset.get("", 17), "")
        want = FLOAT16 if prec == "fp16" else FLOAT
        for i, name in enumerate(node.input):
            if not name or types.get(name) != FLOAT:
                continue
            if node.op_type in ANY_INPUT:
                continue  # Shape/Cast read whatever float type the tensor now has
            follows = _follows_node_type(node, schema, i, inputs=True)
            node.input[i] = version(name, want if follows else FLOAT)
        for i, name in enumerate(node.output):
            if not name:
                continue
            if node.op_type == "Cast":
                to = next(a for a in node.attribute if a.name == "to")
                if to.i == FLOAT and prec == "fp16":
                    to.i = FLOAT16
                if to.i in (FLOAT, FLOAT16):
                    native[name] = to.i
            elif types.get(name) == FLOAT:
                follows = _follows_node_type(node, schema, i, inputs=False)
                native[name] = want if follows else FLOAT
        new_nodes.append(node)

    # Constants still read as float32 (shape inputs, Resize scales, FP32 ops) stay as nodes
    used = {n for node in new_nodes for n in node.input}
    kept_constants = [c for name, c in constants.items() if name in used]
    del graph.node[:]
    graph.node.extend(kept_constants + new_nodes)
    graph.initializer.extend(new_inits)
    still_used = used | {o.name for o in graph.output}
    for t in list(graph.initializer):
        if t.name not in still_used:
            graph.initializer.remove(t)
    del graph.value_info[:]  # stale float32 annotations; the checker re-infers them
    model.producer_name = f"{model.producer_name}+livestyle.fp16_graph"
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
