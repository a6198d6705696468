"""Failing trials fail alone with their reason; a broken setup stops before any trial."""

import numpy as np
import pytest

from keras_autoopt._backend import keras, kt, tf
from keras_autoopt.search import (
    CompressionSpace,
    DeployableTuner,
    FailOnNonFiniteLoss,
    NonFiniteLossError,
    SetupError,
    check_setup,
    make_tuner,
    oracle_objectives,
)

FAULTS = ("none", "nan", "unbuildable", "uncompressible", "unexportable")


class _MyDense(keras.layers.Layer):
    """A custom layer TF-MOT cannot prune."""

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 16))

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)


def _svd_features(t):
    # tf.Svd is neither a TFLite builtin nor allowed as a flex op: the converter rejects it.
    singular = tf.linalg.svd(tf.reshape(t, (-1, 8, 8)), compute_uv=False)
    return tf.concat([t, singular], axis=-1)


class FaultyHyperModel(kt.HyperModel):
    """One trial per fault: a healthy model, and one failing at each stage of a trial."""

    def __init__(self, faults=FAULTS):
        super().__init__()
        self.faults = list(faults)
        self.fit_calls = 0

    def build(self, hp):
        fault = hp.Choice("fault", self.faults)
        inputs = keras.Input((64,))
        x = inputs
        if fault == "unbuildable":
            x = keras.layers.Reshape((7, 7))(x)  # 64 values cannot be 7x7
        elif fault == "uncompressible":
            x = _MyDense()(x)
        elif fault == "unexportable":
            x = keras.layers.Lambda(_svd_features, output_shape=(72,))(x)
        x = keras.layers.Dense(16, activation="relu")(x)
        outputs = keras.layers.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        optimizer = keras.optimizers.SGD(1e12) if fault == "nan" else keras.optimizers.Adam(1e-2)
        model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        self.fit_calls += 1
        kwargs.update(epochs=3, batch_size=32, verbose=0)
        return model.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def digits_flat():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype("float32")
    y = data.target.astype("int32")
    return x[:300], y[:300], x[300:400], y[300:400]


def _grid_oracle(max_trials, objectives=("val_accuracy", "gzip_bytes")):
    return kt.oracles.GridSearchOracle(objective=oracle_objectives(list(objectives)),
                                       max_trials=max_trials, seed=0)


def test_each_faulty_trial_fails_alone_with_its_reason(tmp_path, digits_flat):
    x, y, x_val, y_val = digits_flat
    tuner = DeployableTuner(
        FaultyHyperModel(), _grid_oracle(len(FAULTS)), objectives=["val_accuracy", "gzip_bytes"],
        compression=CompressionSpace(sparsities=[0.5], clusters=[0], quantization=["float32"],
                                     prune_epochs=1),
        max_consecutive_failed_trials=len(FAULTS), directory=tmp_path, project_name="s")
    tuner.search(x, y, validation_data=(x_val, y_val))

    by_fault = {t.hyperparameters.values["fault"]: t for t in tuner.oracle.trials.values()}
    assert sorted(by_fault) == sorted(FAULTS)
    assert by_fault["none"].status == "COMPLETED"
    assert by_fault["none"].metrics.get_last_value("val_accuracy") > 0.5
    reasons = {
        "nan": r"NonFiniteLossError: Training loss became (nan|inf) at epoch 1, batch \d+",
        "unbuildable": r"cannot reshape|Reshape|total size",
        "uncompressible": r"UnsupportedLayerError: Layer '.*' \(_MyDense\) cannot be wrapped",
        "unexportable": r"ConverterError|tf.Svd",
    }
    for fault, pattern in reasons.items():
        trial = by_fault[fault]
        assert trial.status == "FAILED", fault
        assert trial.message and __import__("re").search(pattern, trial.message), (
            fault, (trial.message or "")[-400:])
    # Nothing of a failed trial is exported; the completed one has its .tflite.
    assert (tmp_path / "s" / f"trial_{by_fault['none'].trial_id}" / "model.tflite").exists()
    assert not (tmp_path / "s" / f"trial_{by_fault['unexportable'].trial_id}"
                / "model.tflite").exists()
    assert [p.trial_id for p in tuner.get_pareto_front()] == [by_fault["none"].trial_id]


def test_consecutive_failures_stop_the_search(tmp_path, digits_flat):
    x, y, x_val, y_val = digits_flat
    hypermodel = FaultyHyperModel(faults=["nan", "unbuildable", "none"])
    tuner = make_tuner("grid", hypermodel, directory=tmp_path, max_trials=3,
                       max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match="Number of consecutive failures exceeded the limit "
                                           "of 2"):
        tuner.search(x, y, validation_data=(x_val, y_val))
    assert len(tuner.oracle.trials) == 2


