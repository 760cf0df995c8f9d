"""The FP16 graph a strongly typed TensorRT build parses, checked on the CPU with ONNX Runtime.

The graph under test is the exact one handed to TensorRT 11's parser:
trt_backend.network_graph(model, fp16=True, typing="strong").

How it is run, and why: ONNX Runtime's CPU provider has FP16 kernels for data movement
(Transpose, Slice, Concat, Reshape, Cast, Shape) and Clip, but none for Conv, Pad, Relu, Add,
Sub, Mul, Sigmoid, Resize or InstanceNormalization (see test_onnxruntime_cpu_lacks_fp16_
kernels_for_the_arithmetic). For those it inserts casts to FP32 and, in a whole graph,
removes the casts between neighbours (InsertCastTransformer + RemoveDuplicateCastTransformer
in onnxruntime/core/optimizer/insert_cast_transformer.cc), so a whole-graph run keeps most
activations in FP32 and hides FP16's rounding. `Stepwise` therefore runs the graph one node
at a time: every tensor the graph types as float16 is rounded to float16 between nodes, and
each node computes in FP32 from float16 inputs, which is TensorRT's FP16 storage with FP32
accumulation. (A kernel that accumulated in FP16 would be less exact; the build's own PSNR
check on the GPU still judges the real engine.)
"""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from livestyle.backends import fp16_graph
from livestyle.backends import tensorrt as trt_backend
from livestyle.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO.parent / "shared" / "data" / "content"
PHOTOS = ["kodak_kodim23.jpg", "caltech101faces_image_0001.jpg", "coco128_000000000009.jpg",
          "wikicommons_003.jpg"]
STYLES = sorted(p.stem for p in (REPO / "engines").glob("*.onnx"))
H, W = 480, 640

_sessions: dict = {}  # one ORT session per distinct node signature, shared by every graph


class Stepwise:
    """Runs an ONNX graph node by node, each node in its own ONNX Runtime CPU session."""

    def __init__(self, model_bytes: bytes):
        model = onnx.load_from_string(model_bytes)
        self.opset = list(model.opset_import)
        graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
        self.types = {v.name: v.type.tensor_type.elem_type
                      for v in (*graph.input, *graph.output, *graph.value_info)}
        self.values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        self.outputs = [o.name for o in graph.output]

    def _session(self, node, values):
        ins, outs = list(node.input), list(node.output)
        key = (node.op_type, tuple(a.SerializeToString() for a in node.attribute),
               tuple(values[n].dtype.str if n else "" for n in ins),
               tuple(self.types[n] for n in outs if n))
        if key not in _sessions:
            in_names = [f"i{k}" if n else "" for k, n in enumerate(ins)]
            out_names = [f"o{k}" for k in range(len(outs))]
            one = helper.make_node(node.op_type, in_names, out_names)
            one.attribute.extend(node.attribute)
            graph = helper.make_graph(
                [one], "one",
                [helper.make_tensor_value_info(a, helper.np_dtype_to_tensor_dtype(
                    values[n].dtype), None) for a, n in zip(in_names, ins) if n],
                [helper.make_tensor_value_info(a, self.types[n], None)
                 for a, n in zip(out_names, outs)])
            model = helper.make_model(graph, opset_imports=self.opset, ir_version=8)
            _sessions[key] = ort.InferenceSession(model.SerializeToString(),
                                                  providers=["CPUExecutionProvider"])
        return _sessions[key]

    def run(self, feeds: dict) -> list[np.ndarray]:
        values = {**self.values, **feeds}
        for node in self.nodes:
            if node.op_type == "Constant":
                values[node.output[0]] = numpy_helper.to_array(
                    next(a.t for a in node.attribute if a.name == "value"))
                continue
            session = self._session(node, values)
            results = session.run(None, {f"i{k}": values[n]
                                         for k, n in enumerate(node.input) if n})
            values.update(zip(node.output, results))
        return [values[name] for name in self.outputs]


