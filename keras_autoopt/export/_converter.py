"""The TFLite conversion of a ``tf_keras`` model in each export mode."""

from __future__ import annotations

import warnings

import numpy as np

from keras_autoopt._backend import keras, tf

_INT8_INPUT_STATS_WARNING = "Statistics for quantized inputs were expected"


def _convert(model: keras.Model, mode: str, calibration: np.ndarray | None,
             int8_io: bool = True) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
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
