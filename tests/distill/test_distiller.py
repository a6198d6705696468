import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.compress import CompressionPlan, PruningStep, QATStep, kernel_stats
from keras_autoopt.distill import (
    DistillationHyperModel,
    Distiller,
    FeatureDistillation,
    LogitsDistillation,
)
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import measure_tflite
from keras_autoopt.search import DenseHyperModel, OptimizerSpace


@pytest.fixture(scope="module")
def data(make_tiny_images):
    x, y = make_tiny_images(n=240, noise=0.3)
    return x[:180], y[:180], x[180:], y[180:]


def _student(hidden=8, name="student"):
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(name="flat"),
        keras.layers.Dense(hidden, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ], name=name)


@pytest.fixture(scope="module")
def teacher(data):
    x, y, _, _ = data
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(32, activation="relu", name="dense"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ], name="teacher")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    return model


def test_distiller_trains_the_student_and_predicts_with_it(teacher, data):
    x, y, xt, yt = data
    keras.utils.set_random_seed(1)
    distiller = Distiller(teacher, _student())
    distiller.compile("adam", metrics=["accuracy"], alpha=0.3, temperature=2.0)
    teacher_before = teacher.get_weights()
    history = distiller.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert set(history.history) >= {"loss", "student_loss", "distillation_loss", "accuracy"}
    result = distiller.evaluate(xt, yt, verbose=0, return_dict=True)
    assert result["accuracy"] > 0.8  # chance is 1/3
    np.testing.assert_allclose(distiller.predict(xt, verbose=0),
                               distiller.student.predict(xt, verbose=0), rtol=1e-6)
    # Only the student learns: ten epochs leave every teacher weight as it was.
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(after, before)


def test_loss_terms_match_a_hand_computation(teacher, data):
    x, y, _, _ = data
    x, y = x[:32], y[:32]
    keras.utils.set_random_seed(2)
    student = _student()
    distiller = Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.0), alpha=0.25, temperature=3.0)
    logs = distiller.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False).history
    p_t = teacher.predict(x, verbose=0).astype("float64")
    p_s = student.predict(x, verbose=0).astype("float64")
    ce = -np.mean(np.log(p_s[np.arange(32), y]))
    soft_t = p_t ** (1 / 3) / np.sum(p_t ** (1 / 3), axis=1, keepdims=True)
    soft_s = p_s ** (1 / 3) / np.sum(p_s ** (1 / 3), axis=1, keepdims=True)
    kl = np.mean(np.sum(soft_t * (np.log(soft_t) - np.log(soft_s)), axis=1)) * 9
    assert logs["student_loss"][0] == pytest.approx(ce, rel=1e-4)
    assert logs["distillation_loss"][0] == pytest.approx(kl, rel=1e-3, abs=1e-6)
    assert logs["loss"][0] == pytest.approx(0.25 * ce + 0.75 * kl, rel=1e-3)


def test_logits_distillation_formula():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    loss = LogitsDistillation(temperature=2.0)
    soft_t = np.exp(t / 2) / np.exp(t / 2).sum(1, keepdims=True)
    log_s = s / 2 - np.log(np.exp(s / 2).sum(1, keepdims=True))
    expected = np.mean(np.sum(soft_t * (np.log(soft_t) - log_s), axis=1)) * 4
    assert float(loss.compute(t.astype("float32"), s.astype("float32"))) == pytest.approx(
        expected, rel=1e-4)


def test_feature_distillation_with_a_projection(teacher, data):
    x, y, _, _ = data
    keras.utils.set_random_seed(3)
    distiller = Distiller(
        teacher, _student(hidden=16),
        distillation_losses=[LogitsDistillation(2.0), FeatureDistillation("dense", "hidden")],
        distillation_loss_weights=[1.0, 0.5])
    assert isinstance(distiller._projections[0], keras.layers.Dense)
    distiller.compile("adam", metrics=["accuracy"], alpha=0.2)
    history = distiller.fit(x, y, epochs=6, batch_size=32, verbose=0)
    losses = history.history["distillation_loss"]
    assert losses[-1] < losses[0]
    assert distiller._projections[0].kernel.shape == (16, 32)