def photo(name: str) -> np.ndarray:
    """A content photo, centre-cropped to 4:3 and resized to 640x480."""
    path = CONTENT / name
    if not path.is_file():
        pytest.skip(f"shared content photo not available: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    ch, cw = min(h, w * 3 // 4), min(w, h * 4 // 3)
    y, x = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(img[y:y + ch, x:x + cw], (W, H), interpolation=cv2.INTER_AREA)


def tensorrt_graph(style: str) -> tuple[bytes, bytes]:
    """(the exported FP32 model, the exact graph a strongly typed FP16 build parses)."""
    original = (REPO / "engines" / f"{style}.onnx").read_bytes()
    return original, trt_backend.network_graph(original, fp16=True, typing="strong")


def typed(model_bytes: bytes) -> tuple[onnx.GraphProto, dict[str, int]]:
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(model_bytes),
                                              strict_mode=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    return g, types


@pytest.mark.parametrize("style", ["starry-night", "cartoon", "sketch"])
def test_convolutions_run_in_fp16_and_instance_norm_in_fp32(style):
    original, half = tensorrt_graph(style)
    g, types = typed(half)
    assert [types[i.name] for i in g.input] == [TensorProto.UINT8]
    assert [types[o.name] for o in g.output] == [TensorProto.UINT8]
    nodes = collections.Counter(n.op_type for n in g.node)
    convs = [n for n in g.node if n.op_type == "Conv"]
    norms = [n for n in g.node if n.op_type == "InstanceNormalization"]
    original_ops = collections.Counter(n.op_type for n in onnx.load_from_string(original).graph.node)
    assert convs and len(convs) == original_ops["Conv"]
    for n in convs:  # input, weights, bias and output all float16
        assert {types[x] for x in (*n.input, *n.output) if x} == {TensorProto.FLOAT16}, n.name
    for n in norms:  # input, scale, bias and output all float32
        assert {types[x] for x in (*n.input, *n.output) if x} == {TensorProto.FLOAT}, n.name
    # the only casts added: the input's (to float16) and one pair around each norm
    assert nodes["Cast"] == original_ops["Cast"] + 1 + 2 * len(norms)
    first = g.node[0] if g.node[0].op_type != "Constant" else next(
        n for n in g.node if n.op_type != "Constant")
    assert first.op_type == "Cast" and list(first.input) == [trt_backend.INPUT]
    assert first.attribute[0].i == TensorProto.FLOAT16  # uint8 -> float16 at the edge
    # the float computation is float16 everywhere else
    floats = {types[x] for n in g.node if n.op_type not in ("InstanceNormalization", "Cast")
              for x in (*n.input, *n.output)
              if x and types.get(x) in (TensorProto.FLOAT, TensorProto.FLOAT16)}
    resize_scales = {types[n.input[2]] for n in g.node if n.op_type == "Resize"}
    assert floats - resize_scales == {TensorProto.FLOAT16}
    assert resize_scales <= {TensorProto.FLOAT}  # fixed float32 by the Resize schema


def test_nodes_get_the_precision_the_rules_say():
    model = onnx.load_from_string(trt_backend._cast_input_first(
        (REPO / "engines" / "starry-night.onnx").read_bytes()))
    plan = dict(collections.Counter(zip((n.op_type for n in model.graph.node),
                                        fp16_graph.precision_of_nodes(model))))
    assert plan[("Conv", "fp16")] == 12 and ("Conv", "fp32") not in plan
    assert plan[("InstanceNormalization", "fp32")] == 11
    assert ("Shape", "-") in plan and ("Constant", "-") in plan


def test_float_graph_io_and_constants_beyond_fp16_are_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    float_io = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                   "g", [x], [y]))
    with pytest.raises(ValueError, match="graph input/output 'x' is float32"):
        fp16_graph.to_fp16(float_io.SerializeToString())
    xi = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3])
    yi = helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 3])
    big = numpy_helper.from_array(np.array([1e6], np.float32), "big")
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xf", "big"], ["m"]),
             helper.make_node("Cast", ["m"], ["y"], to=TensorProto.UINT8)]
    overflow = helper.make_model(helper.make_graph(nodes, "g", [xi], [yi], [big]))
    with pytest.raises(ValueError, match="'big' overflows float16"):
        fp16_graph.to_fp16(overflow.SerializeToString())


