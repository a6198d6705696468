"""Structured pruning (issue 14): the surgery, the channel groups, the criteria, the step.

Exactness is checked on models whose removed channels contribute nothing (their
readers' input weights zeroed by hand), against the original model's outputs; every
expected index and parameter count is computed here by hand, not by the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt._backend import keras, tf
from keras_autoopt.compress import (
    StructuredPruningStep,
    UnsupportedLayerError,
    channel_importance,
    prune_by_ratio,
    prune_channels,
)
from keras_autoopt.export import export_tflite

L = keras.layers


def _randomize(model, seed=0):
    """Random weights everywhere; batch-norm variances positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, L.BatchNormalization):
            values[-1] = rng.uniform(0.5, 2.0, size=values[-1].shape).astype("float32")
        layer.set_weights(values)
    return model


def _sequential():
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(4, 3, padding="same", name="c1"),
        L.BatchNormalization(name="bn1"),
        L.ReLU(name="relu"),
        L.MaxPooling2D(2, name="pool"),
        L.Conv2D(6, 3, padding="same", name="c2"),
        L.Flatten(name="flat"),
        L.Dense(5, activation="relu", name="d1"),
        L.Dense(3, activation="softmax", name="out"),
    ], name="seq")


def _functional():
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(6, 3, padding="same", name="a")(inp)
    b = L.Conv2D(6, 1, name="b")(inp)
    added = L.Add(name="add")([a, b])
    c = L.Conv2D(4, 3, padding="same", name="c")(inp)
    cat = L.Concatenate(name="cat")([added, c])
    dw = L.DepthwiseConv2D(3, padding="same", name="dw")(cat)
    bn = L.BatchNormalization(name="bn")(dw)
    sep = L.SeparableConv2D(5, 3, padding="same", activation="relu", name="sep")(bn)
    gap = L.GlobalAveragePooling2D(name="gap")(sep)
    out = L.Dense(3, name="out")(gap)
    return keras.Model(inp, out, name="func")


def _set(layer, index, value):
    """Set weight ``index`` of ``layer`` to ``value(array)``."""
    weights = layer.get_weights()
    weights[index] = value(weights[index].copy())
    layer.set_weights(weights)


def _zero(axis_index):
    def change(array):
        array[axis_index] = 0.0
        return array
    return change


def _params(model):
    return int(sum(np.prod(w.shape) for w in model.weights))


def test_sequential_surgery_is_exact():
    model = _randomize(_sequential())
    # c1 loses channels 1 and 3: c2 reads nothing of them.
    _set(model.get_layer("c2"), 0, _zero((slice(None), slice(None), [1, 3], slice(None))))
    # c2 loses channels 0 and 5: after Flatten of (3, 3, 6), rows h*18 + w*6 + c of d1.
    rows = [h * 3 * 6 + w * 6 + c for h in range(3) for w in range(3) for c in (0, 5)]
    _set(model.get_layer("d1"), 0, _zero((rows, slice(None))))
    # d1 loses unit 2: out reads nothing of it.
    _set(model.get_layer("out"), 0, _zero(([2], slice(None))))
    before = [w.copy() for w in model.get_weights()]

    pruned = prune_channels(model, {"c1": [0, 2], "c2": [1, 2, 3, 4], "d1": [0, 1, 3, 4]})

    x = np.random.default_rng(1).normal(size=(5, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    assert isinstance(pruned, keras.Sequential)
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]
    assert pruned.get_layer("c2").filters == 4 and pruned.get_layer("d1").units == 4
    assert pruned.get_layer("d1").get_config()["activation"] == "relu"
    # c1 3*3*2*2+2, bn1 2*4, c2 3*3*2*4+4, d1 (3*3*4)*4+4, out 4*3+3.
    assert _params(pruned) == 38 + 8 + 76 + 148 + 15
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)  # The original is untouched.


