"""`estimate_model` against hand-computed figures and the exported files."""

import pytest

from keras_autoopt._backend import keras
from keras_autoopt.search._estimates import estimate_model


def _conv_dense():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(10, activation="softmax"),
    ])


def test_macs_flash_and_ram_by_hand():
    estimate = estimate_model(_conv_dense(), "int8")
    # conv: 8x8 outputs x 8 filters x 3x3x1; dense: 512 -> 10.
    assert estimate.macs == 8 * 8 * 8 * 9 + 512 * 10
    # int8 kernels 1 byte, int32 biases 4 bytes, batch-norm statistics folded away.
    assert estimate.flash_bytes == (72 + 8 * 4) + (5120 + 10 * 4) + 800
    # the conv's 64 int8 inputs and 512 outputs are live together (the largest pair).
    assert estimate.ram_bytes == 64 + 512
    as_float = estimate_model(_conv_dense(), "float32")
    assert as_float.flash_bytes == (72 + 5120) * 4 + (8 + 10) * 4 + 800
    assert as_float.ram_bytes == (64 + 512) * 4 and as_float.macs == estimate.macs


def test_separable_depthwise_and_transpose_macs():
    model = keras.Sequential([
        keras.Input((6, 6, 4)),
        keras.layers.DepthwiseConv2D(3, padding="valid"),        # 4x4x4 outputs x 9
        keras.layers.SeparableConv2D(5, 3, padding="same"),       # 4x4 x (9x4 + 4x5)
        keras.layers.Conv2DTranspose(2, 2, strides=2),            # 4x4x5 inputs x 2x2x2
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),                                    # 2 x 3
    ])
    expected = 4 * 4 * 4 * 9 + 16 * (9 * 4 + 4 * 5) + 16 * 5 * 4 * 2 + 2 * 3
    assert estimate_model(model).macs == expected


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_flash_estimate_is_a_lower_bound_of_the_exported_file(mode, tmp_path, tiny_images):
    from keras_autoopt.export import export_tflite

    x, *_ = tiny_images
    model = _conv_dense()
    result = export_tflite(model, tmp_path / "m.tflite", mode, representative_data=x)
    size = result.path.stat().st_size
    estimate = estimate_model(model, mode).flash_bytes
    assert estimate <= size
    assert estimate >= 0.5 * size  # a useful bound, not a trivial one


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Received: mode='int4'; expected one of"):
        estimate_model(_conv_dense(), "int4")
    with pytest.raises(ValueError, match=r"expected a built tf_keras Model"):
        estimate_model(keras.Sequential([keras.layers.Dense(2)]))


def test_fused_activation_layers_do_not_count_and_the_bound_holds_under_tflite_micro(
        tmp_path, tiny_images):
    from keras_autoopt.export import export_for_target
    from keras_autoopt.measure import run_tflm

    x, *_ = tiny_images
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),  # fused into the conv by the converter
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    estimate = estimate_model(model, "int8")
    assert estimate.ram_bytes == 64 + 8 * 8 * 32  # the conv's pair, not 2 x 2,048
    path = export_for_target(model, tmp_path / "m.tflite", "tflm", representative_data=x,
                             min_top1_agreement=0.0).path
    arena = run_tflm(path, x[:2]).arena_bytes
    assert estimate.ram_bytes <= arena


def test_measure_before_training_matches_the_trained_export(tmp_path, tiny_images):
    from keras_autoopt.export import export_for_target
    from keras_autoopt.measure import run_tflm
    from keras_autoopt.search import measure_before_training

    x, y, *_ = tiny_images
    model = _conv_dense()
    model.compile("adam", "sparse_categorical_crossentropy")
    before = measure_before_training(model, "tflm", "int8", x)
    weights = [w.copy() for w in model.get_weights()]
    assert before.measured and before.macs == estimate_model(model).macs
    assert all((a == b).all() for a, b in zip(weights, model.get_weights(), strict=True))
    model.fit(x, y, epochs=2, verbose=0)
    path = export_for_target(model, tmp_path / "m.tflite", "tflm", representative_data=x,
                             min_top1_agreement=0.0).path
    assert before.ram_bytes == run_tflm(path, x[:1]).arena_bytes
    size = path.stat().st_size
    assert 0.97 * size <= before.flash_bytes <= size
    # On LiteRT targets only flash is measured; on Vela targets nothing (weight compression).
    host = measure_before_training(model, "host", "float32", x)
    assert host.measured and host.ram_bytes == estimate_model(model, "float32").ram_bytes
    assert not measure_before_training(model, "ethos-u55-128", "int8", x).measured