def test_caching_gives_the_same_result(teacher, data):
    x, y, _, _ = data
    weights = []
    for cache in (False, True):
        keras.utils.set_random_seed(4)
        distiller = Distiller(teacher, _student())
        distiller.compile(keras.optimizers.SGD(0.05), alpha=0.5, temperature=2.0)
        distiller.fit(x, y, epochs=2, batch_size=30, verbose=0, shuffle=False,
                      cache_teacher=cache)
        weights.append(distiller.student.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_composes_with_pruning(teacher, data):
    x, y, _, _ = data
    plan = CompressionPlan([PruningStep(0.6, schedule="constant", frequency=2)])
    wrapped = plan.apply(_student(hidden=16))
    distiller = Distiller(teacher, wrapped)
    distiller.compile("adam", metrics=["accuracy"], alpha=0.3)
    history = distiller.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=plan.callbacks())
    assert history.history["compression_sparsity"][-1] == pytest.approx(0.6, abs=0.02)
    stripped = plan.strip(distiller.student)
    assert kernel_stats(stripped)["hidden"]["sparsity"] == pytest.approx(0.6, abs=0.01)


def test_composes_with_qat_and_exports_int8(teacher, data, tmp_path):
    x, y, xt, yt = data
    plan = CompressionPlan([QATStep()])
    quantized = plan.apply(_student(hidden=16))
    distiller = Distiller(teacher, quantized)
    distiller.compile("adam", metrics=["accuracy"], alpha=0.3)
    distiller.fit(x, y, epochs=6, batch_size=32, verbose=0)
    result = export_tflite(distiller.student, tmp_path / "s.tflite", mode="int8",
                           representative_data=x)
    assert measure_tflite(result.path, xt, yt).accuracy > 0.7


def test_config_round_trip(teacher):
    distiller = Distiller(
        teacher, _student(hidden=16),
        distillation_losses=[LogitsDistillation(4.0, loss="categorical_crossentropy"),
                             FeatureDistillation("dense", "hidden", loss="cosine")],
        distillation_loss_weights=[1.0, 0.25])
    distiller.compile("adam", alpha=0.4)
    config = distiller.get_config()
    again = Distiller.from_config(config)
    rebuilt = again.get_config()

    def layers(model_config):
        return [(layer["class_name"], layer["config"]["name"])
                for layer in model_config["config"]["layers"]]

    for key in ("teacher", "student"):
        assert layers(rebuilt.pop(key)) == layers(config[key])
    assert rebuilt == {k: v for k, v in config.items() if k not in ("teacher", "student")}
    assert again.alpha == 0.4 and again.temperature == 4.0


def test_the_student_saves_and_exports_alone(teacher, data, tmp_path):
    x, y, xt, _ = data
    distiller = Distiller(teacher, _student())
    distiller.compile("adam", alpha=0.5)
    distiller.fit(x, y, epochs=1, verbose=0)
    distiller.student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    assert loaded.count_params() == distiller.student.count_params()
    np.testing.assert_allclose(loaded.predict(xt, verbose=0),
                               distiller.predict(xt, verbose=0), rtol=1e-5)


def test_distillation_hypermodel_search(teacher, data, tmp_path):
    x, y, xt, yt = data
    students = DenseHyperModel((8, 8, 1), 3, layers=(1, 1), units=(8, 16),
                               optimizer_space=OptimizerSpace(optimizers=("adam",),
                                                              epochs=(2, 2), batch_sizes=(32,)))
    hypermodel = DistillationHyperModel(teacher, students, temperature=(1.0, 8.0))
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2,
                            directory=tmp_path, project_name="d", seed=0)
    tuner.search(x, y, validation_data=(xt, yt), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    assert all(1.0 <= t.hyperparameters.values["temperature"] <= 8.0 for t in trials)
    best = tuner.get_best_models(1)[0]
    assert best.student.output_shape == (None, 3)
    # The best model is the best trial's: its student has that trial's width and
    # scores that trial's val_accuracy on the validation data.
    best_trial = tuner.oracle.get_best_trials(1)[0]
    hidden = [layer for layer in best.student.layers if isinstance(layer, keras.layers.Dense)]
    assert hidden[0].units == best_trial.hyperparameters.values["dense_units"]
    accuracy = float(np.mean(best.predict(xt, verbose=0).argmax(axis=1) == yt))
    assert accuracy == pytest.approx(best_trial.score, abs=1e-6)


def test_untrained_teacher_warns(data):
    x, y, _, _ = data
    keras.utils.set_random_seed(5)
    untrained = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(3, activation="softmax",
                                                     kernel_initializer="zeros")])
    distiller = Distiller(untrained, _student())
    distiller.compile("adam")
    with pytest.warns(UserWarning, match=r"The teacher classifies 33.3% of the first 180 "
                                         r"training samples \(chance: 33.3%\); is it trained"):
        distiller.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize(("factory", "message"), [
    (lambda t: Distiller(t, keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                              keras.layers.Dense(4)])),
     r"Received: teacher output shape \(3,\) and student output shape \(4,\); expected the "
     r"same shape"),
    (lambda t: Distiller(t, _student()).compile(alpha=1.5),
     r"Received: alpha=1.5; expected a float in \[0, 1\]"),
    (lambda t: Distiller(t, _student()).compile(temperature=0),
     r"Received: temperature=0; expected a positive number"),
    (lambda t: LogitsDistillation(temperature=-1.0),
     r"Received: temperature=-1.0; expected a positive number"),
    (lambda t: Distiller(t, _student(), teacher_outputs="logits"),
     r"Received: teacher_outputs='logits'; expected 'probabilities'"),
    (lambda t: Distiller(t, _student(), FeatureDistillation("dense", "nope")),
     r"Received: student_layer='nope'; expected one of the student's layers"),
    (lambda t: Distiller(t, _student(), [LogitsDistillation()], [1.0, 2.0]),
     r"Received: distillation_loss_weights=\[1.0, 2.0\]; expected 1 non-negative"),
    (lambda t: Distiller(t, _student(hidden=16), FeatureDistillation("conv", "hidden")),
     r"Received: student layer 'hidden' with output shape \(16,\) and teacher layer 'conv'"),
])
def test_bad_inputs_are_named(teacher, factory, message):
    with pytest.raises(ValueError, match=message):
        factory(teacher)


