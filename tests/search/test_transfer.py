import json

import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.search import (
    BASE_LAYER_NAME,
    STRATEGIES,
    TransferHyperModel,
    freeze_for_strategy,
)

# The base's layers with weights below the classifier, bottom to top.
WEIGHTED = ["conv_0", "bn_0", "conv_1", "bn_1"]


def _tiny_base(classifier=True):
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_0")(inputs)
    x = keras.layers.BatchNormalization(name="bn_0")(x)
    x = keras.layers.Activation("relu", name="relu_0")(x)
    x = keras.layers.MaxPooling2D(2, name="pool_0")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_1")(x)
    x = keras.layers.BatchNormalization(name="bn_1")(x)
    x = keras.layers.Activation("relu", name="relu_1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if classifier:
        x = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, x, name="tiny_base")


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, make_tiny_images):
    keras.utils.set_random_seed(0)
    x, y = make_tiny_images()  # all 120 samples of `tiny_images`
    model = _tiny_base()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("base") / "base.keras"
    model.save(path)
    return path


@pytest.fixture
def base(base_path):
    return keras.models.load_model(base_path, compile=False)


def _fixed(base, **kwargs):
    """A HyperModel whose every hyperparameter has a single value."""
    args = {"strategies": ("top_k",), "top_k": (2, 2), "head_units": (0,),
            "head_dropout": (0.0, 0.0), "head_learning_rate": (1e-2, 1e-2),
            "fine_tune_learning_rate_factor": (0.1, 0.1), "head_epochs": (1, 1),
            "fine_tune_epochs": (1, 1), "batch_sizes": (32,), **kwargs}
    return TransferHyperModel(base, 3, **args)


def _weights(model, layer):
    return [w.copy() for w in model.get_layer(layer).get_weights()]


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs, self.rates = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.rates.append(float(keras.backend.get_value(self.model.optimizer.learning_rate)))


def test_default_feature_layer_drops_the_classifier(base):
    hypermodel = TransferHyperModel(base, 4)
    assert hypermodel.strategies == STRATEGIES
    assert hypermodel.feature_layer_name == "gap"
    assert hypermodel.fine_tunable_layers == WEIGHTED
    model = hypermodel.build(kt.HyperParameters())
    assert model.output_shape == (None, 4)
    trunk = model.get_layer(BASE_LAYER_NAME)
    assert trunk.layers[-1].name == "gap"
    assert "classifier" not in [layer.name for layer in trunk.layers]
    assert not trunk.trainable  # phase 1: the whole base is frozen
    head = {w.name.split("/")[0] for w in model.trainable_weights}
    assert head <= {"head_dense", "output"}


def test_feature_layer_choices(base):
    # Sequential: the classifier is dropped too.
    sequential = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.Flatten(name="flat"), keras.layers.Dense(3, "softmax", name="out")])
    assert TransferHyperModel(sequential, 2).feature_layer_name == "flat"
    # A base without a classifier is used whole.
    assert TransferHyperModel(_tiny_base(classifier=False), 3).feature_layer_name == "gap"
    # A feature map is pooled before the head.
    hypermodel = TransferHyperModel(base, 3, feature_layer="relu_1")
    assert hypermodel.fine_tunable_layers == WEIGHTED
    model = hypermodel.build(kt.HyperParameters())
    assert model.get_layer("feature_pool").output_shape == (None, 8)
    hypermodel = TransferHyperModel(base, 3, feature_layer="pool_0")
    assert hypermodel.fine_tunable_layers == ["conv_0", "bn_0"]


@pytest.mark.parametrize(
    ("strategy", "top_k", "expected"),
    [
        ("feature_extraction", None, []),
        ("top_k", 1, ["bn_1"]),
        ("top_k", 2, ["conv_1", "bn_1"]),
        ("top_k", 3, ["bn_0", "conv_1", "bn_1"]),
        ("top_k", 10, WEIGHTED),
        ("full", None, WEIGHTED),
    ],
)
def test_freeze_for_strategy_sets_exactly_those_layers(base, strategy, top_k, expected):
    model = TransferHyperModel(base, 3, head_units=(16,)).build(kt.HyperParameters())
    assert freeze_for_strategy(model, strategy, top_k) == expected
    trunk = model.get_layer(BASE_LAYER_NAME)
    flags = {layer.name: layer.trainable for layer in trunk.layers}
    assert flags == {name: name in expected for name in flags}
    assert model.get_layer("head_dense").trainable and model.get_layer("output").trainable
    # Trainable weights: the head's plus the unfrozen layers' (BN: gamma and beta).
    owners = {w.name.split("/")[0] for w in model.trainable_weights}
    assert owners == {"head_dense", "output", *expected}


def test_freeze_for_strategy_works_on_a_base_alone(base):
    assert freeze_for_strategy(base, "top_k", 1) == ["classifier"]
    assert [layer.name for layer in base.layers if layer.trainable] == ["classifier"]
    assert freeze_for_strategy(base, "feature_extraction") == []
    assert not base.trainable


