"""What a built, untrained model will cost on a device: MACs exactly, flash and RAM from below.

A trial's model is built before it is trained, so a budget it cannot meet is
found before any training: `estimate_model` reads the layers' shapes and
weights only. MACs are exact (the multiply-accumulates of the Conv / Dense
layers, which is what TFLite's and Vela's counts hold); flash and RAM are
**lower bounds** on what the exported ``.tflite`` needs, so rejecting a model
on them never rejects one that could fit:

- flash: the bytes of the weights the export keeps (kernels in the export
  mode's width; biases and the biases a folded batch norm creates, 4 bytes
  each in int8 / float32, 2 in float16; other weights in the mode's width)
  plus `TFLITE_FLOOR_BYTES`. Batch-norm statistics
  are folded away by the converter and are not counted;
- RAM: the largest input(s) + output of one operator at batch 1, in the
  activation width (1 byte in int8, 4 in float): the interpreter must hold
  both while the operator runs. Layers the converter removes or fuses
  (Dropout, Flatten, Reshape, batch norms, activation layers, InputLayer) are
  skipped.

These bounds are instant but loose on small models: a TFLite file carries per
tensor and per operator data beyond the weights (names, quantization
parameters, the graph), and TFLite Micro's arena holds its tensor, node and
kernel structures beside the activations (on 32 search-space models the
bounds were 0.75x the file and 0.09x the arena on median). When a budget is
close, `measure_before_training` converts the untrained model for its target
and reads the exact figures (about 0.6 s for the conversion, 0.2 s for
TFLite Micro): the file's layout and the arena follow from the layers and
their shapes, not from the weights' values.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt.search._constraints import TFLITE_FLOOR_BYTES
from keras_autoopt.targets import Target, get_target

#: Export mode -> bytes per kernel weight (dynamic: int8 for tensors of 1,024+ elements).
_WEIGHT_BYTES = {"float32": 4, "float16": 2, "dynamic": 1, "int8": 1}
#: Export mode -> bytes per activation element.
_ACTIVATION_BYTES = {"float32": 4, "float16": 4, "dynamic": 4, "int8": 1}
_DYNAMIC_MIN_ELEMENTS = 1024
_NO_OP_LAYERS = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                 "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                 "Flatten", "Reshape", "BatchNormalization")
# Activation layers are left out of the RAM bound: the converter fuses relu / relu6 into
# the Conv / Dense before them (no operator of their own; counted as one, a ConvNet's bound
# exceeded its measured TFLite Micro arena by 4 %), and the others hold a tensor the size of
# their input, which the operator before them already held.
_ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU",
                      "Softmax")


@dataclass(frozen=True)
class ModelEstimate:
    """`estimate_model`'s figures for one export mode.

    Attributes:
        mode: The export mode they are for.
        params: Keras parameter count.
        macs: Multiply-accumulates of one sample (exact).
        flash_bytes: Lower bound on the ``.tflite`` bytes, or with
            ``measured`` the bytes of the untrained model's conversion.
        ram_bytes: Lower bound on the activation memory at batch 1, or with
            ``measured`` on a TFLite Micro target the arena TFLite Micro
            allocated for the untrained model's conversion.
        measured: Whether flash (and on TFLite Micro RAM) were measured on
            the untrained model's conversion (`measure_before_training`)
            rather than bounded from its layers.
    """

    mode: str
    params: int
    macs: int
    flash_bytes: int
    ram_bytes: int
    measured: bool = False


def _shape(tensor_shape) -> tuple[int, ...]:
    """A layer input/output shape without its batch dimension."""
    return tuple(int(d) for d in tuple(tensor_shape)[1:])


def _shapes(value) -> list[tuple[int, ...]]:
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return [_shape(value)]


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _macs(layer, inputs: list[tuple[int, ...]], output: tuple[int, ...]) -> int:
    kind = type(layer).__name__
    if kind == "Dense":
        return math.prod(inputs[0]) * layer.units
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        kernel = layer.kernel.shape  # (*k, in / groups, out)
        return math.prod(output) * math.prod(kernel[:-1])
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return math.prod(output) * math.prod(layer.kernel_size)
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        depthwise = layer.depthwise_kernel.shape  # (*k, in, multiplier)
        spatial = math.prod(output[:-1])
        return spatial * (math.prod(depthwise) + math.prod(depthwise[-2:]) * output[-1])
    if kind in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        kernel = layer.kernel.shape  # (*k, out, in)
        return math.prod(inputs[0]) * math.prod(kernel[:-2]) * kernel[-2]
    return 0


def _weight_bytes(layer, mode: str) -> int:
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return 0  # folded into the preceding layer, or replaced by a per-channel mul/add
    total = 0
    for weight in layer.weights:
        size = math.prod(int(d) for d in weight.shape)
        is_bias = weight.shape.rank == 1 and "bias" in weight.name
        if is_bias:
            width = 2 if mode == "float16" else 4
        elif mode == "dynamic":
            width = 1 if size >= _DYNAMIC_MIN_ELEMENTS else 4
        else:
            width = _WEIGHT_BYTES[mode]
        total += size * width
    return total


def estimate_model(model: keras.Model, mode: str = "int8") -> ModelEstimate:
    """MACs, and lower bounds on flash and RAM, of a built model's export in ``mode``.

    Args:
        model: A built tf_keras model (Sequential or functional, nested
            models included).
        mode: The export mode (``float32``, ``float16``, ``dynamic``,
            ``int8``).

    Returns:
        The estimate.

    Raises:
        ValueError: For an unknown mode or a model that is not built.
    """
    if mode not in _WEIGHT_BYTES:
        raise ValueError(f"Received: mode={mode!r}; expected one of {tuple(_WEIGHT_BYTES)}.")
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            f"Received: model of type {type(model).__name__}; expected a built tf_keras Model.")
    macs = flash = ram = 0
    activation = _ACTIVATION_BYTES[mode]
    for layer in _layers(model):
        flash += _weight_bytes(layer, mode)
        try:
            inputs, output = _shapes(layer.input_shape), _shape(layer.output_shape)
        except (AttributeError, RuntimeError, TypeError):
            continue  # a layer used more than once or never called: no single shape
        if any(d is None for shape in [*inputs, output] for d in shape):
            continue
        macs += _macs(layer, inputs, output)
        if type(layer).__name__ not in (*_NO_OP_LAYERS, *_ACTIVATION_LAYERS):
            ram = max(ram, (sum(map(math.prod, inputs)) + math.prod(output)) * activation)
    return ModelEstimate(mode=mode, params=int(model.count_params()), macs=int(macs),
                         flash_bytes=int(flash + TFLITE_FLOOR_BYTES), ram_bytes=int(ram))


def measure_before_training(model: keras.Model, target: Target | str, mode: str,
                            x: np.ndarray) -> ModelEstimate:
    """Flash and RAM of a built, untrained model, measured on its conversion for ``target``.

    The model is converted as `export_for_target` would convert it
    (`convert_for_target`, calibrated on a few samples of ``x``, not
    verified); flash is the file's bytes and, on a TFLite Micro target, RAM
    is the arena TFLite Micro allocates for it (`run_tflm`, no inference).
    Both follow from the layers and their shapes, not the weights' values
    (the conversion runs on non-trivial random weights, ``untrained=True``,
    so that no zero bias or batch-norm offset is folded away), so they are
    what the trained export will need. On other
    targets RAM stays `estimate_model`'s bound. Vela targets are not
    measured here (Vela's flash depends on how well the trained weights
    compress): their estimate is `estimate_model`'s.

    Args:
        model: A built tf_keras model.
        target: A `Target` or a name `get_target` accepts.
        mode: The export mode, one the target runs.
        x: Model inputs (float, as the model takes them) to calibrate an
            int8 conversion.

    Returns:
        The estimate, with ``measured=True`` when it was measured.

    Raises:
        ValueError: As `estimate_model` and `convert_for_target`.
        TFLMError: When TFLite Micro cannot run the converted model (it will
            not run the trained one either).
    """
    target = get_target(target)
    estimate = estimate_model(model, mode)
    if target.runtime == "vela":
        return estimate
    from keras_autoopt.export import convert_for_target
    from keras_autoopt.measure import run_tflm

    data = convert_for_target(model, target, mode, representative_data=x, untrained=True)
    ram = estimate.ram_bytes
    if target.runtime == "tflm":
        with tempfile.TemporaryDirectory(prefix="keras_autoopt_size_") as folder:
            path = Path(folder) / "untrained.tflite"
            path.write_bytes(data)
            ram = run_tflm(path, np.zeros((0, *np.shape(x)[1:]), "float32")).arena_bytes
    return replace(estimate, flash_bytes=len(data), ram_bytes=int(ram), measured=True)
