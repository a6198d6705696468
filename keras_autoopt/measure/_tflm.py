"""Running ``.tflite`` models under TensorFlow Lite for Microcontrollers (TFLM).

`run_tflm` runs a model with the ``tflite-micro`` Python interpreter in a
child process (``_tflm_worker.py``, started with ``sys.executable``): TFLM is
C++ that may abort on a model it cannot handle, and a crash there must fail
one measurement, not the search that asked for it. Each call therefore pays
for starting Python and importing NumPy and ``tflite_micro`` (a few tenths of
a second) on top of the inferences.

The arena figure is what TFLM's ``RecordingMicroAllocator`` reports after the
last invoke (``Arena allocation total N bytes``): the bytes of the tensor
arena a microcontroller build needs for this model (activations planned by
the memory planner, plus TFLM's persistent structures: tensor and node
structs, quantization data, kernel scratch buffers). Weights are not in it:
they stay in the flatbuffer (flash).

`check_tflm` runs the same inputs under LiteRT (`TFLiteRunner`) and TFLM and
says whether TFLM gives the same outputs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_autoopt._checks import check_positive_float, check_positive_int
from keras_autoopt.measure._litert import TFLiteRunner, _dequantize, _quantize, top1_labels
from keras_autoopt.measure._macs import _Graph, _load, _Tensor

__all__ = ["TFLMCheck", "TFLMError", "TFLMRun", "check_tflm", "run_tflm"]

DEFAULT_ARENA_SIZE = 1 << 24
"""Bytes of arena TFLM may use on the host (16 MiB); the reported figure is what it used."""

_WORKER = Path(__file__).with_name("_tflm_worker.py")
_ARENA_LINE = re.compile(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes")
_DTYPES = {
    "FLOAT32": "float32",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "FLOAT16": "float16",
}
_WEIGHTED_OPS = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "TRANSPOSE_CONV",
    "BATCH_MATMUL",
    "CONV_3D",
    "SVDF",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
}
HYBRID_REASON = "Hybrid models are not supported on TFLite Micro"


class TFLMError(RuntimeError):
    """TFLite Micro could not run a model.

    Attributes:
        path: The ``.tflite`` file.
        reason: TFLM's own messages (or how the child process ended).

    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"TFLite Micro cannot run {str(path)!r}: {reason}")


@dataclass(frozen=True)
class TFLMRun:
    """The result of `run_tflm`.

    Attributes:
        arena_bytes: The tensor arena TFLM's ``RecordingMicroAllocator``
            reported after the last invoke, in bytes.
        outputs: The outputs, one row per sample, dequantized to float32 when
            the output tensor is quantized (as `TFLiteRunner` returns them).
        raw_outputs: The same outputs in the model's output type (int8 for a
            full-integer export).
        wall_time_s: Host seconds spent in the TFLM invokes, all samples
            together (the child process's start-up is not included).

    """

    arena_bytes: int
    outputs: np.ndarray
    raw_outputs: np.ndarray
    wall_time_s: float


@dataclass(frozen=True)
class TFLMCheck:
    """The result of `check_tflm`.

    Attributes:
        compatible: True when TFLM ran the model and every output is within
            tolerance of LiteRT's: ``max_steps`` quantization steps of the
            output tensor for quantized outputs (see `check_tflm`);
            ``1e-4 * max(1, max |LiteRT output|)`` for float outputs.
        arena_bytes: TFLM's arena in bytes, or None when it did not run.
        max_abs_diff: The largest absolute difference of the (dequantized)
            outputs, or None when TFLM did not run.
        top1_agreement: The share of samples whose top-1 class agrees, or None
            when TFLM did not run. Reported, not part of ``compatible``: outputs
            one step apart may swap a tie.
        reason: Why the model is not compatible, None when it is.

    """

    compatible: bool
    arena_bytes: int | None
    max_abs_diff: float | None
    top1_agreement: float | None
    reason: str | None


def _detail(tensor: _Tensor) -> dict:
    """A LiteRT-style detail (dtype, quantization) for `_quantize` / `_dequantize`."""
    return {
        "dtype": np.dtype(_DTYPES.get(tensor.type_name, "float32")),
        "quantization": (tensor.scale, tensor.zero_point),
    }


def _is_hybrid(graph: _Graph) -> bool:
    """Float activations fed to an operator with int8 weights: a dynamic-range export."""
    for op in graph.operators:
        if op.name in _WEIGHTED_OPS and len(op.inputs) > 1 and min(op.inputs[:2]) >= 0:
            source, weights = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            if source.type_name == "FLOAT32" and weights.type_name == "INT8":
                return True
    return False


