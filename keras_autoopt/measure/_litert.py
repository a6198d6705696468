"""Running ``.tflite`` models under LiteRT: one runner for export checks and measurement.

`TFLiteRunner` wraps ``ai_edge_litert.interpreter.Interpreter`` (the
``tf.lite.Interpreter`` is deprecated). It takes real-valued inputs and gives
real-valued outputs whatever the model's input and output types are: for a
quantized (int8/uint8/int16) input tensor the data is quantized with that
tensor's scale and zero point, and quantized outputs are dequantized.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from keras_autoopt._checks import check_positive_int

__all__ = ["TFLiteRunner", "top1_labels"]


def top1_labels(outputs: np.ndarray) -> np.ndarray:
    """Top-1 class of each row of classifier outputs.

    Args:
        outputs: Scores of shape ``(n, classes)``. A single score per sample
            (shape ``(n,)`` or ``(n, 1)``) is read as the probability of class 1
            of a sigmoid classifier, thresholded at 0.5.

    Returns:
        The class indices, shape ``(n,)``, dtype int64.

    Raises:
        ValueError: If ``outputs`` has no sample axis.

    """
    outputs = np.asarray(outputs)
    if outputs.ndim == 0:
        raise ValueError(
            f"Received: outputs with shape {outputs.shape}; expected a score array of "
            "shape (n, classes)."
        )
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        return (outputs.reshape(len(outputs)) > 0.5).astype("int64")
    return np.argmax(outputs.reshape(len(outputs), -1), axis=1).astype("int64")


def _is_quantized(detail: dict) -> bool:
    scale, _ = detail["quantization"]
    return np.issubdtype(detail["dtype"], np.integer) and scale != 0.0


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if not _is_quantized(detail):
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(x.astype("float64") / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    if not _is_quantized(detail):
        return q.astype("float32", copy=False)
    scale, zero_point = detail["quantization"]
    return ((q.astype("float32") - zero_point) * scale).astype("float32")


class TFLiteRunner:
    """A ``.tflite`` model loaded in the LiteRT interpreter.

    Inputs given to `predict` and `set_input` are real values (what the Keras
    model takes); when the model's input tensor is quantized they are
    quantized with its scale and zero point (rounded, clipped to the integer
    range). Outputs are dequantized to float32.

    Args:
        model: The path of a ``.tflite`` file, or its bytes.
        num_threads: CPU threads the interpreter may use; 1 gives the most
            stable latencies.

    Raises:
        FileNotFoundError: If ``model`` is a path that does not exist.
        TypeError: If ``model`` is neither a path nor bytes.
        ValueError: If ``num_threads`` is not an integer >= 1, or the file or
            bytes are empty or not a model LiteRT can load.

    """

    def __init__(self, model: str | os.PathLike | bytes, *, num_threads: int = 1):
        self.num_threads = check_positive_int("num_threads", num_threads)
        if isinstance(model, (bytes, bytearray, memoryview)):
            self.path = None
            source = {"model_content": bytes(model)}
            size = len(source["model_content"])
            received = f"model of {size} bytes"
        elif isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(
                    f"Received: model={str(model)!r}; expected the path of an existing "
                    ".tflite file."
                )
            self.path = path
            source = {"model_path": str(path)}
            size = path.stat().st_size
            received = f"model={str(model)!r} ({size} bytes)"
        else:
            raise TypeError(
                f"Received: model of type {type(model).__name__}; expected a path (str or "
                "os.PathLike) or the bytes of a .tflite model."
            )
        if not size:  # LiteRT would say that no model was given at all
            raise ValueError(f"Received: {received}; expected a .tflite model, not an empty one.")
        try:
            self._interpreter = Interpreter(**source, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"Received: {received}, which LiteRT cannot load ({error}); expected a "
                ".tflite model."
            ) from error

    @property
    def interpreter(self) -> Interpreter:
        """The underlying LiteRT interpreter."""
        return self._interpreter

    @property
    def input_details(self) -> list[dict]:
        """The interpreter's input details (name, index, shape, dtype, quantization, ...)."""
        return self._interpreter.get_input_details()

    @property
    def output_details(self) -> list[dict]:
        """The interpreter's output details (name, index, shape, dtype, quantization, ...)."""
        return self._interpreter.get_output_details()

    def _single_io(self) -> tuple[dict, dict]:
        inputs, outputs = self.input_details, self.output_details
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"This model has {len(inputs)} inputs and {len(outputs)} outputs; "
                "TFLiteRunner.predict expects exactly one of each. Use "
                "TFLiteRunner.interpreter directly for other models."
            )
        return inputs[0], outputs[0]

    def _check_shape(self, x: np.ndarray, detail: dict) -> None:
        signature = detail.get("shape_signature", detail["shape"])
        expected = tuple(None if d < 0 else int(d) for d in signature[1:])
        got = tuple(x.shape[1:])
        if len(got) != len(expected) or any(
            e is not None and e != g for e, g in zip(expected, got, strict=False)
        ):
            shown = tuple("?" if e is None else e for e in expected)
            raise ValueError(
                f"Received: x with shape {x.shape}; expected shape (n, "
                f"{', '.join(str(d) for d in shown)}) for this model's input "
                f"{detail['name']!r}."
            )

    def set_input(self, x: np.ndarray) -> None:
        """Quantize if needed and copy one batch into the input tensor.

        The input tensor is resized when the batch's shape differs from its
        current shape.

        Args:
            x: One batch of real-valued inputs, batch axis first.

        Raises:
            ValueError: If the model does not have exactly one input and one
                output, if ``x`` has the wrong shape, or if the model cannot be
                resized to this batch size.

        """
        detail, _ = self._single_io()
        x = np.asarray(x)
        self._check_shape(x, detail)
        if tuple(detail["shape"]) != x.shape:
            try:
                self._interpreter.resize_tensor_input(detail["index"], list(x.shape))
                self._interpreter.allocate_tensors()
            except (RuntimeError, ValueError) as error:
                raise ValueError(
                    f"This model cannot be resized to a batch of shape {x.shape} ({error}); "
                    "use batch_size=1."
                ) from error
        self._interpreter.set_tensor(detail["index"], _quantize(x, detail))

    def invoke(self) -> None:
        """Run the model once on the current input."""
        self._interpreter.invoke()

    def get_output(self) -> np.ndarray:
        """Return the (dequantized, float32) output of the last `invoke`.

        Returns:
            The output tensor as float32.

        """
        _, detail = self._single_io()
        return _dequantize(self._interpreter.get_tensor(detail["index"]), detail)

    def predict(self, x: np.ndarray, batch_size: int = 1) -> np.ndarray:
        """Run the model on every sample of ``x``.

        Args:
            x: Real-valued inputs, shape ``(n, *input_shape)``.
            batch_size: Samples per ``invoke()``. The default, 1, works for
                every model; larger batches resize the input tensor, which
                models converted with a fixed batch size may refuse.

        Returns:
            The float32 outputs, shape ``(n, *output_shape)``.

        Raises:
            ValueError: If ``batch_size`` is not an integer >= 1, if ``x`` has
                the wrong shape, or if the model does not have exactly one
                input and one output.

        """
        batch_size = check_positive_int("batch_size", batch_size)
        in_detail, out_detail = self._single_io()
        x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError(f"Received: x with shape {x.shape}; expected a batch of samples.")
        self._check_shape(x, in_detail)
        if len(x) == 0:
            return np.zeros((0, *out_detail["shape"][1:]), dtype="float32")
        outputs = []
        for start in range(0, len(x), batch_size):
            self.set_input(x[start : start + batch_size])
            self.invoke()
            outputs.append(self.get_output())
        return np.concatenate(outputs, axis=0)
