import json

import numpy as np
import pytest

from keras_autoopt.config import ConfigError, make_config
from keras_autoopt.data import DatasetError, from_arrays, load_dataset
from keras_autoopt.pipeline import run_pipeline
from keras_autoopt.pipeline._setup import prepare_output
from keras_autoopt.search import ConvNetHyperModel, OptimizerSpace

SMALL = {"trials": 2, "epochs": 2, "seed": 0}


def _small_hypermodel(dataset):
    return ConvNetHyperModel(
        dataset.input_shape, dataset.num_classes, blocks=(1, 1), filters=(8,),
        kernel_sizes=(3,), head_layers=(0, 0),
        optimizer_space=OptimizerSpace(optimizers=("adam",), learning_rate=(3e-3, 1e-2),
                                       epochs=(2, 2), batch_sizes=(64,)),
    )


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_run(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    import io
    stream = io.StringIO()
    result = run_pipeline(digits, out, hypermodel=_small_hypermodel(digits), stream=stream,
                          **SMALL)
    return result, stream.getvalue()


def test_run_writes_every_artifact(small_run):
    result, _ = small_run
    out = result.output_dir
    for name in ("report.json", "report.md", "config.json", "models/best.keras",
                 "trials_accuracy_vs_params.png", "models_accuracy_vs_gzip.png"):
        assert (out / name).is_file(), name
    for mode in ("float32", "dynamic", "float16", "int8"):
        assert (out / "models" / f"best_{mode}.tflite").stat().st_size > 1000
        assert (out / f"confusion_best_{mode}.png").stat().st_size > 1000
        assert f"(confusion_best_{mode}.png)" in (out / "report.md").read_text()


def test_report_schema_and_numbers(small_run, digits):
    result, _ = small_run
    report = json.loads((result.output_dir / "report.json").read_text())
    assert report["dataset"]["name"] == "digits"
    assert (report["dataset"]["n_train"], report["dataset"]["n_val"],
            report["dataset"]["n_test"]) == (1257, 270, 270)
    search = report["search"]
    assert search["tuner"] == "random" and search["trials"] == 2
    assert search["wall_time_s"] > 0 and search["refit"] is True
    assert set(search["best_hyperparameters"]) >= {"optimizer", "learning_rate", "conv_blocks"}
    assert [t["status"] for t in report["trials"]] == ["COMPLETED", "COMPLETED"]
    assert all(t["params"] > 0 for t in report["trials"])
    models = {m["mode"]: m for m in report["models"]}
    assert list(models) == ["float32", "dynamic", "float16", "int8"]
    for model in models.values():
        assert set(model) >= {"name", "mode", "path", "size_bytes", "gzip_bytes", "accuracy",
                              "latency_us_median", "params"}
        assert (result.output_dir / model["path"]).is_file()
        assert 0.8 < model["accuracy"] <= 1.0
        assert model["latency_us_median"] > 0
        assert model["params"] == result.best_model.count_params()
        confusion = np.array(model["confusion"])
        assert confusion.shape == (10, 10) and confusion.sum() == 270
        assert np.trace(confusion) / 270 == pytest.approx(model["accuracy"])
        assert 0.8 < model["f1_macro"] <= 1.0
        assert model["train_s"] is None  # refit: not timed
    assert all(t["train_s"] is None and t["val_f1"] is None for t in report["trials"])
    assert models["dynamic"]["size_bytes"] < models["float16"]["size_bytes"] \
        < models["float32"]["size_bytes"]
    assert report["environment"]["tensorflow"].startswith("2.21")


def test_progress_lines_and_final_table(small_run):
    _, text = small_run
    assert "digits (1257 train / 270 val / 270 test)" in text
    assert "[trial 1/2] val_accuracy=" in text and "[trial 2/2] val_accuracy=" in text
    assert "best_int8" in text and "Report:" in text


def test_same_folder_resumes_without_rerunning(small_run, digits):
    result, _ = small_run
    import io
    stream = io.StringIO()
    again = run_pipeline(digits, result.output_dir, hypermodel=_small_hypermodel(digits),
                         stream=stream, **SMALL)
    assert again.report["search"]["resumed"] is True
    assert again.report["search"]["trials_run_now"] == 0
    assert "resuming with 2 completed" in stream.getvalue()
    assert "[trial" not in stream.getvalue()


def test_other_config_in_same_folder_is_refused(small_run, digits):
    result, _ = small_run
    with pytest.raises(ConfigError, match=r"holding a run with another configuration "
                                          r"\(differs in: trials\).*--overwrite"):
        run_pipeline(digits, result.output_dir, trials=3, epochs=2)


def test_a_run_written_before_a_key_existed_resumes(small_run):
    """config.json of an older version lacks keys added since: at their defaults, it resumes."""
    result, _ = small_run
    path = result.output_dir / "config.json"
    saved = path.read_text(encoding="utf-8")
    older = json.loads(saved)
    del older["batch_sizes"]  # added in this version, default None
    path.write_text(json.dumps(older), encoding="utf-8")
    try:
        assert prepare_output(result.output_dir, make_config(**SMALL), False, sweep=False)
        with pytest.raises(ConfigError, match=r"differs in: batch_sizes"):
            prepare_output(result.output_dir, make_config(**SMALL, batch_sizes=[8]),
                           False, sweep=False)
    finally:
        path.write_text(saved, encoding="utf-8")


def test_a_run_written_with_explicit_or_older_defaults_resumes(tmp_path):
    """Older versions wrote compression_space numbers out, compress sparsities as null and
    the quantization choices in another order: the same search resumes, another one does not.
    """
    config = make_config(**SMALL, objectives=["val_accuracy", "gzip_bytes"],
                         compression_space={}, compress={"max_accuracy_drop": 0.02})
    assert not prepare_output(tmp_path, config, False, sweep=False)
    path = tmp_path / "config.json"
    older = json.loads(path.read_text(encoding="utf-8"))
    older["compression_space"].update(
        prune_epochs=3, cluster_epochs=2, learning_rate=0.001,
        quantization=["float32", "dynamic", "float16", "int8"])
    older["compress"].update(sparsities=None, cluster_counts=None)
    path.write_text(json.dumps(older), encoding="utf-8")
    assert prepare_output(tmp_path, config, False, sweep=False)
    for changed in ({"compression_space": {"prune_epochs": 1}},
                    {"compress": {"max_accuracy_drop": 0.02, "sparsities": [0.5]}}):
        other = make_config(**{**SMALL, "objectives": ["val_accuracy", "gzip_bytes"],
                               "compression_space": {},
                               "compress": {"max_accuracy_drop": 0.02}, **changed})
        with pytest.raises(ConfigError, match=rf"differs in: {next(iter(changed))}"):
            prepare_output(tmp_path, other, False, sweep=False)


class _Interrupt(BaseException):
    pass


class _StopsAtThirdFit(ConvNetHyperModel):
    calls = 0

    def fit(self, hp, model, *args, **kwargs):
        type(self).calls += 1
        if type(self).calls == 3:
            raise _Interrupt
        return super().fit(hp, model, *args, **kwargs)


def test_interrupted_search_resumes_and_overwrite_starts_over(digits, tmp_path):
    base = _small_hypermodel(digits)
    stopping = _StopsAtThirdFit.from_config(base.get_config())
    with pytest.raises(_Interrupt):
        run_pipeline(digits, tmp_path, hypermodel=stopping, trials=3, epochs=2)
    result = run_pipeline(digits, tmp_path, hypermodel=_small_hypermodel(digits),
                          trials=3, epochs=2)
    search = result.report["search"]
    assert search["resumed"] is True and search["trials"] == 3
    assert search["trials_run_now"] == 1
    fresh = run_pipeline(digits, tmp_path, hypermodel=_small_hypermodel(digits),
                         trials=1, epochs=2, export_modes=["float32"], overwrite=True)
    assert fresh.report["search"]["resumed"] is False
    assert fresh.report["search"]["trials"] == 1
    assert not (tmp_path / "models" / "best_int8.tflite").exists()


def test_user_numpy_data_and_dense_hypermodel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    dataset = from_arrays(x, y, name="mine")
    result = run_pipeline(dataset, tmp_path, hypermodel="dense", trials=1, epochs=3,
                          export_modes=["float32", "dynamic"])
    assert result.report["search"]["hypermodel"] == "dense"
    assert result.report["dataset"]["name"] == "mine"
    assert [m["mode"] for m in result.report["models"]] == ["float32", "dynamic"]


def test_bad_arguments_fail_before_work(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'trails'"):
        run_pipeline("digits", tmp_path / "a", trails=3)
    with pytest.raises(ConfigError, match=r"Received: hypermodel=42; expected a keras_tuner"):
        run_pipeline("digits", tmp_path / "b", hypermodel=42)
    with pytest.raises(DatasetError):
        run_pipeline("no-such-dataset", tmp_path / "c")
    assert not any(tmp_path.iterdir())


def test_run_with_compression_adds_the_compressed_model(digits, tmp_path):
    result = run_pipeline(
        digits, tmp_path, hypermodel=_small_hypermodel(digits), trials=1, epochs=2,
        export_modes=["float32"],
        compress={"max_accuracy_drop": 0.05, "sparsities": [0.5], "prune_epochs": 1,
                  "cluster_counts": [8], "cluster_epochs": 1, "qat_epochs": 1},
    )
    names = [m["name"] for m in result.report["models"]]
    assert names[0] == "best_float32" and names[1].startswith("compressed_")
    assert (tmp_path / "compression" / "compression.md").is_file()
    assert (tmp_path / result.report["models"][1]["path"]).is_file()
    assert result.report["compression"]["report"] == "compression/compression.md"
    assert "## Compression" in (tmp_path / "report.md").read_text()


MULTI = {"trials": 3, "epochs": 2, "seed": 0, "objectives": ["val_accuracy", "gzip_bytes"],
         "oracle": "nsga2", "export_modes": ["float32"],
         "compression_space": {"sparsities": [0.0, 0.5], "clusters": [0, 8],
                               "quantization": ["float32", "int8"], "prune_epochs": 1,
                               "cluster_epochs": 1}}


def test_multi_objective_run_reports_the_front(digits, tmp_path):
    import io

    stream = io.StringIO()
    result = run_pipeline(digits, tmp_path, hypermodel=_small_hypermodel(digits), stream=stream,
                          **MULTI)
    pareto = result.report["pareto"]
    assert [o["name"] for o in pareto["objectives"]] == ["val_accuracy", "gzip_bytes"]
    assert len(pareto["trials"]) == 3 and pareto["front"]
    assert pareto["hypervolume"] > 0
    assert result.report["search"]["tuner"] == "deployable/nsga2"
    assert result.report["search"]["refit"] is False
    rows = {m["name"] for m in result.report["models"]}
    assert {f"pareto_{trial_id}" for trial_id in pareto["front"]} <= rows
    for name in ("pareto_accuracy_vs_gzip", "pareto_accuracy_vs_latency"):
        assert result.paths.plots[name].stat().st_size > 1000
    trials = {t["trial_id"]: t for t in result.report["trials"]}
    assert all(t["train_s"] > 0 and 0 <= t["val_f1"] <= 1 for t in trials.values())
    best_id = result.report["search"]["best_trial_id"]
    for model in result.report["models"]:
        trial_id = model["name"].removeprefix("pareto_") if model["name"].startswith(
            "pareto_") else best_id
        assert model["train_s"] == trials[trial_id]["train_s"]
        assert result.paths.plots[f"confusion_{model['name']}"].stat().st_size > 1000
    assert "Pareto front" in result.paths.markdown.read_text()
    assert "val_accuracy=" in stream.getvalue() and "gzip_bytes=" in stream.getvalue()
    again = run_pipeline(digits, tmp_path, hypermodel=_small_hypermodel(digits),
                         stream=io.StringIO(), **MULTI)
    assert [t["trial_id"] for t in again.report["pareto"]["trials"]] == \
        [t["trial_id"] for t in pareto["trials"]]
    assert again.report["pareto"]["front"] == pareto["front"]


def test_a_tflm_run_exports_and_recommends_only_what_runs_on_the_microcontroller(
        digits, tmp_path):
    from keras_autoopt.measure import check_tflm

    config = {**MULTI, "trials": 2, "objectives": ["val_accuracy", "flash_bytes"],
              "target": "tflm", "export_modes": ["float32", "dynamic", "float16", "int8"],
              "compression_space": {"sparsities": [0.0], "clusters": [0], "prune_epochs": 1,
                                    "cluster_epochs": 1},
              "compress": {"max_accuracy_drop": 0.05, "sparsities": [0.5], "prune_epochs": 1,
                           "cluster_counts": [8], "cluster_epochs": 1, "qat_epochs": 0}}
    result = run_pipeline(digits, tmp_path, hypermodel=_small_hypermodel(digits), **config)
    models = result.report["models"]
    assert [m["name"] for m in models if m["name"].startswith("best_")] == ["best_int8"]
    assert models[-1]["name"].startswith("compressed_")
    for model in models:
        path = tmp_path / model["path"]
        assert model["mode"] == "int8" and model["device"]["target"] == "tflm", model
        assert model["device"]["flash_bytes"] == path.stat().st_size
        assert model["device"]["reason"] is None and model["device"]["tflm_compatible"]
        check = check_tflm(path, digits.x_val[:8])  # batch 1, runs under TFLite Micro
        assert check.compatible and check.arena_bytes == model["device"]["ram_bytes"]
        assert (path.parent / f"{path.stem}.cc").is_file() or \
            (path.parent / "model_data.cc").is_file()
    front = [m for m in models if m["name"].startswith("pareto_")]
    assert front and all(m["top1_agreement"] is not None for m in front)  # trial's check
    markdown = result.paths.markdown.read_text()
    assert "### On the target: tflm" in markdown and "| fits tflm |" in markdown
    assert "Budgets: flash 1,048,576 bytes, RAM 262,144 bytes." in markdown
    assert "pareto_accuracy_vs_flash" in result.paths.plots
    assert "pareto_accuracy_vs_ram" in result.paths.plots


def test_multi_objective_constraints_and_teacher_are_checked_first(digits, tmp_path):
    with pytest.raises(ConfigError, match=r"Received: teacher='.*missing.keras'; expected an "
                                          r"existing model file"):
        run_pipeline(digits, tmp_path / "a", hypermodel=_small_hypermodel(digits),
                     teacher=str(tmp_path / "missing.keras"), **MULTI)
    with pytest.raises(RuntimeError, match=r"No feasible trial completed out of 3"):
        run_pipeline(digits, tmp_path / "b", hypermodel=_small_hypermodel(digits),
                     constraints={"max_params": 10}, **MULTI)
