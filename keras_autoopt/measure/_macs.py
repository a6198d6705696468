"""Static figures read from a ``.tflite`` flatbuffer: MACs per inference, operator counts.

Nothing is run: the file is parsed with the flatbuffer schema that
``tflite-micro`` ships (``tflite_micro.tensorflow.lite.micro.python.schema_py_generated``),
and shapes are the static ones stored in the file (a dynamic batch dimension
is stored as 1, so figures are per inference of one sample).

`count_macs` counts multiply-accumulates of the operators that do the bulk
of the arithmetic:

- ``CONV_2D``: ``output elements * kernel_h * kernel_w * filter input channels``;
- ``DEPTHWISE_CONV_2D``: ``output elements * kernel_h * kernel_w``;
- ``FULLY_CONNECTED``: ``output elements * input features``;
- ``TRANSPOSE_CONV``: ``input elements * kernel_h * kernel_w * output channels``;
- ``BATCH_MATMUL``: ``output elements * inner dimension``.

Every other operator counts 0: elementwise ops (``ADD``, ``MUL``, activations),
pooling, ``SOFTMAX``, reshapes, quantize / dequantize, ``CONV_3D`` and custom
ops. Bias additions are not counted. Vela's ``nn_macs`` agrees on models made
of these operators only: it also counts pooling windows (a 2x2 max pool: 4 per
output element) and the arithmetic an int8 ``SOFTMAX`` is lowered into.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = ["count_macs", "operator_counts"]

_OP_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES = {
    value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")
}


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type_name: str
    constant: bool
    scale: float
    zero_point: int

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class _Operator:
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    adj_x: bool = False


@dataclass(frozen=True)
class _Graph:
    """One subgraph: its tensors, operators (in order) and input / output tensor indices."""

    tensors: tuple[_Tensor, ...]
    operators: tuple[_Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _read_bytes(model: str | os.PathLike | bytes, argument: str = "model") -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        received = f"{argument} of {len(data)} bytes"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(
                f"Received: {argument}={str(model)!r}; expected the path of an existing "
                ".tflite file."
            )
        data = path.read_bytes()
        received = f"{argument}={str(model)!r} ({len(data)} bytes)"
    else:
        raise TypeError(
            f"Received: {argument} of type {type(model).__name__}; expected a path (str or "
            "os.PathLike) or the bytes of a .tflite model."
        )
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(
            f"Received: {received}, which is not a TFLite flatbuffer (no 'TFL3' "
            "identifier); expected a .tflite model."
        )
    return data


def _vector(table, name: str) -> tuple[int, ...]:
    if getattr(table, f"{name}IsNone")():
        return ()
    return tuple(int(v) for v in getattr(table, f"{name}AsNumpy")())


def _op_name(model, opcode_index: int) -> tuple[str, int]:
    code = model.OperatorCodes(opcode_index)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.CustomCode() or b'').decode()}", builtin
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}"), builtin


def _read_graphs(data: bytes) -> list[_Graph]:
    model = schema.Model.GetRootAs(data, 0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    graphs = []
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        tensors = []
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            buffer = buffers[tensor.Buffer()] if tensor.Buffer() < len(buffers) else None
            constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0)
            quant = tensor.Quantization()
            scales = () if quant is None or quant.ScaleIsNone() else quant.ScaleAsNumpy()
            zeros = () if quant is None or quant.ZeroPointIsNone() else quant.ZeroPointAsNumpy()
            tensors.append(
                _Tensor(
                    name=(tensor.Name() or b"").decode(),
                    shape=_vector(tensor, "Shape"),
                    type_name=_TYPE_NAMES.get(tensor.Type(), str(tensor.Type())),
                    constant=constant,
                    scale=float(scales[0]) if len(scales) == 1 else 0.0,
                    zero_point=int(zeros[0]) if len(zeros) == 1 else 0,
                )
            )
        operators = []
        for j in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(j)
            name, builtin = _op_name(model, op.OpcodeIndex())
            adj_x = False
            if builtin == schema.BuiltinOperator.BATCH_MATMUL and op.BuiltinOptions() is not None:
                options = schema.BatchMatMulOptions()
                table = op.BuiltinOptions()
                options.Init(table.Bytes, table.Pos)
                adj_x = bool(options.AdjX())
            operators.append(_Operator(name, _vector(op, "Inputs"), _vector(op, "Outputs"), adj_x))
        graphs.append(
            _Graph(
                tuple(tensors),
                tuple(operators),
                _vector(subgraph, "Inputs"),
                _vector(subgraph, "Outputs"),
            )
        )
    return graphs


def _load(model: str | os.PathLike | bytes, argument: str = "model") -> list[_Graph]:
    """Read and parse a model given as a path or bytes; every subgraph, the main one first."""
    data = _read_bytes(model, argument)
    try:
        graphs = _read_graphs(data)
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError) as error:
        graphs, problem = [], f" ({type(error).__name__}: {error})"
    else:
        problem = ""
    if not graphs or not graphs[0].operators:
        shown = (
            f"{argument}={str(model)!r}"
            if isinstance(model, (str, os.PathLike))
            else (f"{argument} of {len(data)} bytes")
        )
        raise ValueError(
            f"Received: {shown}, a damaged or empty TFLite flatbuffer{problem}; expected a "
            ".tflite model with at least one operator."
        )
    return graphs


def _op_macs(op: _Operator, tensors: tuple[_Tensor, ...]) -> int:
    def tensor(position: int) -> _Tensor | None:
        if position >= len(op.inputs) or op.inputs[position] < 0:
            return None
        return tensors[op.inputs[position]]

    output = tensors[op.outputs[0]] if op.outputs else None
    if output is None:
        return 0
    if op.name == "CONV_2D":
        kernel = tensor(1)  # (out_channels, kh, kw, in_channels / groups)
        return output.elements * int(np.prod(kernel.shape[1:])) if kernel else 0
    if op.name == "DEPTHWISE_CONV_2D":
        kernel = tensor(1)  # (1, kh, kw, out_channels)
        return output.elements * int(np.prod(kernel.shape[1:3])) if kernel else 0
    if op.name == "FULLY_CONNECTED":
        weights = tensor(1)  # (units, input features)
        return output.elements * weights.shape[-1] if weights else 0
    if op.name == "TRANSPOSE_CONV":
        kernel, source = tensor(1), tensor(2)  # kernel (out_channels, kh, kw, in_channels)
        if kernel is None or source is None:
            return 0
        return source.elements * int(np.prod(kernel.shape[:3]))
    if op.name == "BATCH_MATMUL":
        left = tensor(0)
        if left is None or len(left.shape) < 2:
            return 0
        inner = left.shape[-2] if op.adj_x else left.shape[-1]
        return output.elements * inner
    return 0


def count_macs(model: str | os.PathLike | bytes) -> int:
    """Multiply-accumulates of one inference, counted from the ``.tflite`` file.

    See the module docstring for what is counted: ``CONV_2D``,
    ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``, ``TRANSPOSE_CONV`` and
    ``BATCH_MATMUL``; every other operator counts 0. Every operator of every
    subgraph is counted once, with the static shapes stored in the file.

    Args:
        model: The path of a ``.tflite`` file, or its bytes.

    Returns:
        The number of MACs, an ``int``; the same for float32 and int8 exports
        of one model.

    Raises:
        FileNotFoundError: If ``model`` is a path that does not exist.
        TypeError: If ``model`` is neither a path nor bytes.
        ValueError: If the data is not a TFLite flatbuffer, or a damaged one.

    """
    graphs = _load(model)
    return sum(_op_macs(op, g.tensors) for g in graphs for op in g.operators)


def operator_counts(model: str | os.PathLike | bytes) -> dict[str, int]:
    """How many operators of each type the ``.tflite`` file holds, over all subgraphs.

    Args:
        model: The path of a ``.tflite`` file, or its bytes.

    Returns:
        Builtin operator name (``"CONV_2D"``, ``"FULLY_CONNECTED"``, ...; custom
        ops as ``"CUSTOM:<code>"``) -> count, most frequent first.

    Raises:
        FileNotFoundError: If ``model`` is a path that does not exist.
        TypeError: If ``model`` is neither a path nor bytes.
        ValueError: If the data is not a TFLite flatbuffer, or a damaged one.

    """
    graphs = _load(model)
    return dict(Counter(op.name for g in graphs for op in g.operators).most_common())