def test_retries_rerun_an_invalid_trial_but_never_a_diverging_one(tmp_path, digits_flat):
    x, y, x_val, y_val = digits_flat
    hypermodel = FaultyHyperModel(faults=["none", "unbuildable", "nan"])
    tuner = make_tuner("grid", hypermodel, directory=tmp_path, max_trials=3,
                       max_retries_per_trial=2, max_consecutive_failed_trials=3)
    tuner.search(x, y, validation_data=(x_val, y_val))
    statuses = {t.hyperparameters.values["fault"]: t.status for t in tuner.oracle.trials.values()}
    assert statuses == {"unbuildable": "FAILED", "nan": "FAILED", "none": "COMPLETED"}
    runs = {tuner.oracle.trials[i].hyperparameters.values["fault"]: n
            for i, n in tuner.oracle._run_times.items()}
    assert runs == {"unbuildable": 3, "nan": 1, "none": 1}
    # fit is reached only by the diverging and the healthy trial (the other never builds).
    assert hypermodel.fit_calls == 2


@pytest.mark.parametrize("argument", ["max_retries_per_trial", "max_consecutive_failed_trials"])
def test_failure_limits_are_validated(tmp_path, argument):
    with pytest.raises(ValueError, match=rf"Received: {argument}=-1"):
        make_tuner("random", FaultyHyperModel(), directory=tmp_path, **{argument: -1})
    with pytest.raises(ValueError, match=rf"Received: {argument}=-1"):
        DeployableTuner(FaultyHyperModel(), _grid_oracle(2), objectives=["val_accuracy",
                                                                          "gzip_bytes"],
                        directory=tmp_path, **{argument: -1})


@pytest.mark.parametrize(("x_shape", "labels", "pattern"), [
    ((20, 8, 8), np.arange(20) % 10,
     r"Received: x with samples of shape \(8, 8\); expected \(64,\)"),
    ((20, 64), np.arange(20) % 12,
     r"Received: y with labels in \[0, 11\]; expected class indices in \[0, 9\]"),
    ((20, 64), -(np.arange(20) % 3),
     r"Received: y with labels in \[-2, 0\]"),
])
def test_broken_setup_stops_before_the_first_trial(tmp_path, x_shape, labels, pattern):
    hypermodel = FaultyHyperModel(faults=["none"])
    tuner = make_tuner("random", hypermodel, directory=tmp_path, max_trials=3)
    x = np.zeros(x_shape, "float32")
    with pytest.raises(SetupError, match=pattern):
        tuner.search(x, labels, validation_data=(np.zeros((4, 64), "float32"), np.zeros(4)))
    assert hypermodel.fit_calls == 0
    assert tuner.oracle.trials == {}


def test_broken_validation_split_and_one_hot_width_are_named():
    hypermodel = FaultyHyperModel(faults=["none"])
    x, y = np.zeros((8, 64), "float32"), np.zeros(8, "int32")
    with pytest.raises(SetupError, match=r"Received: validation_data with samples of shape "
                                         r"\(63,\); expected \(64,\)"):
        check_setup(hypermodel, x, y, (np.zeros((4, 63), "float32"), np.zeros(4)))
    with pytest.raises(SetupError, match=r"Received: y one-hot with 3 columns; expected 10"):
        check_setup(hypermodel, x, np.eye(3)[np.zeros(8, int)])
    check_setup(hypermodel, x, np.eye(10)[np.zeros(8, int)])  # the right width passes
    check_setup(hypermodel, iter([]), None)  # non-arrays are not checked


def test_fail_on_non_finite_loss_names_epoch_and_batch():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.ones((8, 4), "float32")
    x[5, 0] = np.nan
    seen = []  # (epoch, batch) of every batch that ended, recorded before the check runs
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append((epoch, None)),
        on_train_batch_end=lambda batch, logs: seen.append((seen[-1][0], batch)))
    with pytest.raises(NonFiniteLossError, match=r"Training loss became nan at epoch 1, "
                                                  r"batch 2;"):
        model.fit(x, np.zeros(8), batch_size=4, epochs=3, verbose=0,
                  callbacks=[recorder, FailOnNonFiniteLoss()])
    # fit stopped at that batch: no later batch and no second epoch ran. (That
    # keras-tuner then fails the trial without a retry is checked by
    # test_retries_rerun_an_invalid_trial_but_never_a_diverging_one.)
    assert seen == [(0, None), (0, 0), (0, 1)]
