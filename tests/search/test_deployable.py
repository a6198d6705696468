from pathlib import Path

import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.compress import ClusteringStep, CompressionSpace, PruningStep
from keras_autoopt.search import DenseHyperModel, OptimizerSpace, failure_reason
from keras_autoopt.search._constraints import Constraints
from keras_autoopt.search._deployable import REJECTED_PREFIX, DeployableTuner, oracle_objectives
from keras_autoopt.search._gradients import _gradient_registry
from keras_autoopt.search._objectives import Objective
from keras_autoopt.search._pareto import default_reference


class _CountingHyperModel(DenseHyperModel):
    """Counts calls to fit (to prove rejected trials never train)."""

    fits = 0

    def fit(self, hp, model, *args, **kwargs):
        type(self).fits += 1
        return super().fit(hp, model, *args, **kwargs)


def _hypermodel(cls=DenseHyperModel, num_classes=3, units=(8, 32)):
    return cls((8, 8, 1), num_classes, layers=(1, 1), units=units,
               optimizer_space=OptimizerSpace(optimizers=("adam",), learning_rate=(1e-2, 1e-2),
                                              epochs=(4, 4), batch_sizes=(32,)))


def _tuner(tmp_path, objectives=("val_accuracy", "gzip_bytes"), max_trials=3, **kwargs):
    hypermodel = kwargs.pop("hypermodel", None) or _hypermodel()
    oracle = kt.oracles.RandomSearchOracle(objective=oracle_objectives(objectives),
                                           max_trials=max_trials, seed=0)
    return DeployableTuner(hypermodel, oracle, objectives=objectives, directory=tmp_path,
                           project_name="p", latency_runs=50, **kwargs)


def test_trials_are_measured_as_deployed_and_the_front_is_non_dominated(
        tiny_images, tmp_path, front_by_enumeration):
    x, y, xv, yv = tiny_images
    space = CompressionSpace(sparsities=(0.0, 0.5), clusters=(0, 8),
                             quantization=("float32", "int8"), prune_epochs=1, cluster_epochs=1)
    tuner = _tuner(tmp_path, max_trials=4, compression=space)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 4
    for trial in trials:
        for name in ("val_accuracy", "gzip_bytes", "size_bytes", "latency_us", "params",
                     "feasible"):
            assert trial.metrics.exists(name), name
        assert {"sparsity", "clusters", "quantization"} <= set(trial.hyperparameters.values)
    front = tuner.get_pareto_front()
    assert front
    # The front is exactly the trials no other trial beats (enumerated here).
    points = [[t.metrics.get_last_value("val_accuracy"), t.metrics.get_last_value("gzip_bytes")]
              for t in trials]
    expected = {trials[i].trial_id for i in front_by_enumeration(points, ["max", "min"])}
    assert {p.trial_id for p in front} == expected
    for p in front:
        assert [p.values["val_accuracy"], p.values["gzip_bytes"]] == points[
            [t.trial_id for t in trials].index(p.trial_id)]
    model = front[0].load_model()
    assert model.predict(xv[:2], verbose=0).shape == (2, 3)
    with open(front[0].tflite_path, "rb") as handle:
        assert len(handle.read()) == front[0].metrics["size_bytes"]
    assert tuner.hypervolume() > 0


def _macro_f1_by_hand(y_true, y_pred):
    """Mean per-class F1 over the classes in the labels or the predictions."""
    scores = []
    for k in np.union1d(y_true, y_pred):
        hits = np.sum((y_true == k) & (y_pred == k))
        predicted, actual = np.sum(y_pred == k), np.sum(y_true == k)
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        scores.append(2 * precision * recall / (precision + recall) if hits else 0.0)
    return float(np.mean(scores))


