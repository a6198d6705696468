"""The TFLite conversion of a ``tf_keras`` model in each export mode."""

from __future__ import annotations

import warnings

import numpy as np

from keras_autoopt._backend import keras, tf

_INT8_INPUT_STATS_WARNING = "Statistics for quantized inputs were expected"


def _fixed_batch_converter(model: keras.Model, batch_size: int) -> tf.lite.TFLiteConverter:
    """A converter of the model traced with inputs of batch ``batch_size`` (no -1 batch).

    ``from_keras_model`` always exports a dynamic batch (shape signature
    ``[-1, ...]``); TFLite Micro and Vela want static shapes. The model is
    traced as the Keras exporter traces it (``training=False``, outputs keyed
    by the model's output names, or ``output_1``, ... for a subclassed model,
    so the signature names match the dynamic-batch export's).
    """
    args, kwargs = model.save_spec()

    def fixed(spec: tf.TensorSpec) -> tf.TensorSpec:
        return tf.TensorSpec((batch_size, *spec.shape[1:]), spec.dtype, name=spec.name)

    args, kwargs = tf.nest.map_structure(fixed, (args, kwargs))
    names = getattr(model, "output_names", None)

    @tf.function
    def serve(*call_args, **call_kwargs):
        outputs = model(*call_args, training=False, **call_kwargs)
        flat = tf.nest.flatten(outputs)
        if not names or len(names) != len(flat):  # subclassed: Keras's pseudo names
            return {f"output_{i + 1}": output for i, output in enumerate(flat)}
        return dict(zip(names, flat, strict=True))

    concrete = serve.get_concrete_function(*args, **kwargs)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def _convert(model: keras.Model, mode: str, calibration: np.ndarray | None,
             int8_io: bool = True, batch_size: int | None = None, sparse: bool = False) -> bytes:
    """The ``.tflite`` bytes of ``model`` in ``mode``; ``sparse`` adds the sparse-tensor encoding.

    With ``sparse`` the converter stores weight tensors with 30 % zeros or
    more in TFLite's sparse format (``Optimize.EXPERIMENTAL_SPARSITY``; see
    `keras_autoopt.export._sparse`). Without it the bytes are unchanged.
    """
    if batch_size is None:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        converter = _fixed_batch_converter(model, batch_size)
    optimizations = [] if mode == "float32" else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if optimizations:
        converter.optimizations = optimizations
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":

        def representative_dataset():
            for sample in calibration:
                yield [sample[np.newaxis]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # Emitted for every int8-input model: the converter asks for input
        # statistics that only the legacy (TOCO) path used; the calibration
        # data already fixes the input quantization.
        warnings.filterwarnings("ignore", message=_INT8_INPUT_STATS_WARNING)
        return converter.convert()
