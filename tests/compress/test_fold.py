"""`fold_for_qat` keeps the model's function, and `QATStep` quantizes what it produces."""

from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.compress import QATStep, UnsupportedLayerError
from keras_autoopt.compress._fold import fold_for_qat
from keras_autoopt.compress._qat import FloatQuantizeConfig, OutputQuantizeConfig
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import TFLiteRunner


def _randomize_batch_norms(model, rng):
    """Moving statistics and affine parameters far from their initial values."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([
                rng.uniform(0.5, 2.0, w.shape).astype("float32") if "variance" in w.name
                else rng.normal(0.0, 0.5, w.shape).astype("float32")
                for w in layer.weights
            ])


def _kitchen_sink():
    """Every pattern the rewrite handles, and the ones it must leave alone."""
    inputs = keras.Input((8, 8, 2), name="input")
    x = keras.layers.BatchNormalization(name="bn_input")(inputs)  # no linear layer before
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.Activation("relu", name="conv_act")(x)  # fused into conv
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = keras.layers.BatchNormalization(center=False, name="dw_bn")(x)
    x = keras.layers.Activation("elu", name="dw_act")(x)
    shared = keras.layers.Conv2D(4, 1, name="shared")(x)  # read twice: not folded
    a = keras.layers.BatchNormalization(name="shared_bn")(shared)
    x = keras.layers.Add(name="add")([a, shared])
    x = keras.layers.Conv2D(4, 3, activation="swish", name="fused_conv")(x)  # split
    x = keras.layers.BatchNormalization(scale=False, name="after_act_bn")(x)  # not foldable
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="elu", name="fused_dense")(x)  # split
    x = keras.layers.Dense(16, use_bias=False, name="dense")(x)
    x = keras.layers.BatchNormalization(name="dense_bn")(x)
    x = keras.layers.Activation("relu6", name="dense_act")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


def test_the_rewrite_keeps_the_function(tmp_path):
    rng = np.random.default_rng(0)
    model = _kitchen_sink()
    _randomize_batch_norms(model, rng)
    result = fold_for_qat(model)
    assert result.folded == {"conv_bn": "conv", "dw_bn": "dw", "dense_bn": "dense"}
    assert result.fused == {"conv_act": "conv"}
    assert result.split == {"fused_conv": "fused_conv_activation",
                            "fused_dense": "fused_dense_activation"}
    names = [layer.name for layer in result.model.layers]
    for gone in ("conv_bn", "dw_bn", "dense_bn", "conv_act"):
        assert gone not in names
    for kept in ("bn_input", "shared_bn", "after_act_bn"):
        assert kept in names
    assert result.model.get_layer("conv").get_config()["use_bias"] is True
    x = rng.normal(0.0, 1.0, (64, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    # the input model is untouched
    assert "conv_bn" in [layer.name for layer in model.layers]


def test_folding_a_sequential_model_keeps_the_function_and_skip_layers():
    rng = np.random.default_rng(1)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, name="a"), keras.layers.BatchNormalization(name="a_bn"),
        keras.layers.Activation("tanh", name="a_act"),
        keras.layers.Dense(4, name="b"), keras.layers.BatchNormalization(name="b_bn"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ])
    _randomize_batch_norms(model, rng)
    x = rng.normal(0.0, 1.0, (32, 6)).astype("float32")
    result = fold_for_qat(model, skip_layers=["b_bn"])
    assert result.folded == {"a_bn": "a"}
    np.testing.assert_allclose(result.model(x).numpy(), model(x).numpy(), atol=1e-5)


def test_folding_keeps_zeros_and_distinct_values_per_channel():
    rng = np.random.default_rng(2)
    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(6, use_bias=False, name="d"),
        keras.layers.BatchNormalization(name="bn"),
    ])
    centroids = np.array([-0.5, -0.1, 0.0, 0.2, 0.7], "float32")
    kernel = centroids[rng.integers(0, 5, (8, 6))]
    model.get_layer("d").set_weights([kernel])
    _randomize_batch_norms(model, rng)
    folded = fold_for_qat(model).model.get_layer("d").get_weights()[0]
    assert np.array_equal(folded == 0, kernel == 0)
    for column in range(6):
        assert np.unique(folded[:, column]).size == np.unique(kernel[:, column]).size
    # shared across channels before, distinct per channel after (why clustering folds first)
    assert np.unique(folded).size > np.unique(kernel).size


def test_qat_quantizes_the_rewritten_model_and_exports_int8(tmp_path):
    rng = np.random.default_rng(3)
    model = _kitchen_sink()
    _randomize_batch_norms(model, rng)
    step = QATStep("default")
    qat = step.apply(model)
    configs = {layer.layer.name: type(layer.quantize_config).__name__
               for layer in qat.layers if hasattr(layer, "quantize_config")}
    for name in ("bn_input", "shared_bn", "after_act_bn", "dw_act",
                 "fused_conv_activation", "fused_dense_activation"):
        assert configs[name] in ("OutputQuantizeConfig", "Default8BitActivationQuantizeConfig")
    assert configs["dw_act"] == "OutputQuantizeConfig"  # elu: TF-MOT has no config
    assert step.left_float == {}
    x = rng.normal(0.0, 1.0, (200, 8, 8, 2)).astype("float32")
    result = export_tflite(qat, tmp_path / "qat.tflite", mode="int8", representative_data=x,
                           verify_data=x[:64], tolerance=1.0, min_top1_agreement=0.0)
    assert TFLiteRunner(result.path).input_details[0]["dtype"] == np.int8
    expected = np.argmax(qat.predict(x, verbose=0), axis=1)
    got = np.argmax(TFLiteRunner(result.path).predict(x, batch_size=1), axis=1)
    assert np.mean(expected == got) >= 0.95  # random weights: low-margin outputs


def test_what_cannot_be_quantized_stays_float_with_a_reason():
    def scaled_tanh(x):
        return 1.7 * keras.activations.tanh(x)

    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(input_shape[-1],))

        def call(self, inputs):
            return inputs * self.scale

    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, name="dense")(inputs)
    x = keras.layers.Activation(scaled_tanh, name="custom_act")(x)
    x = Scale(name="scale")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    with pytest.raises(UnsupportedLayerError, match=r"Layer 'scale' \(Scale\) cannot be wrapped "
                                                    r"by QATStep: TF-MOT's 8-bit scheme"):
        QATStep("default").apply(model)
    step = QATStep("default", skip_unsupported=True)
    qat = step.apply(model)
    assert set(step.left_float) == {"custom_act", "scale"}
    assert "activation 'scaled_tanh' has no 8-bit quantization" in step.left_float["custom_act"]
    assert step.skipped == ["scale"]
    x = np.ones((2, 4), "float32")
    assert qat(x).shape == (2, 2)


@pytest.mark.parametrize(("low", "high"), [(1.0, None), (1.0, 0.5)])
def test_output_quantize_config_checks_its_range(low, high):
    with pytest.raises(ValueError, match=r"Received: low=1.0, high=.*; expected both None"):
        OutputQuantizeConfig(low, high)


def test_quantize_configs_round_trip():
    config = OutputQuantizeConfig(0.0, 255 / 256)
    assert OutputQuantizeConfig.from_config(config.get_config()) == config
    assert FloatQuantizeConfig.from_config(FloatQuantizeConfig().get_config()).get_config() == {}
    step = QATStep("pqat", fold_batch_norm=False)
    assert QATStep.from_config(step.get_config()) == step
    with pytest.raises(ValueError, match=r"Received: fold_batch_norm='yes'; expected True"):
        QATStep(fold_batch_norm="yes")