def test_two_phase_fit_trains_the_head_then_the_top_layers(base, tiny_images):
    x, y, xv, yv = tiny_images
    before = {name: _weights(base, name) for name in WEIGHTED}
    hypermodel = _fixed(base, head_epochs=(2, 2), fine_tune_epochs=(3, 3))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    recorder = _Recorder()
    history = hypermodel.fit(hp, model, x, y, validation_data=(xv, yv), verbose=0,
                             callbacks=[recorder])
    assert isinstance(history, keras.callbacks.History)
    assert len(history.history["val_accuracy"]) == 2 + 3
    assert len(history.history["loss"]) == 5
    assert history.epoch == [0, 1, 2, 3, 4]
    # The callbacks ran in both phases, with continuous epochs and the phase-2 rate.
    assert recorder.epochs == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(recorder.rates, [1e-2] * 2 + [1e-3] * 3, rtol=1e-6)
    # top_k=2: conv_1 and bn_1 were fine-tuned, the layers below kept their weights.
    trunk = model.get_layer(BASE_LAYER_NAME)
    assert [layer.name for layer in trunk.layers if layer.trainable] == ["conv_1", "bn_1"]
    for name in ("conv_0", "bn_0"):
        for got, want in zip(_weights(trunk, name), before[name], strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.allclose(_weights(trunk, "conv_1")[0], before["conv_1"][0])
    # The user's base was neither trained nor shared.
    for name in WEIGHTED:
        for got, want in zip(_weights(base, name), before[name], strict=True):
            np.testing.assert_array_equal(got, want)
    assert all(layer.trainable for layer in base.layers)
    other = hypermodel.build(kt.HyperParameters())
    np.testing.assert_array_equal(
        _weights(other.get_layer(BASE_LAYER_NAME), "conv_1")[0], before["conv_1"][0])


def test_batch_norm_stays_in_inference_mode_when_unfrozen(base, tiny_images):
    x, y, xv, yv = tiny_images
    hypermodel = _fixed(base, strategies=("full",))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, x, y, validation_data=(xv, yv), verbose=0)
    trunk = model.get_layer(BASE_LAYER_NAME)
    for name in ("bn_0", "bn_1"):
        layer, source = trunk.get_layer(name), base.get_layer(name)
        assert layer.trainable
        # gamma was fine-tuned; the moving statistics were not touched.
        assert not np.allclose(layer.gamma.numpy(), source.gamma.numpy())
        np.testing.assert_array_equal(layer.moving_mean.numpy(), source.moving_mean.numpy())
        np.testing.assert_array_equal(layer.moving_variance.numpy(),
                                      source.moving_variance.numpy())
    # No dropout in the head: training and inference mode give the same output.
    np.testing.assert_allclose(model(x, training=True).numpy(),
                               model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_epochs_and_initial_epoch_in_kwargs_span_both_phases(base, tiny_images):
    x, y, xv, yv = tiny_images
    hypermodel = _fixed(base, head_epochs=(2, 2), fine_tune_epochs=(2, 2), batch_sizes=(16,))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    recorder = _Recorder()
    history = hypermodel.fit(hp, model, x, y, validation_data=(xv, yv), verbose=0,
                             callbacks=[recorder], epochs=3, initial_epoch=1, batch_size=45)
    # 3 epochs split 2:1 (head:fine-tune ratio 2:2, rounded); epoch 0 is skipped.
    assert recorder.epochs == [1, 2]
    np.testing.assert_allclose(recorder.rates, [1e-2, 1e-3], rtol=1e-6)
    assert history.epoch == [1, 2]
    assert history.params["steps"] == 2  # batch_size=45 won over the searched 16
    assert "batch_size" not in hp.values

    recorder = _Recorder()
    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model, x, y, verbose=0, callbacks=[recorder], epochs=1)
    assert recorder.epochs == [0]  # epochs=1: the head phase only
    assert not model.get_layer(BASE_LAYER_NAME).trainable


class _KeepsHistories(TransferHyperModel):
    def fit(self, hp, model, *args, **kwargs):
        history = super().fit(hp, model, *args, **kwargs)
        self.histories.append(history.history)
        return history


