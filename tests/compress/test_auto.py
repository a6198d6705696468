import io
import json
import math

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.compress import allocate, auto_compress, layer_sensitivity
from keras_autoopt.export import ExportVerificationError
from keras_autoopt.measure import TFLiteRunner


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


def _paired_upper(base: np.ndarray, cand: np.ndarray, z: float) -> float:
    """The paired upper bound, computed here from the discordant counts."""
    n = len(base)
    worse, better = int(np.sum(base & ~cand)), int(np.sum(~base & cand))
    drop = (worse - better) / n
    return drop + z * math.sqrt((max(worse + better, 1) / n - drop ** 2) / n)


def _correct(path, x, y) -> np.ndarray:
    runner = TFLiteRunner(path)
    return np.array([np.argmax(runner.predict(x[i:i + 1])[0]) == y[i] for i in range(len(x))])


def test_auto_compress_stays_within_budget_and_writes_the_report(trained_bn, dataset,
                                                                 tmp_path):
    stream = io.StringIO()
    result = auto_compress(trained_bn, dataset, tmp_path, max_accuracy_drop=0.05,
                           channel_ratios=(0.5,), structured_epochs=2, sparsities=(0.5, 0.8),
                           sensitivity_epochs=1, prune_epochs=3, cluster_counts=(8,),
                           cluster_epochs=1, qat_epochs=1, max_pushes=1, minimize="gzip",
                           batch_size=16, learning_rate=1e-3, stream=stream)
    names = [s.name for s in result.stages]
    assert names[:3] == ["float32", "ptq_int8", "structured_50"]
    assert "qat" in names  # measured, not skipped
    assert not [n for n in result.notes if n.startswith("qat")]
    # Every decision, recomputed from the files: the paired upper bound at 80 % vs 5 pt.
    base = _correct(result.stages[0].path, dataset.x_val, dataset.y_val)
    within = {}
    for stage in result.stages:
        upper = _paired_upper(base, _correct(stage.path, dataset.x_val, dataset.y_val),
                              0.8416212335729143)
        within[stage.name] = upper <= 0.05 + 1e-9
        assert result.decisions[stage.name]["val_drop_upper"] == pytest.approx(upper)
        assert result.decisions[stage.name]["within_budget"] == within[stage.name]
    # The structured stage removed half of each group's channels (conv 8 -> 4, dense 32 -> 16).
    structured = result.stages[2].model
    assert structured.get_layer("conv").filters == 4
    assert structured.get_layer("dense").units == 16
    assert result.channel_allocation in ({}, {"conv": 0.5, "dense": 0.5})
    # Chosen: fewest gzip bytes among the stages within budget (near-ties: smaller drop).
    fits = [s for s in result.stages if within[s.name]]
    least = min(s.metrics["gzip_bytes"] for s in fits)
    near = [s for s in fits if s.metrics["gzip_bytes"] <= least * 1.02]
    assert result.chosen.name == min(
        near, key=lambda s: (result.decisions[s.name]["val"]["drop"],
                             s.metrics["gzip_bytes"])).name
    report = json.loads((tmp_path / "compression.json").read_text())
    assert report["chosen"] == result.chosen.name
    assert report["model"] == {"name": "tiny_cnn", "params": trained_bn.count_params()}
    assert set(report["structured"]["sensitivity"]) == {"conv", "dense"}
    assert report["structured"]["channels_before"] == {"conv": 8, "dense": 32}
    rows = {row["stage"]: row for row in report["stages"]}
    assert rows["float32"]["gzip_ratio"] == pytest.approx(
        rows["float32"]["size_bytes"] / rows["float32"]["gzip_bytes"])
    assert rows["structured_50"]["params"] == structured.count_params()
    assert rows["structured_50"]["size_bytes"] < rows["ptq_int8"]["size_bytes"]
    low, high = rows["qat"]["test_drop_ci95"]
    assert low <= rows["qat"]["test_drop"] <= high
    assert (tmp_path / "compression.md").read_text().count("| ") > 10
    assert "[compress] chosen:" in stream.getvalue()