def test_caching_needs_numpy(teacher, data):
    x, y, _, _ = data
    from keras_autoopt._backend import tf

    distiller = Distiller(teacher, _student())
    distiller.compile("adam")
    with pytest.raises(ValueError, match=r"Received: cache_teacher=True with x of type"):
        distiller.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), cache_teacher=True)


def test_augmentation_is_seen_by_teacher_and_student(teacher, data):
    # Every training batch becomes all zeros: if the teacher sees the augmented
    # batch too, the student learns the teacher's output on zeros.
    x, y, _, _ = data
    keras.utils.set_random_seed(2)
    zeros = keras.layers.Lambda(lambda batch: batch * 0.0, name="to_zeros")
    distiller = Distiller(teacher, _student(), augmentation=zeros)
    distiller.compile(keras.optimizers.Adam(0.05), alpha=0.0, temperature=1.0)
    distiller.fit(x, y, epochs=15, batch_size=60, verbose=0)
    blank = np.zeros((1, 8, 8, 1), "float32")
    np.testing.assert_allclose(distiller.student.predict(blank, verbose=0),
                               teacher.predict(blank, verbose=0), atol=0.02)


def test_augmentation_trains_and_round_trips(teacher, data):
    x, y, xt, yt = data
    keras.utils.set_random_seed(1)
    distiller = Distiller(teacher, _student(), augmentation=keras.layers.GaussianNoise(0.1))
    distiller.compile("adam", metrics=["accuracy"], alpha=0.3, temperature=2.0)
    distiller.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert distiller.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"] > 0.8
    again = Distiller.from_config(distiller.get_config())
    assert isinstance(again.augmentation, keras.layers.GaussianNoise)
    assert again.augmentation.stddev == 0.1


def test_augmentation_errors(teacher, data):
    x, y, _, _ = data
    with pytest.raises(ValueError, match=r"Received: augmentation of type function; expected "
                                         r"None or a tf_keras Layer"):
        Distiller(teacher, _student(), augmentation=lambda batch: batch)
    distiller = Distiller(teacher, _student(), augmentation=keras.layers.GaussianNoise(0.1))
    distiller.compile("adam")
    with pytest.raises(ValueError, match=r"Received: cache_teacher=True with augmentation="
                                         r"'gaussian_noise.*'; expected cache_teacher=False"):
        distiller.fit(x, y, epochs=1, verbose=0, cache_teacher=True)
    students = DenseHyperModel((8, 8, 1), 3)
    with pytest.raises(ValueError, match=r"Received: cache_teacher=True with an augmentation"):
        DistillationHyperModel(teacher, students, cache_teacher=True,
                               augmentation=keras.layers.GaussianNoise(0.1))
    hypermodel = DistillationHyperModel(teacher, students,
                                        augmentation=keras.layers.GaussianNoise(0.1))
    assert hypermodel.cache_teacher is False
    assert DistillationHyperModel(teacher, students).cache_teacher is True
