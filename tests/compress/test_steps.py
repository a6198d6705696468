import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.compress import (
    ClusteringStep,
    CompressionHyperModel,
    CompressionPlan,
    PruningStep,
    QATStep,
    UnsupportedLayerError,
    kernel_stats,
    resolve_scheme,
    train_mixed_precision,
)
from keras_autoopt.measure import TFLiteRunner
from keras_autoopt.search import DenseHyperModel, OptimizerSpace


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset(n=180, seed=0, n_train=120, n_val=30)


@pytest.fixture(scope="module")
def trained(dataset, train_tiny_cnn):
    return train_tiny_cnn(dataset, epochs=5)


def _tflite_weight(path, shape_size):
    """The constant tensor of the .tflite with ``shape_size`` elements, as NumPy."""
    runner = TFLiteRunner(path)
    interpreter = runner.interpreter
    for detail in interpreter.get_tensor_details():
        if int(np.prod(detail["shape"])) == shape_size and len(detail["shape"]) >= 2:
            try:
                return np.asarray(interpreter.get_tensor(detail["index"]))
            except ValueError:
                continue
    raise AssertionError(f"no constant tensor of {shape_size} elements")


def test_pruning_reaches_target_and_zeros_are_in_the_tflite(trained, dataset, tmp_path):
    plan = CompressionPlan([PruningStep(0.75, epochs=3)], export_mode="float32",
                           learning_rate=1e-3, batch_size=16)
    stages = plan.run(trained, dataset, tmp_path)
    assert [s.name for s in stages] == ["float32", "prune"]
    prune = stages[-1]
    for layer in ("conv", "dense", "out"):
        assert prune.layers[layer]["sparsity"] == pytest.approx(0.75, abs=0.01)
    assert prune.target_reached is True and prune.problems == []
    assert "compression_sparsity" in prune.history
    kernel = _tflite_weight(prune.path, 128 * 32)
    assert np.mean(kernel == 0) == pytest.approx(0.75, abs=0.01)
    # the user's model was not modified
    assert kernel_stats(trained)["dense"]["sparsity"] < 0.05