def _main_graph(path: Path) -> _Graph:
    graph = _load(path, "path")[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(
            f"Received: path={str(path)!r} with {len(graph.inputs)} inputs and "
            f"{len(graph.outputs)} outputs; expected a model with one input and one output."
        )
    return graph


def _diagnostics(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines()]
    said = " ".join(line for line in lines if line and "[RecordingMicroAllocator]" not in line)
    return said if len(said) <= 2000 else "... " + said[-2000:]


def run_tflm(
    path: str | os.PathLike,
    inputs: np.ndarray,
    *,
    arena_size: int = DEFAULT_ARENA_SIZE,
    timeout: float = 600.0,
) -> TFLMRun:
    """Run every sample of ``inputs`` through a model under TFLite Micro.

    TFLM runs in a child process, one invoke per sample (TFLM models have a
    fixed batch of 1). Real-valued ``inputs`` are quantized with the input
    tensor's scale and zero point when it is quantized, exactly as
    `TFLiteRunner` does.

    Args:
        path: The ``.tflite`` file, with one input and one output.
        inputs: Samples of shape ``(n, *input_shape)``; ``n`` may be 0 (then
            only the arena is measured).
        arena_size: The arena TFLM may use on the host, in bytes; a model
            needing more fails with TFLM's "Failed to resize buffer" reason.
        timeout: Seconds before the child process is stopped.

    Returns:
        A `TFLMRun`: the arena TFLM used, the outputs and the invoke time.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a TFLite model, does not have one input
            and one output or a batch of 1, ``inputs`` has the wrong shape, or
            ``arena_size`` or ``timeout`` is not positive.
        TFLMError: If TFLM cannot run the model (unsupported operator, hybrid
            model, arena too small, a crash or a timeout of the runtime); the
            message names the file and gives TFLM's reason.

    """
    arena_size = check_positive_int("arena_size", arena_size)
    timeout = check_positive_float("timeout", timeout)
    path = Path(path)
    graph = _main_graph(path)
    source, target = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    x = np.asarray(inputs)
    expected = tuple(source.shape[1:])
    if source.shape[:1] != (1,):
        raise ValueError(
            f"Received: path={str(path)!r} with input shape {source.shape}; expected a "
            "batch of 1 (export with a fixed batch size of 1 for TFLite Micro)."
        )
    if x.ndim != len(source.shape) or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"Received: inputs with shape {x.shape}; expected shape (n, "
            f"{', '.join(str(d) for d in expected)}) for this model's input {source.name!r}."
        )
    with tempfile.TemporaryDirectory(prefix="keras_autoopt_tflm_") as folder:
        np.savez(
            Path(folder) / "request.npz",
            model=str(path.resolve()),
            inputs=_quantize(x, _detail(source)),
            arena_size=arena_size,
        )
        try:
            done = subprocess.run(
                [sys.executable, str(_WORKER), folder],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise TFLMError(path, f"TFLM did not finish within timeout={timeout} s.") from error
        result_file = Path(folder) / "result.json"
        said = _diagnostics(done.stderr)
        if done.returncode != 0 or not result_file.is_file():
            raise TFLMError(
                path,
                f"the TFLM process ended with exit code {done.returncode}"
                + (f"; TFLM said: {said}" if said else "."),
            )
        result = json.loads(result_file.read_text())
        if "error" in result:
            reason = result["error"] + (f"; TFLM said: {said}" if said else "")
            if _is_hybrid(graph) and HYBRID_REASON not in reason:
                reason = (
                    f"{HYBRID_REASON} (float activations with int8 weights: a "
                    f"dynamic-range export). {reason}"
                )
            raise TFLMError(path, reason)
        raw = np.load(Path(folder) / "result.npz")["outputs"]
    arenas = _ARENA_LINE.findall(done.stderr)
    if not arenas:
        raise TFLMError(
            path,
            "TFLM did not report its arena (no RecordingMicroAllocator "
            f"line on stderr); TFLM said: {said or 'nothing'}",
        )
    return TFLMRun(
        arena_bytes=int(arenas[-1]),
        outputs=_dequantize(raw, _detail(target)),
        raw_outputs=raw,
        wall_time_s=float(result["wall_time_s"]),
    )


def check_tflm(
    path: str | os.PathLike,
    x: np.ndarray,
    *,
    max_steps: int = 8,
    arena_size: int = DEFAULT_ARENA_SIZE,
    timeout: float = 600.0,
) -> TFLMCheck:
    """Whether TFLite Micro runs a model and gives LiteRT's outputs on ``x``.

    Args:
        path: The ``.tflite`` file, with one input and one output and a batch
            of 1.
        x: Real-valued samples of shape ``(n, *input_shape)``, n >= 1.
        max_steps: How many quantization steps of the output tensor a
            quantized output may differ by. TFLM's reference int8 kernels
            round differently from LiteRT's optimized ones, and the
            differences add up along the graph: measured up to 2 steps on
            small classifiers through softmax, 3 with ELU and 5 with sigmoid
            (LOGISTIC) activations (5 of 2,000 outputs; top-1 labels all the
            same). The default, 8 (3 % of the int8 range), allows for that; a
            wrong kernel is off by far more.
        arena_size: Passed to `run_tflm`.
        timeout: Passed to `run_tflm`.

    Returns:
        A `TFLMCheck`. A model TFLM cannot run is reported (``compatible=False``
        with TFLM's reason), not raised.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If LiteRT cannot load the model, ``x`` is empty or has the
            wrong shape, the model does not have one input and one output, or
            ``max_steps`` is not an integer >= 0.

    """
    max_steps = check_positive_int("max_steps", max_steps, minimum=0)
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"Received: x with shape {x.shape}; expected at least one sample.")
    expected = TFLiteRunner(path).predict(x)
    try:
        run = run_tflm(path, x, arena_size=arena_size, timeout=timeout)
    except TFLMError as error:
        return TFLMCheck(False, None, None, None, error.reason)
    graph = _main_graph(Path(path))
    target = graph.tensors[graph.outputs[0]]
    got = run.outputs.reshape(expected.shape)
    diff = float(np.max(np.abs(got.astype("float64") - expected))) if got.size else 0.0
    if _detail(target)["dtype"].kind in "iu" and target.scale:
        tolerance = target.scale * (max_steps + 1e-3)
        unit = f"max_steps={max_steps} quantization steps"
    else:
        tolerance = 1e-4 * max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
        unit = "1e-4 relative"
    agreement = float(np.mean(top1_labels(got) == top1_labels(expected)))
    compatible = diff <= tolerance
    reason = (
        None
        if compatible
        else (
            f"TFLM's outputs differ from LiteRT's by up to {diff:.6g}, more than {unit} "
            f"({tolerance:.6g})."
        )
    )
    return TFLMCheck(compatible, run.arena_bytes, diff, agreement, reason)