def test_random_search_over_strategies(base, tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    hypermodel = _KeepsHistories(base, 3, head_units=(0, 8), batch_sizes=(32,),
                                 head_learning_rate=(1e-2, 1e-2),
                                 fine_tune_learning_rate_factor=(0.3, 1.0),
                                 head_epochs=(1, 1), fine_tune_epochs=(1, 1))
    hypermodel.histories = []
    tuner = kt.RandomSearch(hypermodel, objective=kt.Objective("val_loss", "min"),
                            max_trials=3, seed=2, directory=tmp_path, project_name="transfer")
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 3
    assert len({t.hyperparameters.values["strategy"] for t in trials}) >= 2
    # The objective of each trial is the best epoch over both phases.
    for trial, history in zip(trials, hypermodel.histories, strict=True):
        assert len(history["val_loss"]) == 2
        assert trial.score == pytest.approx(min(history["val_loss"]))
        assert trial.best_step == int(np.argmin(history["val_loss"]))
    # The best model is reloaded from the checkpoint of its best epoch, taken in phase 2:
    # the keras-tuner checkpoint callback ran in both phases.
    best_trial = tuner.oracle.get_best_trials(1)[0]
    history = hypermodel.histories[trials.index(best_trial)]["val_loss"]
    assert best_trial.best_step == 1 and history[0] - history[1] > 1e-3
    best = tuner.get_best_models(1)[0]
    assert BASE_LAYER_NAME in [layer.name for layer in best.layers]
    loss = best.evaluate(xv, yv, batch_size=32, verbose=0)[0]
    assert loss == pytest.approx(history[1], rel=1e-5)


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_base_from_a_saved_file(base, tmp_path, suffix):
    path = tmp_path / f"saved{suffix}"
    base.save(path)
    hypermodel = TransferHyperModel(str(path), 3, name="from_file")
    assert hypermodel.base_model_path == str(path)
    trunk = hypermodel.build(kt.HyperParameters()).get_layer(BASE_LAYER_NAME)
    np.testing.assert_array_equal(_weights(trunk, "conv_1")[0], _weights(base, "conv_1")[0])
    config = hypermodel.get_config()
    assert config["base_model"] == str(path) and config["base_model_config"] is None
    again = TransferHyperModel.from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config


def test_config_of_a_model_object_needs_the_model_back(base):
    hypermodel = TransferHyperModel(base, 3, top_k=(1, 2), strategies=("full", "top_k"),
                                    feature_layer="gap", name="mine")
    config = json.loads(json.dumps(hypermodel.get_config()))
    assert config["base_model"] is None
    assert config["base_model_config"]["class_name"] == "Functional"
    with pytest.raises(ValueError, match=r"Received: base_model=None for a config made from "
                                         r"a model object; expected the trained base model"):
        TransferHyperModel.from_config(config)
    again = TransferHyperModel.from_config(config, base_model=base)
    assert again.get_config() == config
    assert again.top_k == (1, 2) and again.name == "mine"
    with pytest.raises(ValueError, match=r"architecture differs"):
        TransferHyperModel.from_config(config, base_model=_tiny_base(classifier=False))


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategies": ("fine",)}, r"Received: strategies=\('fine',\); expected choices among"),
        ({"top_k": (0, 2)}, r"Received: top_k=\(0, 2\); expected a pair \(low, high\) of "
                            r"integers with 1 <= low <= high"),
        ({"feature_layer": "nope"}, r"Received: feature_layer='nope'; expected the name of a "
                                    r"layer of base_model 'tiny_base', one of \['image'"),
        ({"feature_layer": "image"}, r"Received: feature_layer='image'; expected a layer above"),
        ({"num_classes": 1}, r"Received: num_classes=1; expected an integer >= 2"),
        ({"head_units": (0, -8)}, r"Received: head_units=-8; expected an integer >= 0"),
        ({"head_epochs": (0, 3)}, r"Received: head_epochs=\(0, 3\)"),
        ({"fine_tune_learning_rate_factor": (0.1, 2.0)},
         r"Received: fine_tune_learning_rate_factor=\(0.1, 2.0\)"),
        ({"base_model": "weights.txt"}, r"Received: base_model='weights.txt'; expected a "
                                        r"tf_keras model or the path"),
        ({"base_model": 3},
         r"Received: base_model of type int; expected a tf_keras or Keras 3 model"),
    ],
)
def test_bad_arguments_are_named(base, kwargs, message):
    args = {"base_model": base, "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        TransferHyperModel(args.pop("base_model"), args.pop("num_classes"), **args)


def test_bad_bases_are_named(tmp_path):
    missing = tmp_path / "missing.keras"
    with pytest.raises(ValueError, match=r"Received: base_model='.*missing.keras' \(no such "
                                         r"file\); expected a tf_keras model or the path"):
        TransferHyperModel(missing, 3)
    with pytest.raises(ValueError, match=r"expected a functional or Sequential model"):
        TransferHyperModel(_Subclassed(), 3)


def test_bad_freeze_and_fit_arguments_are_named(base, tiny_images):
    with pytest.raises(ValueError, match=r"Received: strategy='all'; expected one of"):
        freeze_for_strategy(base, "all")
    with pytest.raises(ValueError, match=r"Received: top_k=0; expected a positive integer"):
        freeze_for_strategy(base, "top_k", 0)
    with pytest.raises(ValueError, match=r"Received: top_k=None; expected a positive integer"):
        freeze_for_strategy(base, "top_k")
    x, y, _, _ = tiny_images
    with pytest.raises(ValueError, match=r"Received: model='tiny_base' without a "
                                         r"'transfer_base' layer"):
        _fixed(base).fit(kt.HyperParameters(), base, x, y)