def test_per_layer_sparsity_and_skipped_layers(trained, dataset, tmp_path):
    step = PruningStep(0.5, schedule="constant", layer_sparsity={"dense": 0.9, "out": 0.0},
                       skip_layers=["conv"], epochs=2)
    stages = CompressionPlan([step], export_mode="float32", batch_size=16).run(
        trained, dataset, tmp_path)
    layers = stages[-1].layers
    assert layers["dense"]["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert layers["conv"]["sparsity"] < 0.05 and layers["out"]["sparsity"] < 0.05
    assert stages[-1].target_reached is True


def test_two_four_pattern_in_the_exported_weights(trained, dataset, tmp_path):
    plan = CompressionPlan([PruningStep(m_by_n=(2, 4), schedule="constant", epochs=1,
                                        skip_layers=["conv", "out"])],
                           export_mode="float32", batch_size=16)
    stages = plan.run(trained, dataset, tmp_path)
    kernel = _tflite_weight(stages[-1].path, 128 * 32)  # TFLite layout: (out, in)
    blocks = kernel.reshape(kernel.shape[0], -1, 4)
    assert np.all(np.sum(blocks == 0, axis=-1) >= 2)
    assert stages[-1].layers["dense"]["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_clustering_keeps_at_most_n_values_and_preserves_sparsity(trained, dataset, tmp_path):
    plan = CompressionPlan([PruningStep(0.6, epochs=2), ClusteringStep(4, epochs=1)],
                           export_mode="float32", batch_size=16)
    stages = plan.run(trained, dataset, tmp_path)
    pruned, clustered = stages[-2], stages[-1]
    for layer in ("conv", "dense", "out"):
        # 4 clusters, plus the preserved zero
        assert clustered.layers[layer]["unique_weights"] <= 5
        assert clustered.layers[layer]["sparsity"] >= pruned.layers[layer]["sparsity"] - 0.01
    kernel = _tflite_weight(clustered.path, 128 * 32)
    assert np.unique(kernel).size <= 5
    assert clustered.target_reached is True


def test_clustering_a_nearly_empty_kernel_gets_fewer_clusters(trained, dataset):
    # TF-MOT's k-means++ initialization cannot sample 16 centroids from 5 non-zero weights
    # ("num_to_sample <= points.rows()"): the step clamps that layer instead of failing.
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    kernel = model.get_layer("out").kernel.numpy()
    sparse = np.zeros_like(kernel)
    sparse.flat[:5] = [0.5, -0.4, 0.3, -0.2, 0.1]
    model.get_layer("out").kernel.assign(sparse)
    step = ClusteringStep(16, epochs=1)
    wrapped = step.apply(model)
    assert step.clamped == {"out": 6}
    wrapped.compile("adam", "sparse_categorical_crossentropy")
    wrapped.fit(dataset.x_train, dataset.y_train, epochs=1, batch_size=32, verbose=0)
    stripped = step.strip(wrapped)
    out = stripped.get_layer("out").kernel.numpy()
    assert np.count_nonzero(out) <= 5
    assert np.unique(stripped.get_layer("dense").kernel.numpy()).size <= 16
    empty = keras.models.clone_model(trained)
    empty.get_layer("out").kernel.assign(np.zeros_like(kernel))
    step = ClusteringStep(8, epochs=1)
    step.apply(empty)
    assert step.clamped == {"out": 1}


@pytest.mark.parametrize("steps", [
    [QATStep(epochs=1)],
    [PruningStep(0.5, epochs=1), QATStep(epochs=1)],  # PQAT
    [ClusteringStep(8, epochs=1, preserve_sparsity=False), QATStep(epochs=1)],  # CQAT
    [PruningStep(0.5, epochs=1), ClusteringStep(8, epochs=1), QATStep(epochs=1)],  # PCQAT
])
def test_qat_and_pcqat_export_int8_and_run_under_litert(trained, dataset, tmp_path, steps):
    stages = CompressionPlan(steps, batch_size=16).run(trained, dataset, tmp_path)
    qat = stages[-1]
    assert qat.name == "qat" and qat.mode == "int8"
    runner = TFLiteRunner(qat.path)
    assert runner.input_details[0]["dtype"] == np.int8
    assert qat.metrics["accuracy"] > 0.8
    kinds = [step.kind for step in steps]
    if "prune" in kinds:
        assert qat.layers["dense"]["sparsity"] >= 0.49  # PQAT / PCQAT kept the zeros
    if "cluster" in kinds:
        assert qat.layers["dense"]["unique_weights"] <= 9  # CQAT / PCQAT kept the clusters


def test_scheme_resolution():
    assert resolve_scheme("auto", []) == "default"
    assert resolve_scheme("auto", ["prune"]) == "pqat"
    assert resolve_scheme("auto", ["cluster"]) == "cqat"
    assert resolve_scheme("auto", ["prune", "cluster"]) == "pcqat"
    assert resolve_scheme("cqat", ["prune"]) == "cqat"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training_then_pruning(dataset, tmp_path, policy, make_tiny_cnn):
    model = make_tiny_cnn()
    trained = train_mixed_precision(model, dataset.x_train, dataset.y_train, policy=policy,
                                    epochs=2, batch_size=16)
    assert all(layer.dtype_policy.name == "float32" for layer in trained.layers)
    assert keras.mixed_precision.global_policy().name == "float32"
    stages = CompressionPlan([PruningStep(0.5, epochs=1)], export_mode="float32",
                             batch_size=16).run(trained, dataset, tmp_path)
    assert stages[-1].layers["dense"]["sparsity"] == pytest.approx(0.5, abs=0.01)


class _Custom(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],),
                                     initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def _model_with_custom_layer():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = _Custom(name="my_scale")(x)
    x = keras.layers.Dense(16, activation="relu", name="dense")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(x))


def test_unsupported_layer_is_named_or_skipped_on_request():
    model = _model_with_custom_layer()
    with pytest.raises(UnsupportedLayerError,
                       match=r"Layer 'my_scale' \(_Custom\) cannot be wrapped by PruningStep"):
        PruningStep(0.5, schedule="constant").apply(model)
    step = PruningStep(0.5, schedule="constant", skip_unsupported=True)
    wrapped = step.apply(model)
    assert step.skipped == ["my_scale"]
    wrapped_names = {getattr(layer, "layer", layer).name for layer in wrapped.layers
                     if hasattr(layer, "pruning_vars")}
    assert wrapped_names == {"dense", "out"}


def test_unknown_layer_names_are_refused(trained):
    with pytest.raises(ValueError, match=r"Received: layer names \['dens'\] in PruningStep"):
        PruningStep(0.5, schedule="constant", layer_sparsity={"dens": 0.9}).apply(trained)