def test_val_f1_is_an_objective_and_trials_record_their_training_time(tiny_images, tmp_path):
    from keras_autoopt.measure import TFLiteRunner

    x, y, xv, yv = tiny_images
    tuner = _tuner(tmp_path, objectives=("val_f1", "gzip_bytes"), max_trials=2)
    assert [(o.name, o.direction) for o in tuner.objectives] == [("val_f1", "max"),
                                                                  ("gzip_bytes", "min")]
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 2
    for trial in trials:
        val_f1 = trial.metrics.get_last_value("val_f1")
        path = Path(tuner.get_trial_dir(trial.trial_id)) / "model.tflite"
        predicted = TFLiteRunner(path).predict(xv).argmax(axis=1)
        assert val_f1 == pytest.approx(_macro_f1_by_hand(yv, predicted))
        assert 0.0 <= val_f1 <= 1.0
        assert trial.metrics.get_last_value("train_s") > 0
    front = tuner.get_pareto_front()
    assert front and all(set(p.values) == {"val_f1", "gzip_bytes"} for p in front)


def test_trials_leave_no_custom_gradient_behind(tiny_images, tmp_path):
    # Each entry keeps a traced train step (its whole FuncGraph) alive: left
    # behind, they made a 30-trial search grow by ~30 MB per trial.
    x, y, xv, yv = tiny_images
    space = CompressionSpace(sparsities=(0.5,), clusters=(8,), quantization=("float32",),
                             prune_epochs=1, cluster_epochs=1)
    tuner = _tuner(tmp_path, max_trials=2, compression=space)
    before = set(_gradient_registry())
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 2
    assert set(_gradient_registry()) - before == set()