def test_onnxruntime_cpu_lacks_fp16_kernels_for_the_arithmetic(tmp_path):
    """Why the PSNR test runs node by node: which ops ONNX Runtime's CPU provider runs in
    FP16 (no Cast inserted around them) and which it quietly runs in FP32."""
    cases = {
        "Conv": ([("x", 4)], {"kernel_shape": [3, 3]}, [np.zeros((2, 3, 3, 3), np.float16)]),
        "Relu": ([("x", 4)], {}, []),
        "Add": ([("x", 4), ("b", 4)], {}, []),
        "Pad": ([("x", 4)], {"mode": "reflect"}, [np.array([0, 0, 1, 1, 0, 0, 1, 1])]),
        "InstanceNormalization": ([("x", 4)], {}, [np.ones(3, np.float16),
                                                    np.zeros(3, np.float16)]),
        "Transpose": ([("x", 4)], {"perm": [0, 2, 3, 1]}, []),
        "Clip": ([("x", 4), ("lo", 0), ("hi", 0)], {}, []),
    }
    native = {}
    for op, (inputs, attrs, consts) in cases.items():
        inits = [numpy_helper.from_array(c, f"c{i}") for i, c in enumerate(consts)]
        node = helper.make_node(op, [n for n, _ in inputs] + [t.name for t in inits], ["y"],
                                **attrs)
        graph = helper.make_graph(
            [node], "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [None] * r if r else [])
             for n, r in inputs],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  ir_version=8)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = str(tmp_path / f"{op}.onnx")
        ort.InferenceSession(model.SerializeToString(), options,
                             providers=["CPUExecutionProvider"])
        ran = onnx.load(str(tmp_path / f"{op}.onnx"))
        native[op] = not any(n.op_type == "Cast" for n in ran.graph.node)
    # if this changes (a newer ONNX Runtime), the whole-graph run may become a fair check
    assert native == {"Conv": False, "Relu": False, "Add": False, "Pad": False,
                      "InstanceNormalization": False, "Transpose": True, "Clip": True}


def test_stepwise_rounds_to_fp16_where_a_whole_graph_run_does_not():
    original, half = tensorrt_graph("starry-night")
    frame = photo(PHOTOS[0])[None]
    whole = ort.InferenceSession(half, providers=["CPUExecutionProvider"]).run(None, {
        trt_backend.INPUT: frame})[0]
    stepped = Stepwise(half).run({trt_backend.INPUT: frame})[0]
    fp32 = ort.InferenceSession(original, providers=["CPUExecutionProvider"]).run(None, {
        trt_backend.INPUT: frame})[0]
    assert not np.array_equal(whole, stepped)
    assert psnr(stepped[0], fp32[0]) < psnr(whole[0], fp32[0])  # the stricter of the two


@pytest.mark.parametrize("style", STYLES)
def test_fp16_graph_of_every_bundled_style_stays_within_min_psnr_on_photos(style):
    original, half = tensorrt_graph(style)
    reference = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    stepwise = Stepwise(half)
    scores = []
    for name in PHOTOS:
        frame = photo(name)
        want = reference.run(None, {trt_backend.INPUT: frame[None]})[0][0]
        got = stepwise.run({trt_backend.INPUT: frame[None]})[0][0]
        assert got.shape == want.shape == (H, W, 3) and got.dtype == np.uint8
        scores.append(psnr(got, want))
    worst = min(scores)
    print(f"{style}: FP16 graph vs ONNX Runtime FP32, PSNR "
          + ", ".join(f"{s:.1f}" for s in scores) + " dB")
    assert worst >= trt_backend.MIN_PSNR, f"{style}: {worst:.1f} dB < {trt_backend.MIN_PSNR}"