def test_functional_surgery_is_exact_and_add_group_shares_channels():
    model = _randomize(_functional())
    # Removed: a/b channels 1, 4, 5 (concat indices 1, 4, 5) and c channels 0, 3
    # (concat indices 6 + 0, 6 + 3). Depthwise and batch norm keep them apart; the
    # separable pointwise kernel mixes them: zero its rows.
    _set(model.get_layer("sep"), 1, _zero((slice(None), slice(None), [1, 4, 5, 6, 9],
                                           slice(None))))
    # sep loses filters 1, 2, 3: out reads nothing of them.
    _set(model.get_layer("out"), 0, _zero(([1, 2, 3], slice(None))))

    pruned = prune_channels(model, {"b": [0, 2, 3], "c": [1, 2], "sep": [0, 4]})

    x = np.random.default_rng(2).normal(size=(4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    # a 3*3*3*3+3, b 1*1*3*3+3, c 3*3*3*2+2, dw 3*3*5+5, bn 5*4,
    # sep 3*3*5 + 5*2 + 2, out 2*3+3.
    assert _params(pruned) == 84 + 12 + 56 + 50 + 20 + 57 + 9
    for name in ("a", "b"):  # Naming b alone pruned a the same way.
        np.testing.assert_array_equal(pruned.get_layer(name).get_weights()[0],
                                      model.get_layer(name).get_weights()[0][..., [0, 2, 3]])
    np.testing.assert_array_equal(pruned.get_layer("dw").get_weights()[0],
                                  model.get_layer("dw").get_weights()[0][:, :, [0, 2, 3, 7, 8]])


def test_add_group_conflicting_selections_refused():
    with pytest.raises(ValueError, match=r"Received: keep\['b'\]=\[0, 1\] .*one selection"):
        prune_channels(_functional(), {"a": [0, 2], "b": [0, 1]})


def test_flatten_dense_index_mapping_by_hand():
    inp = keras.Input((2, 2, 3))
    conv = L.Conv2D(3, 1, name="conv")(inp)
    out = L.Dense(2, name="out")(L.Flatten(name="flat")(conv))
    model = _randomize(keras.Model(inp, out))

    pruned = prune_channels(model, {"conv": [0, 2]})

    # Flattened (2, 2, 3): channel 1 sits at rows 1, 4, 7 and 10.
    kept_rows = [0, 2, 3, 5, 6, 8, 9, 11]
    np.testing.assert_array_equal(pruned.get_layer("out").get_weights()[0],
                                  model.get_layer("out").get_weights()[0][kept_rows])
    assert pruned.get_layer("out").get_weights()[0].shape == (8, 2)


def test_l1_l2_and_group_sums_against_numpy():
    model = _randomize(_functional())
    k = {name: model.get_layer(name).get_weights()[0] for name in ("a", "b", "c")}
    pointwise = model.get_layer("sep").get_weights()[1]

    l1 = channel_importance(model, "l1")
    l2 = channel_importance(model, "l2")

    assert sorted(l1) == ["a", "c", "sep"]  # out reaches the output: not prunable.
    np.testing.assert_allclose(l1["a"], np.abs(k["a"]).sum(axis=(0, 1, 2))
                               + np.abs(k["b"]).sum(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(l2["c"], np.sqrt((k["c"] ** 2).sum(axis=(0, 1, 2))), rtol=1e-6)
    np.testing.assert_allclose(l1["sep"], np.abs(pointwise).sum(axis=(0, 1, 2)), rtol=1e-6)


def test_bn_scale_is_abs_gamma():
    model = _randomize(_sequential())  # c1 -> bn1, but c2 and d1 have no batch norm.
    with pytest.raises(ValueError, match=r"Received: criterion='bn_scale' for layer 'c2'"):
        channel_importance(model, "bn_scale")

    inp = keras.Input((6, 6, 2))
    x = L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv")(inp))
    out = L.Dense(2, name="out")(L.GlobalAveragePooling2D()(x))
    small = _randomize(keras.Model(inp, out))
    assert (small.get_layer("bn").get_weights()[0] < 0).any()
    scores = channel_importance(small, "bn_scale")
    np.testing.assert_allclose(scores["conv"], np.abs(small.get_layer("bn").get_weights()[0]))

    # Only the groups pruned are scored: c1 has its batch norm, c2 and d1 are left whole.
    gamma = np.abs(model.get_layer("bn1").get_weights()[0])
    pruned = prune_by_ratio(model, {"c1": 0.5}, criterion="bn_scale")
    np.testing.assert_array_equal(pruned.get_layer("c1").get_weights()[0],
                                  model.get_layer("c1").get_weights()[0][
                                      ..., np.sort(np.argsort(gamma)[2:])])
    assert pruned.get_layer("c2").filters == 6


def test_taylor_scores_on_compiled_model(make_tiny_cnn, tiny_images):
    x, y, _, _ = tiny_images
    model = make_tiny_cnn()
    with pytest.raises(ValueError, match="Received: criterion='taylor' .*not compiled"):
        channel_importance(model, "taylor", data=(x, y))
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Received: data=None with criterion='taylor'"):
        channel_importance(model, "taylor")
    with pytest.raises(ValueError, match="Received: data of type tuple; expected data=.x, y."):
        channel_importance(model, "taylor", data=(x, y[:3]))

    scores = channel_importance(model, "taylor", data=(x, y))

    assert sorted(scores) == ["conv", "dense"]
    assert scores["conv"].shape == (8,) and scores["dense"].shape == (32,)
    for value in scores.values():
        assert np.isfinite(value).all() and (value >= 0).all() and value.sum() > 0


def test_prune_by_ratio_removes_lowest_l1(make_tiny_cnn):
    model = _randomize(make_tiny_cnn())
    kernel = model.get_layer("conv").get_weights()[0]
    l1 = np.abs(kernel).sum(axis=(0, 1, 2))
    expected = np.sort(np.argsort(l1)[4:])  # The 4 largest of 8.

    pruned = prune_by_ratio(model, 0.5)

    np.testing.assert_array_equal(pruned.get_layer("conv").get_weights()[0],
                                  kernel[..., expected])
    assert pruned.get_layer("dense").units == 16
    assert pruned.get_layer("out").units == 3  # The output layer is never pruned.


def test_prune_by_ratio_min_channels_and_mapping(make_tiny_cnn):
    model = _randomize(make_tiny_cnn())
    pruned = prune_by_ratio(model, 0.9, min_channels=6)
    assert pruned.get_layer("conv").filters == 6  # floor(7.2) = 7 removed, capped at 2.
    assert pruned.get_layer("dense").units == 6
    only_dense = prune_by_ratio(model, {"dense": 0.25})
    assert only_dense.get_layer("conv").filters == 8
    assert only_dense.get_layer("dense").units == 24
    with pytest.raises(ValueError, match=r"Received: ratio\['out'\]=0.5; .*model output"):
        prune_by_ratio(model, {"out": 0.5})


def test_output_layer_never_pruned(make_tiny_cnn):
    with pytest.raises(ValueError, match=r"Received: keep\['out'\]; .*model output 'out'"):
        prune_channels(make_tiny_cnn(), {"out": [0, 1]})


def test_pruned_model_trains_saves_and_exports_smaller(train_tiny_cnn, make_tiny_dataset,
                                                         tmp_path):
    data = make_tiny_dataset(96, 0, 64, 16)
    model = train_tiny_cnn(data, epochs=2)
    pruned = prune_by_ratio(model, 0.5)
    pruned.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    pruned.fit(data.x_train, data.y_train, epochs=1, batch_size=16, verbose=0)

    path = tmp_path / "pruned.keras"
    pruned.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(data.x_test, verbose=0),
                               pruned.predict(data.x_test, verbose=0), atol=1e-6)

    sizes = {}
    for name, candidate in (("original", model), ("pruned", pruned)):
        target = tmp_path / f"{name}.tflite"
        export_tflite(candidate, target, "int8", representative_data=data.x_train)
        sizes[name] = target.stat().st_size
    assert sizes["pruned"] < sizes["original"]


def test_unsupported_layers_named():
    inp = keras.Input((5, 3))
    lstm = keras.Model(inp, L.Dense(2)(L.LSTM(4, name="memory")(L.Conv1D(4, 1)(inp))))
    with pytest.raises(UnsupportedLayerError, match=r"Received: layer 'memory' \(LSTM\)"):
        prune_channels(lstm, {})
    inp = keras.Input((4,))
    lam = keras.Model(inp, L.Dense(2)(L.Lambda(lambda t: t * 2, name="twice")(inp)))
    with pytest.raises(UnsupportedLayerError, match=r"Received: layer 'twice' \(Lambda\)"):
        channel_importance(lam)


def test_keep_indices_checked():
    model = _sequential()
    with pytest.raises(ValueError, match=r"Received: keep\['c1'\]=\[0, 4\]; expected channel "
                                         r"indices in \[0, 4\)"):
        prune_channels(model, {"c1": [0, 4]})
    with pytest.raises(ValueError, match=r"Received: keep\['c1'\]=\[\]; expected a non-empty"):
        prune_channels(model, {"c1": []})
    with pytest.raises(ValueError, match=r"Received: keep\['c1'\]=\[1, 1\]; expected each"):
        prune_channels(model, {"c1": [1, 1]})
    with pytest.raises(ValueError, match=r"Received: keep\['bn1'\]; expected the name of a "
                                         r"prunable layer"):
        prune_channels(model, {"bn1": [0]})


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan"), "half", True])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match=r"Received: ratio=.*; expected a fraction in \[0, 1\)"):
        prune_by_ratio(_sequential(), ratio)


def test_bad_criterion_and_min_channels():
    with pytest.raises(ValueError, match=r"Received: criterion='l3'; expected one of"):
        prune_by_ratio(_sequential(), 0.5, criterion="l3")
    with pytest.raises(ValueError, match=r"Received: min_channels=0; expected an integer >= 1"):
        prune_by_ratio(_sequential(), 0.5, min_channels=0)


def test_step_config_round_trip_and_validation(make_tiny_cnn):
    step = StructuredPruningStep({"conv": 0.5, "dense": 0.25}, criterion="l2", min_channels=2)
    config = step.get_config()
    assert config == {"ratio": {"conv": 0.5, "dense": 0.25}, "criterion": "l2",
                      "min_channels": 2, "epochs": 2, "learning_rate": None, "skip_layers": []}
    assert StructuredPruningStep.from_config(config) == step
    assert hash(StructuredPruningStep.from_config(config)) == hash(step)
    assert StructuredPruningStep.from_config(StructuredPruningStep(0.5).get_config()) == \
        StructuredPruningStep(0.5)
    with pytest.raises(ValueError, match=r"Received: ratio\['conv'\]=1.5; expected a fraction"):
        StructuredPruningStep({"conv": 1.5})
    with pytest.raises(ValueError, match=r"Received: criterion='magnitude'"):
        StructuredPruningStep(0.5, criterion="magnitude")
    with pytest.raises(ValueError, match=r"Received: config keys \['sparsity'\]"):
        StructuredPruningStep.from_config({"ratio": 0.5, "sparsity": 1})
    with pytest.raises(ValueError, match=r"Received: skip_unsupported=True"):
        StructuredPruningStep(0.5, skip_unsupported=True)

    pruned = step.apply(_randomize(make_tiny_cnn()))
    assert pruned.get_layer("conv").filters == 4 and pruned.get_layer("dense").units == 24


def test_channel_preserving_reshape_is_sliced():
    inp = keras.Input((3, 3, 2))
    x = L.Conv2D(4, 1, name="c0")(inp)
    x = L.Reshape((-1, 4), name="rows")(x)
    x = L.Conv1D(3, 1, name="c1")(x)
    out = L.Dense(2, name="out")(L.GlobalAveragePooling1D(name="gap")(x))
    model = _randomize(keras.Model(inp, out))
    _set(model.get_layer("c1"), 0, _zero((slice(None), [2], slice(None))))

    pruned = prune_channels(model, {"c0": [0, 1, 3]})

    x = np.random.default_rng(3).normal(size=(4, 3, 3, 2)).astype("float32")
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    assert tuple(pruned.get_layer("rows").target_shape) == (-1, 3)


def test_squeeze_excite_multiply_groups_broadcast_scale():
    inp = keras.Input((4, 4, 3))
    x = L.Conv2D(6, 3, padding="same", name="x")(inp)
    se = L.Dense(2, activation="relu", name="squeeze")(L.GlobalAveragePooling2D()(x))
    se = L.Reshape((1, 1, 6), name="scale")(L.Dense(6, activation="sigmoid", name="excite")(se))
    y = L.Multiply(name="mul")([x, se])
    out = L.Dense(2, name="out")(L.GlobalAveragePooling2D(name="gap")(y))
    model = _randomize(keras.Model(inp, out))
    for reader in ("squeeze", "out"):  # Both read channels 2 and 4 of x (through pooling).
        _set(model.get_layer(reader), 0, _zero(([2, 4], slice(None))))

    pruned = prune_channels(model, {"excite": [0, 1, 3, 5]})

    assert pruned.get_layer("x").filters == 4 and pruned.get_layer("excite").units == 4
    x = np.random.default_rng(4).normal(size=(3, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_pinned_channels_explained():
    inp = keras.Input((6, 6, 2))
    p = L.Conv2D(4, 3, name="p")(inp)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw2")(p)
    q = L.Conv2D(4, 1, name="q")(inp)
    flat = L.Reshape((-1,), name="flatten_by_reshape")(q)
    x = L.Concatenate(name="cat")([L.GlobalAveragePooling2D()(x), flat])
    model = keras.Model(inp, L.Dense(2, name="out")(x))
    assert channel_importance(model) == {}
    with pytest.raises(ValueError, match=r"keep\['p'\]; .*'dw2' .*depth_multiplier=2"):
        prune_channels(model, {"p": [0]})
    with pytest.raises(ValueError, match=r"keep\['q'\]; .*reshaped by layer 'flatten_by_resh"):
        prune_channels(model, {"q": [0]})
    assert prune_by_ratio(model, 0.5).count_params() == model.count_params()


def test_nested_shared_and_subclassed_models_refused():
    inner = keras.Sequential([keras.Input((4,)), L.Dense(4)], name="inner")
    inp = keras.Input((4,))
    nested = keras.Model(inp, L.Dense(2)(inner(inp)))
    with pytest.raises(UnsupportedLayerError, match=r"layer 'inner' \(Sequential\), a nested"):
        prune_channels(nested, {})
    shared = L.Dense(4, name="shared")
    inp = keras.Input((4,))
    twice = keras.Model(inp, L.Dense(2)(shared(shared(inp))))
    with pytest.raises(ValueError, match=r"layer 'shared' \(Dense\) called 2 times"):
        prune_by_ratio(twice, 0.5)

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed"):
        prune_channels(Sub(), {})


def test_taylor_from_dataset_matches_arrays(make_tiny_cnn, tiny_images):
    x, y, _, _ = tiny_images
    model = make_tiny_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    dataset = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(32)
    from_arrays = channel_importance(model, "taylor", data=(x[:64], y[:64]))
    from_dataset = channel_importance(model, "taylor", data=dataset)
    for name, value in from_arrays.items():
        np.testing.assert_allclose(from_dataset[name], value, rtol=1e-5)
    pruned = prune_by_ratio(model, 0.5, criterion="taylor", data=(x, y))
    assert pruned.get_layer("conv").filters == 4


def test_skip_layers_keep_their_group_whole(make_tiny_cnn):
    model = _randomize(make_tiny_cnn())
    pruned = StructuredPruningStep(0.5, skip_layers=["conv"]).apply(model)
    assert pruned.get_layer("conv").filters == model.get_layer("conv").filters
    assert pruned.get_layer("dense").units == model.get_layer("dense").units // 2
    with pytest.raises(ValueError, match=r"Received: layer names \['nope'\]"):
        StructuredPruningStep(0.5, skip_layers=["nope"]).apply(model)


def test_a_plan_prunes_channels_first_then_quantizes(tiny_images, tmp_path):
    from keras_autoopt.compress import CompressionPlan, QATStep
    from keras_autoopt.data import from_arrays

    x, y, xv, yv = (np.array(a) for a in tiny_images)
    data = from_arrays(np.concatenate([x, xv]), np.concatenate([y, yv]), seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu", name="conv"),
        L.Flatten(), L.Dense(32, activation="relu", name="dense"),
        L.Dense(3, activation="softmax", name="out")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=3, verbose=0)
    plan = CompressionPlan([StructuredPruningStep(0.5, epochs=1), QATStep(epochs=1)])
    assert CompressionPlan.from_config(plan.get_config()).get_config() == plan.get_config()
    stages = plan.run(model, data, tmp_path)
    names = [stage.name for stage in stages]
    assert names == ["float32", "ptq_int8", "structured", "qat"]
    by_name = {stage.name: stage for stage in stages}
    assert by_name["structured"].model.get_layer("conv").filters == 8
    assert by_name["structured"].model.get_layer("dense").units == 16
    # Fewer weights in the file itself, not only in its gzip: the int8 file shrinks.
    assert by_name["qat"].mode == "int8"
    assert by_name["qat"].metrics["size_bytes"] < by_name["ptq_int8"].metrics["size_bytes"]
    with pytest.raises(ValueError, match=r"in the order structured, prune, cluster, qat"):
        CompressionPlan([QATStep(), StructuredPruningStep(0.5)])


def test_batch_norm_of_removed_channels_is_sliced_and_folds_exactly():
    from keras_autoopt.compress._fold import fold_for_qat

    model = _randomize(_sequential())
    pruned = prune_channels(model, {"c1": [0, 2, 3]})
    old, new = model.get_layer("bn1").get_weights(), pruned.get_layer("bn1").get_weights()
    for before, after in zip(old, new, strict=True):  # gamma, beta, mean, variance
        np.testing.assert_array_equal(after, before[[0, 2, 3]])
    folded = fold_for_qat(pruned).model
    assert "bn1" not in [layer.name for layer in folded.layers]
    conv = folded.get_layer("c1")
    assert conv.filters == 3
    # Folding by hand: kernel * gamma / sqrt(var + eps), bias -> beta + (b - mean) * scale.
    gamma, beta, mean, var = new
    scale = gamma / np.sqrt(var + pruned.get_layer("bn1").epsilon)
    kernel, bias = pruned.get_layer("c1").get_weights()
    np.testing.assert_allclose(conv.get_weights()[0], kernel * scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv.get_weights()[1], beta + (bias - mean) * scale,
                               rtol=1e-5, atol=1e-6)
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), pruned.predict(x, verbose=0),
                               atol=1e-5)
