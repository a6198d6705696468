import io
import json

import pytest

from keras_autoopt._backend import keras
from keras_autoopt.compress import allocate, auto_compress, layer_sensitivity
from keras_autoopt.export import ExportVerificationError


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset(n=240, seed=1, n_train=150, n_val=45)


@pytest.fixture(scope="module")
def trained(dataset, train_tiny_cnn):
    return train_tiny_cnn(dataset, epochs=6, name="tiny_cnn")


@pytest.fixture(scope="module")
def trained_bn(dataset):
    # The demo's kind of model (ConvNetHyperModel blocks): Conv / Dense without bias, then
    # batch norm, then swish / elu. Its QAT stage used to fail (elu has no TF-MOT config;
    # Dense + batch norm exported wrong int8: tensorflow/model-optimization#377).
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv"),
        keras.layers.BatchNormalization(name="conv_bn"),
        keras.layers.Activation("swish", name="conv_act"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(32, use_bias=False, name="dense"),
        keras.layers.BatchNormalization(name="dense_bn"),
        keras.layers.Activation("elu", name="dense_act"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ], name="tiny_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, epochs=6, batch_size=16, verbose=0)
    return model


def test_allocation_takes_the_highest_sparsity_within_budget():
    sensitivity = {"a": {0.5: 0.0, 0.9: 0.004, 0.95: 0.02},
                   "b": {0.5: 0.03, 0.9: 0.1},
                   "c": {0.5: -0.01, 0.9: 0.005}}
    assert allocate(sensitivity, 0.005) == {"a": 0.9, "b": 0.0, "c": 0.9}


def test_sensitivity_measures_each_layer(trained, dataset):
    baseline, sensitivity = layer_sensitivity(trained, dataset, sparsities=(0.5, 0.99),
                                              epochs=1, batch_size=16)
    assert baseline > 0.9
    assert set(sensitivity) == {"conv", "dense", "out"}
    for drops in sensitivity.values():
        assert set(drops) == {0.5, 0.99}
        assert all(-1 <= d <= 1 for d in drops.values())
    # pruning the 3x3 conv (72 weights) to 99% leaves nothing: it must hurt
    assert sensitivity["conv"][0.99] > sensitivity["conv"][0.5]


def test_auto_compress_stays_within_budget_and_writes_the_report(trained_bn, dataset,
                                                                 tmp_path):
    stream = io.StringIO()
    result = auto_compress(trained_bn, dataset, tmp_path, max_accuracy_drop=0.05,
                           sparsities=(0.5, 0.8), prune_epochs=3, cluster_counts=(8,),
                           cluster_epochs=1, qat_epochs=1, batch_size=16,
                           learning_rate=1e-3, stream=stream)
    names = [s.name for s in result.stages]
    assert names[:2] == ["float32", "ptq_int8"]
    assert "qat" in names  # measured, not skipped
    assert not [n for n in result.notes if n.startswith("qat")]
    qat = result.stages[names.index("qat")]
    assert qat.metrics["accuracy"] >= result.stages[0].metrics["accuracy"] - 0.05
    chosen = result.chosen
    assert result.baseline_val_accuracy - chosen.val_accuracy <= 0.05 + 1e-9
    assert chosen.metrics["gzip_bytes"] == min(
        s.metrics["gzip_bytes"] for s in result.stages
        if result.baseline_val_accuracy - s.val_accuracy <= 0.05 + 1e-9)
    report = json.loads((tmp_path / "compression.json").read_text())
    assert report["chosen"] == chosen.name
    assert report["model"] == {"name": "tiny_cnn", "params": trained_bn.count_params()}
    assert set(report["sensitivity"]) == {"conv", "dense", "out"}
    rows = {row["stage"]: row for row in report["stages"]}
    assert rows["float32"]["gzip_ratio"] == pytest.approx(
        rows["float32"]["size_bytes"] / rows["float32"]["gzip_bytes"])
    assert (tmp_path / "compression.md").read_text().count("| ") > 10
    assert "[compress] chosen:" in stream.getvalue()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_accuracy_drop": 1.5}, r"Received: max_accuracy_drop=1.5; expected a fraction"),
    ({"sparsities": (0.5, 1.0)}, r"Received: sparsities=\(0.5, 1.0\)"),
    ({"cluster_counts": (1,)}, r"Received: cluster_counts=\(1,\); expected a list of integers"),
    ({"prune_epochs": 0}, r"Received: prune_epochs=0; expected a positive integer"),
    ({"qat_epochs": -1}, r"Received: qat_epochs=-1; expected an integer >= 0"),
])
def test_bad_arguments_fail_before_work(trained, dataset, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        auto_compress(trained, dataset, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("error", "note"), [
    (lambda: ExportVerificationError(
        "int8 export failed verification (test)", mode="int8", max_abs_diff=0.9,
        tolerance=0.15, top1_agreement=0.1, min_top1_agreement=0.9),
     "qat: skipped, its int8 export failed verification"),
    (lambda: ValueError("Activation <function f> not supported by "
                        "Default8BitActivationQuantizeConfig.\nmore lines"),
     "qat: skipped, ValueError: Activation <function f> not supported by "
     "Default8BitActivationQuantizeConfig."),
], ids=["verification", "tfmot-error"])
def test_a_failing_qat_stage_is_skipped_with_a_note(trained, dataset, tmp_path, monkeypatch,
                                                    error, note):
    from keras_autoopt.compress import CompressionPlan, QATStep

    original = CompressionPlan.run_step

    def run_step(self, model, step, *args, **kwargs):
        if isinstance(step, QATStep):
            raise error()
        return original(self, model, step, *args, **kwargs)

    monkeypatch.setattr(CompressionPlan, "run_step", run_step)
    stream = io.StringIO()
    result = auto_compress(trained, dataset, tmp_path, max_accuracy_drop=0.05,
                           sparsities=(0.5,), prune_epochs=1, cluster_counts=(),
                           qat_epochs=1, batch_size=16, stream=stream)
    assert "qat" not in [s.name for s in result.stages]
    assert result.chosen is not None
    assert any(n.startswith(note) for n in result.report["notes"])
    assert "more lines" not in " ".join(result.report["notes"])
    assert "[compress] qat: skipped" in stream.getvalue()
