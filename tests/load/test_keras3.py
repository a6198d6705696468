"""Keras 3 models into tf_keras: configs converted, weights copied, outputs unchanged.

The reference is Keras 3 itself: every model kind is built with Keras 3, its
weights are set to random values (BatchNormalization moving statistics too;
``Normalization`` is adapted on data), and the tf_keras model read from its
``.keras`` file (`load_keras3_file`) or converted from the live object
(`convert_keras3_model`) must give the same outputs. The refusals use the
marker-file pattern of ``test_load_model_file.py``: a ``Lambda`` layer or a
registered custom class whose code would create a file; refusing the file
must leave no marker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.load import (
    Keras3ConversionError,
    ModelFileError,
    as_tf_keras,
    convert_keras3_config,
    convert_keras3_model,
    copy_weights_to_keras3,
    is_keras3_file,
    is_keras3_model,
    load_keras3_file,
)

k3 = pytest.importorskip("keras")
if not k3.version().startswith("3."):  # pragma: no cover - environment check
    pytest.skip("Keras 3 is not installed", allow_module_level=True)
L = k3.layers


def _seq(*layers, shape, name="seq"):
    return k3.Sequential([k3.Input(shape), *layers], name=name)


def _fn(inputs, outputs, name="fn"):
    return k3.Model(inputs, outputs, name=name)


def _dense():
    return _seq(L.Dense(5, activation="relu", kernel_regularizer=k3.regularizers.L2(0.01),
                        bias_initializer=k3.initializers.Constant(0.1),
                        kernel_constraint=k3.constraints.MaxNorm(2.0),
                        activity_regularizer="l1"),
                L.Dense(3, activation="softmax", use_bias=False), shape=(6,))


def _conv2d():
    return _seq(L.Conv2D(4, 3, padding="same", strides=2, activation="gelu"),
                L.MaxPooling2D(2, padding="same"), L.Conv2D(4, 1, groups=2),
                L.GlobalAveragePooling2D(), L.Dense(2), shape=(8, 8, 3))


def _conv1d():
    return _seq(L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="swish"),
                L.AveragePooling1D(2), L.Conv1D(2, 2, strides=2, padding="same"),
                L.GlobalMaxPooling1D(), shape=(10, 3))


def _depthwise2d():
    return _seq(L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu6"),
                L.GlobalMaxPooling2D(), shape=(7, 7, 3))


def _depthwise1d():
    return _seq(L.DepthwiseConv1D(3, depth_multiplier=2, padding="same"),
                L.GlobalAveragePooling1D(), shape=(10, 3))


def _separable2d():
    return _seq(L.SeparableConv2D(4, 3, depth_multiplier=2, activation="elu"),
                L.AveragePooling2D(2), L.Flatten(), shape=(8, 8, 3))


def _separable1d():
    return _seq(L.SeparableConv1D(4, 3, padding="same", activation="tanh"), L.Flatten(),
                shape=(9, 2))


def _transpose():
    return _seq(L.Conv2DTranspose(3, 3, strides=2, padding="same"),
                L.Conv2DTranspose(2, 2, output_padding=None), shape=(4, 4, 2))


def _transpose1d():
    return _seq(L.Conv1DTranspose(3, 3, strides=2), shape=(5, 2))


def _batchnorm():
    return _seq(L.Conv2D(4, 3), L.BatchNormalization(), L.ReLU(),
                L.BatchNormalization(center=False, epsilon=0.01), shape=(6, 6, 2))


def _layernorm():
    return _seq(L.LayerNormalization(), L.LayerNormalization(axis=[1, 2], center=False),
                shape=(5, 4))


def _dropouts():
    return _seq(L.SpatialDropout1D(0.3), L.Dropout(0.5, seed=3), L.Flatten(), shape=(6, 4))


def _spatial2d():
    return _seq(L.SpatialDropout2D(0.3), L.Conv2D(2, 1), shape=(4, 4, 3))


def _reshape():
    return _seq(L.Reshape((4, 6)), L.Permute((2, 1)), L.Flatten(), L.Dense(3), shape=(6, 4))


def _pad2d():
    return _seq(L.ZeroPadding2D(((1, 2), (0, 1))), L.Cropping2D(((1, 0), (0, 1))),
                L.UpSampling2D(2), L.UpSampling2D((1, 2), interpolation="bilinear"),
                shape=(4, 5, 2))


def _pad1d():
    return _seq(L.ZeroPadding1D(2), L.Cropping1D((1, 2)), L.UpSampling1D(3), shape=(5, 2))


def _merges():
    a, b = k3.Input((4,), name="a"), k3.Input((4,), name="b")
    parts = [L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]),
             L.Average()([a, b]), L.Maximum()([a, b]), L.Minimum()([a, b])]
    return _fn([a, b], L.Concatenate(axis=-1)(parts))


def _activations():
    return _seq(L.Dense(6), L.Activation("tanh"), L.Dense(6), L.LeakyReLU(0.1),
                L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2), L.ELU(0.5),
                L.PReLU(), L.Dense(4, activation="mish"), L.Softmax(), shape=(5,))


def _normalization():
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(1).normal(3.0, 2.0, (50, 4)).astype("float32"))
    return _seq(L.Rescaling(0.5, offset=-1.0), norm, L.Dense(2), shape=(4,))


def _normalization_fixed():
    return _seq(L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25]),
                L.Normalization(mean=0.5, variance=2.0, invert=True), shape=(3,))


def _normalization_axis():
    norm = L.Normalization(axis=(1, 2))
    norm.adapt(np.random.default_rng(2).normal(1.0, 3.0, (20, 3, 2)).astype("float32"))
    return _seq(norm, shape=(3, 2))


def _embedding():
    return k3.Sequential([k3.Input((5,), dtype="int32"), L.Embedding(10, 4),
                          L.GlobalAveragePooling1D(), L.Dense(2)], name="emb")


def _embedding_masked():
    # In a functional model, Keras 3 records the mask as a ``NotEqual`` op layer (refused).
    return k3.Sequential([k3.Input((6,), dtype="int32"), L.Embedding(8, 3, mask_zero=True),
                          L.GlobalAveragePooling1D()], name="masked")


def _seq_in_fn():
    inner = k3.Sequential([k3.Input((6,)), L.Dense(4, name="d"), L.BatchNormalization(name="bn")],
                          name="inner")
    inputs = k3.Input((6,))
    return _fn(inputs, L.Dense(2)(inner(inputs)))


def _fn_in_seq():
    i = k3.Input((4,))
    inner = _fn(i, L.Dense(3, activation="sigmoid", name="d")(L.Dense(5, name="e")(i)),
                name="inner")
    return k3.Sequential([k3.Input((4,)), inner, L.Dense(2, name="d")], name="outer")


def _fn_in_fn_shared():
    i = k3.Input((4,))
    block = _fn(i, L.Dense(4, activation="relu")(i), name="block")
    shared = L.Dense(4, name="shared")
    inputs = k3.Input((4,))
    x = block(inputs)
    y = shared(x)
    z = shared(block(y))  # the block and the layer each called twice
    return _fn(inputs, L.Add()([y, z]))


def _multi_io():
    a, b = k3.Input((3,), name="a"), k3.Input((5,), name="b")
    h = L.Concatenate()([L.Dense(4)(a), b])
    return _fn([a, b], [L.Dense(1, name="out1")(h), L.Dense(2, name="out2")(h)])


def _seq_no_input():
    model = k3.Sequential([L.Dense(3), L.Dense(2)], name="lazy")
    model.build((None, 4))
    return model


def _cnn():
    inputs = k3.Input((8, 8, 1))
    x = L.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    y = L.DepthwiseConv2D(3, padding="same")(x)
    y = L.BatchNormalization()(y)
    x = L.Add()([x, y])
    x = L.MaxPooling2D()(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.2)(x)
    return _fn(inputs, L.Dense(3, activation="softmax")(x))


def _frozen():
    model = _seq(L.Dense(4, name="d"), L.BatchNormalization(name="bn"), L.Dense(2), shape=(3,))
    model.get_layer("d").trainable = False
    model.get_layer("bn").trainable = False
    return model


def _mixed_dtypes():
    return _seq(L.Dense(3, dtype="float64"), L.Dense(2, dtype="float32"), shape=(4,))


MODELS = {
    "dense": _dense, "conv2d": _conv2d, "conv1d": _conv1d, "depthwise2d": _depthwise2d,
    "depthwise1d": _depthwise1d, "separable2d": _separable2d, "separable1d": _separable1d,
    "conv2d_transpose": _transpose, "conv1d_transpose": _transpose1d, "batchnorm": _batchnorm,
    "layernorm": _layernorm, "dropouts": _dropouts, "spatial_dropout2d": _spatial2d,
    "reshape_permute": _reshape, "pad_crop_upsample_2d": _pad2d, "pad_crop_upsample_1d": _pad1d,
    "merges": _merges, "activations": _activations, "normalization_adapted": _normalization,
    "normalization_fixed": _normalization_fixed, "normalization_axes": _normalization_axis,
    "embedding": _embedding, "embedding_masked": _embedding_masked,
    "sequential_in_functional": _seq_in_fn, "functional_in_sequential": _fn_in_seq,
    "functional_in_functional_shared": _fn_in_fn_shared, "multi_input_output": _multi_io,
    "sequential_without_input": _seq_no_input, "cnn": _cnn, "float64_layer": _mixed_dtypes,
    "frozen_layers": _frozen,
}


def _leaf_layers(model):
    for layer in model.layers:
        yield from _leaf_layers(layer) if isinstance(layer, k3.Model) else [layer]


def _tf_leaf_layers(model):
    for layer in model.layers:
        yield from _tf_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer]


def _randomize(model, seed=0):
    """Random weights (positive variances) for every layer but the adapted/fixed Normalization."""
    rng = np.random.default_rng(seed)
    for layer in _leaf_layers(model):
        if isinstance(layer, L.Normalization):
            continue
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if weight.name in ("moving_variance", "gamma"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0.0, 0.5, shape)
            weight.assign(value.astype(weight.dtype))


def _inputs(model, seed=1):
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (3, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            values = rng.integers(0, 8, shape)
            values[0, :2] = 0  # masked positions for mask_zero
            arrays.append(values.astype(str(tensor.dtype)))
        else:
            arrays.append(rng.normal(0.0, 1.0, shape).astype(str(tensor.dtype)))
    return arrays if len(arrays) > 1 else arrays[0]


def _outputs(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _assert_same(tf_model, model, x):
    expected = _outputs(model, x)
    received = _outputs(tf_model, x)
    assert len(received) == len(expected)
    for want, got in zip(expected, received, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_file_and_live_model_convert_exactly(kind, tmp_path):
    model = MODELS[kind]()
    _randomize(model)
    x = _inputs(model)
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    assert is_keras3_file(path)

    from_file = load_keras3_file(path)
    assert isinstance(from_file, keras.Model)
    _assert_same(from_file, model, x)
    from_object = convert_keras3_model(model)
    assert isinstance(from_object, keras.Model)
    _assert_same(from_object, model, x)
    assert [w.shape for w in from_file.weights] == [w.shape for w in from_object.weights]
    assert len(from_file.weights) == len(model.weights)


def test_batchnorm_statistics_after_fit(tmp_path):
    model = _seq(L.Dense(4), L.BatchNormalization(momentum=0.5), L.Dense(1), shape=(3,))
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(2.0, 3.0, (16, 3)), rng.normal(size=(16, 1)), epochs=2, batch_size=8,
              verbose=0)
    mean = model.layers[1].moving_mean.numpy()
    assert np.abs(mean).max() > 0.01  # the statistics moved
    model.save(tmp_path / "bn.keras")
    converted = load_keras3_file(tmp_path / "bn.keras")
    np.testing.assert_allclose(converted.layers[1].moving_mean.numpy(), mean)
    _assert_same(converted, model, rng.normal(size=(4, 3)).astype("float32"))


# --------------------------------------------------------------------------- refusals


@k3.saving.register_keras_serializable(package="my_pkg")
class MyLayer(k3.layers.Layer):
    """A custom layer whose construction creates the marker file named in its config."""

    def __init__(self, marker="", **kwargs):
        super().__init__(**kwargs)
        self.marker = marker
        if marker:
            Path(marker).touch()

    def call(self, inputs):
        return inputs * 2.0

    def get_config(self):
        return {**super().get_config(), "marker": self.marker}


def _evil(marker: Path, *, lam=True, custom=False):
    inputs = k3.Input((4,))
    x = L.Dense(3, name="dense")(inputs)
    if lam:
        x = L.Lambda(lambda t, p=str(marker): (__import__("pathlib").Path(p).touch(), t)[1],
                     name="lam")(x)
    if custom:
        x = MyLayer(marker=str(marker), name="mine")(x)
    return _fn(inputs, L.Dense(2)(x), name="evil")


def _saved_evil(tmp_path, **kwargs):
    marker = tmp_path / "PAYLOAD_RAN"
    model = _evil(marker, **kwargs)
    path = tmp_path / "evil.keras"
    model.save(path)
    marker.unlink(missing_ok=True)  # building ran the payload once
    return path, marker


EXPECTED = ("expected a Sequential or functional Keras 3 model of standard Keras layers only "
    "(supported: Activation, Add, ")


def test_lambda_file_is_refused_without_running_it(tmp_path):
    path, marker = _saved_evil(tmp_path)
    with pytest.raises(Keras3ConversionError) as info:
        load_keras3_file(path)
    message = str(info.value)
    assert message.startswith(f"Received: model={str(path)!r} holding layer 'lam' (Lambda); ")
    assert EXPECTED in message
    assert info.value.problems == ["layer 'lam' (Lambda)"]
    assert isinstance(info.value, ModelFileError)
    assert not marker.exists()


def test_custom_class_file_is_refused_without_running_it(tmp_path):
    path, marker = _saved_evil(tmp_path, lam=False, custom=True)
    with pytest.raises(Keras3ConversionError) as info:
        load_keras3_file(path, arg="teacher")
    assert str(info.value).startswith(
        f"Received: teacher={str(path)!r} holding layer 'mine' (custom class 'my_pkg>MyLayer' "
        f"from module {__name__!r}); ")
    assert not marker.exists()


def test_every_problem_is_named_in_one_message(tmp_path):
    path, marker = _saved_evil(tmp_path, custom=True)
    with pytest.raises(Keras3ConversionError) as info:
        load_keras3_file(path)
    assert f"holding layer 'lam' (Lambda), layer 'mine' (custom class 'my_pkg>MyLayer' from " \
           f"module {__name__!r}); expected" in str(info.value)
    assert len(info.value.problems) == 2
    assert not marker.exists()


def test_live_model_with_lambda_is_refused(tmp_path):
    model = _evil(tmp_path / "m")
    with pytest.raises(Keras3ConversionError, match=r"holding layer 'lam' \(Lambda\)"):
        convert_keras3_model(model)


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_unsupported_layers_and_options_are_named():
    model = _seq(L.LSTM(2, name="lstm"), L.Dense(2, activation="hard_sigmoid", name="hs"),
                 L.LayerNormalization(rms_scaling=True, name="rms"), shape=(3, 2))
    config = k3.saving.serialize_keras_object(model)
    with pytest.raises(Keras3ConversionError) as info:
        convert_keras3_config(config)
    assert info.value.problems == [
        "layer 'lstm' (LSTM, not supported)",
        "layer 'hs' (activation 'hard_sigmoid' is not one tf_keras computes the same)",
        "layer 'rms' (LayerNormalization option rms_scaling=True has no tf_keras equivalent)",
    ]


def test_lora_is_refused_and_subclassed_models_too():
    model = _seq(L.Dense(4, name="d"), shape=(3,))
    model.layers[0].enable_lora(2)
    with pytest.raises(Keras3ConversionError, match=r"layer 'd' \(Dense option lora_rank=2 "):
        convert_keras3_model(model)

    class Sub(k3.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    with pytest.raises(Keras3ConversionError, match="a subclassed Keras 3 model"):
        convert_keras3_model(Sub())


def test_dtype_policies_and_config_details():
    model = _seq(L.Dense(2, name="d", dtype="mixed_float16"), shape=(3,))
    converted = convert_keras3_config(k3.saving.serialize_keras_object(model))
    converted = json.loads(json.dumps(converted))  # as from a file: lists, not tuples
    layers = converted["config"]["layers"]
    assert layers[0] == {"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, 3], "dtype": "float32", "sparse": False, "ragged": False,
        "name": layers[0]["config"]["name"], "optional": False}}
    assert layers[1]["config"]["dtype"] == {"class_name": "Policy",
                                            "config": {"name": "mixed_float16"}}
    assert layers[1]["config"]["kernel_initializer"] == {"class_name": "GlorotUniform",
                                                         "config": {"seed": None}}
    tf_model = keras.models.model_from_config(converted)
    assert tf_model.layers[0].dtype_policy.name == "mixed_float16"


def test_wrong_weights_are_named(tmp_path):
    path = tmp_path / "m.keras"
    _seq(L.Dense(4, name="d"), shape=(3,)).save(path)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(other, "w") as dst:
        config = src.read("config.json").decode().replace('"units": 4', '"units": 5')
        for item in src.namelist():
            dst.writestr(item, config if item == "config.json" else src.read(item))
    with pytest.raises(Keras3ConversionError) as info:
        load_keras3_file(other)
    assert str(info.value) == (
        f"Received: model={str(other)!r} whose weights do not fit the converted model: "
        "layer 'd' (Dense) variable 0 of shape (3, 4); expected 'kernel' of shape (3, 5).")


# --------------------------------------------------------------------------- the way back


@pytest.mark.parametrize("kind", ["sequential_in_functional", "functional_in_sequential",
                                  "functional_in_functional_shared", "normalization_adapted",
                                  "cnn", "frozen_layers"])
def test_weights_go_back_to_the_keras3_model(kind):
    model = MODELS[kind]()
    _randomize(model)
    tf_model = convert_keras3_model(model)
    for weight in tf_model.weights:
        if weight.dtype.is_floating:
            weight.assign(weight.numpy() * 1.5 + 0.25)
    for layer in _tf_leaf_layers(tf_model):  # Normalization reads its variables then
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()
    x = _inputs(model)
    before = _outputs(model, x)
    copy_weights_to_keras3(tf_model, model)
    _assert_same(tf_model, model, x)
    assert not np.allclose(before[0], _outputs(model, x)[0])


def test_weights_go_back_only_to_the_same_structure():
    model = _seq(L.Dense(5, name="hidden"), L.Dense(2, name="out"), shape=(4,))
    pruned = convert_keras3_model(_seq(L.Dense(3, name="hidden"), L.Dense(2, name="out"),
                                       shape=(4,)))
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(Keras3ConversionError) as info:
        copy_weights_to_keras3(pruned, model)
    assert str(info.value) == (
        "Received: model=<Keras 3 Sequential 'seq'> whose layer 'hidden' (Dense) differs from "
        "the tf_keras model's: variable shapes [(4, 3), (3,)] in the tf_keras model, "
        "[(4, 5), (5,)] in the Keras 3 model; expected the same structure (same layer names, "
        "classes and weight shapes) as the converted model.")
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights, strict=True))


# --------------------------------------------------------------------------- detection


def test_detection(tmp_path):
    model = _seq(L.Dense(2), shape=(3,))
    tf_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert is_keras3_model(model)
    assert not is_keras3_model(tf_model)
    assert not is_keras3_model(np.zeros(3))
    assert not is_keras3_model(L.Dense(2))

    model.save(tmp_path / "k3.keras")
    tf_model.save(tmp_path / "tf.keras")
    (tmp_path / "text.keras").write_text("no zip")
    assert is_keras3_file(tmp_path / "k3.keras")
    assert not is_keras3_file(tmp_path / "tf.keras")
    assert not is_keras3_file(tmp_path / "text.keras")
    assert not is_keras3_file(tmp_path / "missing.keras")


def test_as_tf_keras():
    tf_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert as_tf_keras(tf_model) == (tf_model, False)
    assert as_tf_keras("model.keras") == ("model.keras", False)
    converted, changed = as_tf_keras(_seq(L.Dense(2), shape=(3,)))
    assert changed and isinstance(converted, keras.Model)


def test_reading_a_file_never_needs_keras3(tmp_path):
    """With Keras 3 made unimportable (after setup, which TF-MOT's imports touch), it loads."""
    path = tmp_path / "m.keras"
    _cnn().save(path)
    script = (
        "import sys\n"
        "from keras_autoopt.load import load_keras3_file\n"
        "for name in [n for n in sys.modules if n == 'keras' or n.startswith('keras.')]:\n"
        "    del sys.modules[name]\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'keras' or name.startswith('keras.'):\n"
        "            raise ImportError('Keras 3 blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"model = load_keras3_file({str(path)!r})\n"
        "print('LOADED', type(model).__module__, 'keras' in sys.modules)\n")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED tf_keras.src.engine.functional False" in result.stdout