def test_missed_target_says_so(trained, dataset, tmp_path):
    plan = CompressionPlan([PruningStep(0.8, epochs=0)], export_mode="float32")
    with pytest.warns(UserWarning, match=r"Compression stage 'prune' missed its target: "
                                         r"layer 'conv' reached sparsity 0.000, target 0.800"):
        stages = plan.run(trained, dataset, tmp_path)
    assert stages[-1].target_reached is False


def test_plan_in_a_users_own_fit(trained, dataset):
    plan = CompressionPlan([PruningStep(0.5, schedule="constant", frequency=4)])
    wrapped = plan.apply(trained)
    wrapped.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    history = wrapped.fit(dataset.x_train, dataset.y_train, epochs=2, batch_size=16,
                          verbose=0, callbacks=plan.callbacks())
    assert history.history["compression_sparsity"][-1] == pytest.approx(0.5, abs=0.02)
    stripped = plan.strip(wrapped)
    assert kernel_stats(stripped)["dense"]["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_compression_hypermodel_in_a_keras_tuner_search(dataset, tmp_path):
    inner = DenseHyperModel(dataset.input_shape, 3, layers=(1, 1), units=(16,),
                            optimizer_space=OptimizerSpace(optimizers=("adam",),
                                                           epochs=(3, 3), batch_sizes=(16,)))
    hypermodel = CompressionHyperModel(
        inner, CompressionPlan([PruningStep(0.6)]), steps_per_epoch=8)
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2,
                            directory=tmp_path, project_name="p", seed=0)
    tuner.search(dataset.x_train, dataset.y_train, verbose=0,
                 validation_data=(dataset.x_val, dataset.y_val))
    best = tuner.get_best_models(1)[0]
    stripped = hypermodel.plan.strip(best)
    assert kernel_stats(stripped)["dense_0"]["sparsity"] == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize("step", [
    PruningStep(0.7, schedule="constant", begin_step=2, end_step=50, frequency=5,
                layer_sparsity={"dense": 0.9}, skip_layers=["conv"], epochs=3),
    PruningStep(m_by_n=(2, 4)),
    ClusteringStep(8, init="linear", preserve_sparsity=False, layer_clusters={"dense": 4}),
    QATStep("pcqat", epochs=1, learning_rate=1e-5),
])
def test_steps_round_trip(step):
    again = type(step).from_config(step.get_config())
    assert again == step and again.get_config() == step.get_config()


def test_plan_round_trips():
    plan = CompressionPlan([PruningStep(0.9), ClusteringStep(16), QATStep()],
                           export_mode="dynamic", batch_size=64, learning_rate=3e-4)
    assert CompressionPlan.from_config(plan.get_config()) == plan
    import json
    assert CompressionPlan.from_config(json.loads(json.dumps(plan.get_config()))) == plan


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: PruningStep(1.5), r"Received: target_sparsity=1.5; expected a float in \(0, 1\)"),
    (lambda: PruningStep(0.5, initial_sparsity=0.6),
     r"Received: initial_sparsity=0.6; expected it below target_sparsity=0.5"),
    (lambda: PruningStep(0.5, begin_step=100, end_step=10),
     r"Received: begin_step=100, end_step=10; expected begin_step < end_step"),
    (lambda: PruningStep(m_by_n=(3, 2)),
     r"Received: m_by_n=\(3, 2\); expected a pair \(m, n\) of integers with 0 < m < n"),
    (lambda: PruningStep(0.5, schedule="cubic"), r"Received: schedule='cubic'"),
    (lambda: PruningStep(0.5, layer_sparsity={"dense": 1.0}),
     r"Received: layer_sparsity\['dense'\]=1.0"),
    (lambda: PruningStep(0.5, frequency=0), r"Received: frequency=0; expected a positive"),
    (lambda: ClusteringStep(0), r"Received: n_clusters=0; expected a positive integer"),
    (lambda: ClusteringStep(1), r"Received: n_clusters=1; expected an integer >= 2"),
    (lambda: ClusteringStep(8, init="kmeans"), r"Received: init='kmeans'"),
    (lambda: QATStep("int4"), r"Received: scheme='int4'"),
    (lambda: PruningStep(0.5, epochs=-1), r"Received: epochs=-1; expected an integer >= 0"),
    (lambda: CompressionPlan([QATStep(), PruningStep(0.5)]),
     r"Received: steps of kinds \['qat', 'prune'\]; expected each at most once, in the order"),
    (lambda: CompressionPlan([PruningStep(0.5)], export_mode="int4"),
     r"Received: export_mode='int4'"),
    (lambda: CompressionPlan(["prune"]), r"Received: steps containing 'prune'"),
])
def test_bad_values_name_the_argument(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