def test_int8_trial_is_smaller_than_float32(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    space = CompressionSpace(sparsities=(0.0,), clusters=(0,), quantization=("float32", "int8"))
    hypermodel = _hypermodel(units=(128,))
    oracle = kt.oracles.GridSearchOracle(objective=oracle_objectives(["val_accuracy"]),
                                         max_trials=2)
    tuner = DeployableTuner(hypermodel, oracle, objectives=["val_accuracy"], compression=space,
                            directory=tmp_path, project_name="g", latency_runs=50)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    sizes = {t.hyperparameters.values["quantization"]: t.metrics.get_last_value("size_bytes")
             for t in tuner.oracle.trials.values() if t.status == "COMPLETED"}
    assert sizes["int8"] < sizes["float32"] / 2


def test_constraints_reject_before_training(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    _CountingHyperModel.fits = 0
    tuner = _tuner(tmp_path, max_trials=5, hypermodel=_hypermodel(_CountingHyperModel),
                   constraints=Constraints(max_params=50))
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)  # 5 rejections in a row: no stop
    assert _CountingHyperModel.fits == 0
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 5
    for trial in trials:
        assert trial.status == "FAILED"
        assert REJECTED_PREFIX in trial.message
        assert "max_params" in trial.message
    assert tuner.get_pareto_front() == []
    assert tuner.hypervolume() == 0.0


def test_measured_constraints_mark_trials_infeasible(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    tuner = _tuner(tmp_path, max_trials=2, constraints=Constraints(max_latency_ms=1e-6))
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert all(t.status == "COMPLETED" for t in trials)
    assert all(t.metrics.get_last_value("feasible") == 0.0 for t in trials)
    for trial in trials:  # the reason stays with the trial
        assert trial.message.startswith("Infeasible: latency_us ")
        assert "> max_latency_ms 1e-06" in trial.message
    assert tuner.get_pareto_front() == []
    assert len(tuner.completed_trials(feasible_only=False)) == 2


def test_custom_objective_and_teacher(tiny_images, make_tiny_classifier, tmp_path):
    x, y, xv, yv = tiny_images
    keras.utils.set_random_seed(0)
    teacher = make_tiny_classifier(hidden=32)
    teacher.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    teacher.fit(x, y, epochs=10, verbose=0)
    seen = []

    def first_weight(model, tflite_path, dataset):
        seen.append((tflite_path, len(dataset.x_val)))
        return float(np.abs(model.get_weights()[0]).sum())

    objectives = ["val_accuracy", Objective("weight_l1", "min", fn=first_weight)]
    tuner = _tuner(tmp_path, objectives=objectives, max_trials=2, teacher=teacher,
                   temperature=(1.0, 4.0), alpha=(0.1, 0.5))
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert all(t.status == "COMPLETED" for t in trials), [t.message for t in trials]
    for trial in trials:
        values = trial.hyperparameters.values
        assert 1.0 <= values["temperature"] <= 4.0
        assert 0.1 <= values["alpha"] <= 0.5
        assert trial.metrics.get_last_value("weight_l1") > 0
    assert [n for _, n in seen] == [30, 30]


def test_real_failures_still_stop_the_search(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images

    class Broken(DenseHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            raise kt.errors.FailedTrialError("broken on purpose")

    tuner = _tuner(tmp_path, max_trials=6, hypermodel=_hypermodel(Broken),
                   max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match=r"2 trials failed in a row "
                                           r"\(max_consecutive_failed_trials=2\)"):
        tuner.search(x, y, validation_data=(xv, yv), verbose=0)


def test_default_reference_is_beyond_every_point():
    points = np.array([[0.9, 1000.0], [0.8, 500.0], [0.95, 2000.0]])
    reference = default_reference(points, ["max", "min"])
    assert reference == pytest.approx([0.8 - 0.015, 2000.0 + 150.0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"compression": "yes"}, r"Received: compression='yes'; expected a CompressionSpace"),
    ({"constraints": {"max_params": 3}}, r"Received: constraints=\{'max_params': 3\}; expected a "
                                         r"Constraints"),
    ({"teacher": "t.keras"},
     r"Received: teacher of type str; expected a tf_keras or Keras 3 Model"),
    ({"objectives": ["val_accuracy"]}, r"Received: an oracle with objectives \['val_accuracy', "
                                       r"'gzip_bytes'\]; expected \['val_accuracy'\]"),
    ({"alpha": (0.5, 2.0)}, r"alpha"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    objectives = kwargs.pop("objectives", ("val_accuracy", "gzip_bytes"))
    oracle = kt.oracles.RandomSearchOracle(
        objective=oracle_objectives(("val_accuracy", "gzip_bytes")), max_trials=1)
    with pytest.raises(ValueError, match=message):
        DeployableTuner(_hypermodel(), oracle, objectives=objectives, directory=tmp_path,
                        project_name="b", **kwargs)


def test_search_needs_validation_arrays(tiny_images, tmp_path):
    x, y, _, _ = tiny_images
    tuner = _tuner(tmp_path)
    with pytest.raises(ValueError, match=r"Received: validation_data of type NoneType; expected "
                                         r"a pair \(x_val, y_val\)"):
        tuner.search(x, y, validation_data=None)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sparsities": (0.0, 1.0)}, r"Received: sparsities=\(0.0, 1.0\); expected a non-empty list"),
    ({"clusters": (1,)}, r"Received: clusters=\(1,\); expected a non-empty list of integers"),
    ({"quantization": ("int4",)}, r"quantization"),
    ({"prune_epochs": 0}, r"Received: prune_epochs=0"),
    ({"learning_rate": 2.0}, r"Received: learning_rate=2.0; expected a float in \(0, 1\)"),
])
def test_compression_space_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompressionSpace(**kwargs)


def test_compression_space_round_trip_and_conditional_schedule():
    space = CompressionSpace(sparsities=(0.0, 0.8), pruning_schedules=("polynomial", "constant"))
    assert CompressionSpace.from_config(space.get_config()) == space
    hp = kt.HyperParameters()
    choices = space.sample(hp)
    assert choices == {"channels": 1.0, "sparsity": 0.0, "pruning_schedule": "polynomial",
                       "clusters": 0, "quantization": "float32"}
    assert not hp.is_active(hp._hps["pruning_schedule"][0])


def test_compression_space_plans_the_sampled_steps():
    space = CompressionSpace(prune_epochs=2, cluster_epochs=1, learning_rate=0.005,
                             batch_size=16)
    choice = {"sparsity": 0.75, "pruning_schedule": "constant", "clusters": 16,
              "quantization": "int8"}
    plan = space.plan(choice)
    prune, cluster = plan.steps
    assert isinstance(prune, PruningStep) and isinstance(cluster, ClusteringStep)
    assert (prune.epochs, cluster.epochs) == (2, 1)
    assert prune.get_config()["target_sparsity"] == 0.75
    assert prune.get_config()["schedule"] == "constant"
    assert cluster.get_config()["n_clusters"] == 16
    assert cluster.get_config()["preserve_sparsity"] is True
    assert (plan.export_mode, plan.batch_size, plan.learning_rate) == ("int8", 16, 0.005)
    assert [s.kind for s in space.plan({**choice, "sparsity": 0.0}).steps] == ["cluster"]
    assert space.plan({**choice, "sparsity": 0.0, "clusters": 0}) is None


def test_a_folder_written_under_the_old_distillation_names_resumes_under_the_new(
        tiny_images, make_tiny_classifier, tmp_path):
    """Run folders from before the names were shared said distill_temperature/distill_alpha."""

    x, y, xv, yv = tiny_images
    keras.utils.set_random_seed(0)
    teacher = make_tiny_classifier(hidden=16)
    teacher.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    teacher.fit(x, y, epochs=2, verbose=0)
    tuner = _tuner(tmp_path, max_trials=1, teacher=teacher)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    (first,) = tuner.oracle.trials.values()
    temperature = first.hyperparameters.values["temperature"]
    # Make the folder an old one: the same files with the old names.
    files = [tmp_path / "p" / "oracle.json", *(tmp_path / "p").glob("trial_*/trial.json")]
    for path in files:
        text = path.read_text().replace('"temperature"', '"distill_temperature"')
        path.write_text(text.replace('"alpha"', '"distill_alpha"'))
    assert '"distill_temperature"' in files[0].read_text()

    resumed = _tuner(tmp_path, max_trials=2, teacher=teacher)
    assert not any("distill" in f.read_text() for f in files)
    assert resumed.oracle.trials[first.trial_id].hyperparameters.values["temperature"] \
        == temperature
    resumed.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(resumed.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    names = {hp.name for hp in resumed.oracle.get_space().space}
    assert {"temperature", "alpha"} <= names and not any("distill" in n for n in names)
    for trial in trials:
        assert set(trial.hyperparameters.values) >= {"temperature", "alpha"}
        assert not any("distill" in n for n in trial.hyperparameters.values)


def test_a_lossy_export_is_measured_and_a_broken_one_fails_its_trial(
        tiny_images, tmp_path, monkeypatch, capfd):
    """Trial 1's export loses 2 of 30 predictions (a strict check fails it), trial 2's all."""
    from keras_autoopt.export import _verification
    from keras_autoopt.search import TrialLogger

    x, y, xv, yv = tiny_images
    real, calls = _verification._tflite_outputs, []

    def lossy_then_broken(tflite_model, inputs):
        out = real(tflite_model, inputs)
        calls.append(len(inputs))
        right = np.flatnonzero(out.argmax(axis=1) == yv)
        flipped = right[:2] if len(calls) == 1 else np.arange(len(out))
        out[flipped] = np.roll(out[flipped], 1, axis=1)
        return out

    monkeypatch.setattr(_verification, "_tflite_outputs", lossy_then_broken)
    tuner = _tuner(tmp_path, max_trials=2)
    tuner.trial_logger = TrialLogger(total=2)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    lossy, broken = (tuner.oracle.trials[i] for i in sorted(tuner.oracle.trials))
    assert calls == [30, 30]

    assert lossy.status == "COMPLETED", lossy.message
    metrics = {n: lossy.metrics.get_last_value(n) for n in
               ("export_top1_agreement", "keras_val_accuracy", "export_max_abs_diff",
                "val_accuracy")}
    assert metrics["export_top1_agreement"] == pytest.approx(28 / 30)
    assert metrics["keras_val_accuracy"] >= 0.9
    assert metrics["export_max_abs_diff"] > 0.1  # far over the float32 tolerance (1e-4)
    assert (tmp_path / "p" / f"trial_{lossy.trial_id}" / "model.tflite").is_file()
    assert [p.trial_id for p in tuner.get_pareto_front()] == [lossy.trial_id]

    assert broken.status == "FAILED"
    reason = failure_reason(broken.message)
    assert reason.startswith(
        "ExportVerificationError: float32 export failed its sanity check on 30 samples: "
        "top-1 agreement is 0.0% (minimum 90.0%); accuracy ")
    assert "max abs difference" in reason
    assert not (tmp_path / "p" / f"trial_{broken.trial_id}" / "model.tflite").exists()
    out, err = capfd.readouterr()
    assert "[trial 1/2] val_accuracy=" in out
    assert f"[trial 2/2] FAILED: {reason}" in out
    assert "Traceback" not in out + err


def test_a_tflm_search_exports_int8_and_measures_flash_ram_and_macs(tiny_images, tmp_path):
    from keras_autoopt.search._estimates import estimate_model

    x, y, xv, yv = tiny_images
    space = CompressionSpace(sparsities=(0.0,), clusters=(0,), prune_epochs=1, cluster_epochs=1)
    tuner = _tuner(tmp_path, objectives=["val_accuracy", "ram_bytes"], max_trials=2,
                   compression=space, target="tflm")
    assert tuner.compression.quantization == ("int8",)  # the default choices, as tflm runs
    assert tuner.constraints.max_flash_bytes == 1_048_576
    assert tuner.constraints.max_ram_bytes == 262_144
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 2, [t.message for t in trials]
    for trial in trials:
        metric = trial.metrics.get_last_value
        model = tuner.load_model(trial)
        estimate = estimate_model(model, "int8")
        folder = Path(tuner.get_trial_dir(trial.trial_id))
        assert metric("flash_bytes") == (folder / "model.tflite").stat().st_size
        assert metric("macs") == estimate.macs
        assert estimate.ram_bytes <= metric("ram_bytes") <= 262_144  # the TFLM arena
        assert metric("target_runs") == 1.0 and metric("feasible") == 1.0
        assert (folder / "model_data.cc").is_file() and (folder / "model_data.h").is_file()
    # The budgets were checked before training on the untrained model's conversion: its
    # arena is the trained one's, its file at most a few bytes smaller (shared zero biases).
    measured = {(m.flash_bytes, m.ram_bytes) for m in tuner._sizes.values()}
    assert all(m.measured for m in tuner._sizes.values())
    for trial in trials:
        metric = trial.metrics.get_last_value
        assert any(ram == metric("ram_bytes") and 0.97 * metric("flash_bytes") <= flash
                   <= metric("flash_bytes") for flash, ram in measured), (measured, trial)


def test_a_target_refuses_what_it_cannot_run_or_measure_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match=r"Received: mode='dynamic' for target 'tflm'.*"
                                         r"\(in compression.quantization\)"):
        _tuner(tmp_path, compression=CompressionSpace(quantization=("int8", "dynamic")),
               target="tflm")
    with pytest.raises(ValueError, match=r"Received: objective 'ram_bytes' with target 'host' "
                                         r"\(runtime 'litert'\); expected a target whose "
                                         r"runtime measures ram_bytes: tflm, vela"):
        _tuner(tmp_path, objectives=["val_accuracy", "ram_bytes"])
    with pytest.raises(ValueError, match=r"constraint max_npu_latency_ms with target 'tflm'"):
        _tuner(tmp_path, constraints=Constraints(max_npu_latency_ms=1.0), target="tflm")


def test_device_budgets_reject_before_training(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    _CountingHyperModel.fits = 0
    tuner = _tuner(tmp_path, max_trials=2, hypermodel=_hypermodel(_CountingHyperModel),
                   constraints=Constraints(max_ram_bytes=60), target="tflm")
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert _CountingHyperModel.fits == 0
    for trial in tuner.oracle.trials.values():
        assert trial.status == "FAILED" and REJECTED_PREFIX in trial.message
        assert "ram_bytes >= " in trial.message and "> max_ram_bytes 60" in trial.message


def test_a_budget_between_the_bound_and_the_measured_arena_rejects_before_training(
        tiny_images, tmp_path):
    from keras_autoopt.search._estimates import estimate_model

    x, y, xv, yv = tiny_images
    _CountingHyperModel.fits = 0
    hypermodel = _hypermodel(_CountingHyperModel)
    bound = estimate_model(hypermodel.build(kt.HyperParameters()), "int8").ram_bytes
    # TFLite Micro's arena holds its tensor and node structures too: well over the
    # activations' bound (a few hundred bytes here), so the bound alone lets this through.
    tuner = _tuner(tmp_path, max_trials=1, hypermodel=hypermodel,
                   constraints=Constraints(max_ram_bytes=bound + 1), target="tflm")
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert _CountingHyperModel.fits == 0
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "FAILED" and REJECTED_PREFIX in trial.message
    assert "(measured on the untrained model's int8 conversion) > max_ram_bytes" in trial.message


def test_pruned_float_trials_on_litert_are_sparse_encoded_and_sized_after_export(
        tiny_images, tmp_path):
    import json

    x, y, xv, yv = tiny_images
    _CountingHyperModel.fits = 0
    hypermodel = _hypermodel(_CountingHyperModel, units=(32,))
    params = hypermodel.build(kt.HyperParameters()).count_params()
    space = CompressionSpace(sparsities=(0.9,), pruning_schedules=("constant",), clusters=(0,),
                             quantization=("float32",), prune_epochs=1, cluster_epochs=1)
    # Below the dense lower bound (1 byte per parameter + 800): a dense file could not fit,
    # a sparse one may, so the trial is trained and judged on its exported file.
    limit = params + 799
    tuner = _tuner(tmp_path, max_trials=1, hypermodel=hypermodel, compression=space,
                   constraints=Constraints(max_size_bytes=limit))
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert _CountingHyperModel.fits == 1 and trial.status == "COMPLETED", trial.message
    metric = trial.metrics.get_last_value
    folder = Path(tuner.get_trial_dir(trial.trial_id))
    size = (folder / "model.tflite").stat().st_size
    assert metric("sparse_encoding") == 1.0 and metric("size_bytes") == size
    assert metric("dense_size_bytes") > 2 * size  # 90 % zeros: far smaller than dense
    assert metric("feasible") == (1.0 if size <= limit else 0.0)
    exported = json.loads((folder / "export.json").read_text())
    assert exported["sparse_encoding"] is True and exported["sparse_reason"].startswith("kept")


def test_channels_prune_whole_units_and_the_budget_is_measured_on_the_smaller_model(
        tiny_images, tmp_path):
    from keras_autoopt.search._estimates import measure_before_training

    x, y, xv, yv = tiny_images
    space = CompressionSpace(channels=(0.5,), sparsities=(0.0,), clusters=(0,), prune_epochs=1)
    tuner = _tuner(tmp_path, max_trials=1, hypermodel=_hypermodel(units=(32,)),
                   compression=space, target="tflm")
    assert tuner.compression.channels == (0.5,)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED", trial.message
    assert "channels" not in trial.hyperparameters.values  # one choice: not a hyperparameter
    model = tuner.load_model(trial)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [16, 3]  # 32 units -> 16; the output kept
    metric = trial.metrics.get_last_value
    assert metric("params") == model.count_params()
    flash = (Path(tuner.get_trial_dir(trial.trial_id)) / "model.tflite").stat().st_size
    (sized,) = tuner._sizes.values()  # measured before training, on the smaller architecture
    assert sized.flash_bytes == flash == metric("flash_bytes")
    assert sized.ram_bytes == metric("ram_bytes")
    assert measure_before_training(model, "tflm", "int8", x).flash_bytes == flash


def test_channels_choices_are_checked():
    for bad in ((), (0.0,), (1.5,), (0.5, 0.5), ("half",), 0.5):
        with pytest.raises(ValueError, match=r"Received: channels=.*expected a non-empty list of "
                                             r"distinct fractions in \(0, 1\]"):
            CompressionSpace(channels=bad)
    space = CompressionSpace(channels=(1.0, 0.5), sparsities=(0.0,), clusters=(0,))
    assert CompressionSpace.from_config(space.get_config()) == space
    hp = kt.HyperParameters()
    assert space.sample(hp)["channels"] == 1.0 and "channels" in hp.values
    steps = space.plan({**space.sample(hp), "channels": 0.5}).steps
    assert [step.kind for step in steps] == ["structured"] and steps[0].ratio == 0.5