def test_with_a_target_every_stage_is_measured_on_it_and_flash_is_minimized(trained, dataset,
                                                                            tmp_path):
    result = auto_compress(trained, dataset, tmp_path, max_accuracy_drop=0.5, target="tflm",
                           channel_ratios=(0.5,), structured_epochs=1, sparsities=(0.5,),
                           sensitivity_epochs=1, prune_epochs=1, cluster_counts=(),
                           qat_epochs=0, max_pushes=0, batch_size=16, stream=io.StringIO())
    rows = {row["stage"]: row for row in result.report["stages"]}
    for row in rows.values():
        assert row["device"]["flash_bytes"] == (tmp_path / row["path"]).stat().st_size
        assert row["device"]["ram_bytes"] > 0
    assert result.report["budget"]["minimize"] == "flash"
    assert result.report["budget"]["target"] == "tflm"
    # A 50 pt budget accepts every stage: the structured ones store the fewest bytes; among
    # near-ties (2 %) the smaller validation drop, then flash, then gzip bytes.
    least = min(row["device"]["flash_bytes"] for row in rows.values())
    assert least < rows["ptq_int8"]["device"]["flash_bytes"] / 1.5
    near = [row for row in rows.values() if row["device"]["flash_bytes"] <= least * 1.02]
    assert result.chosen.name == min(near, key=lambda row: (
        row["val_drop"], row["device"]["flash_bytes"], row["gzip_bytes"]))["stage"]
    assert result.chosen.name in ("structured_50", "prune")
    assert rows["structured_50"]["macs"] < rows["ptq_int8"]["macs"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_accuracy_drop": 1.5}, r"Received: max_accuracy_drop=1.5; expected a fraction"),
    ({"sparsities": (0.5, 1.0)}, r"Received: sparsities=\(0.5, 1.0\)"),
    ({"cluster_counts": (1,)}, r"Received: cluster_counts=\(1,\); expected a list of integers"),
    ({"prune_epochs": 0}, r"Received: prune_epochs=0; expected a positive integer"),
    ({"qat_epochs": -1}, r"Received: qat_epochs=-1; expected an integer >= 0"),
    ({"structured_pushes": -1}, r"Received: structured_pushes=-1; expected an integer >= 0"),
    ({"structured_pushes": True},
     r"Received: structured_pushes=True; expected an integer >= 0"),
    ({"channel_ratios": (0.5, 1.0)}, r"Received: channel_ratios=\(0.5, 1.0\); expected a list "
     r"of distinct fractions in \(0, 1\)"),
    ({"structured_epochs": 0}, r"Received: structured_epochs=0; expected a positive integer"),
    ({"structured_criterion": "l3"}, r"Received: criterion='l3'"),
    ({"minimize": "size"}, r"Received: minimize='size'; expected one of \['flash', 'gzip', "
     r"'latency', 'ram', 'macs'\]"),
    ({"minimize": "ram"}, r"Received: minimize='ram' with target=None; expected a target that "
     r"reports RAM"),
    ({"confidence": 0.3}, r"Received: confidence=0.3; expected a confidence level in \[0.5, 1\)"),
    ({"target": "toaster"}, r"Received: target='toaster'; expected one of host"),
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
                           channel_ratios=(), sparsities=(0.5,), prune_epochs=1,
                           sensitivity_epochs=1, cluster_counts=(), qat_epochs=1, batch_size=16,
                           stream=stream)
    assert "qat" not in [s.name for s in result.stages]
    assert result.chosen is not None
    assert any(n.startswith(note) for n in result.report["notes"])
    assert "more lines" not in " ".join(result.report["notes"])
    assert "[compress] qat: skipped" in stream.getvalue()
