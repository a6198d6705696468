"""A valid run report, built like the pipeline builds it, and helpers to read what is written.

The helpers are fixtures that return functions (pytest runs with ``--import-mode=importlib``:
tests cannot import helpers from this file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keras_autoopt.report import (
    Budget,
    CompressedModel,
    CompressionReport,
    CompressionStage,
    Dataset,
    ExportedModel,
    Pareto,
    ParetoObjective,
    ParetoTrial,
    RunReport,
    Search,
    Trial,
    _pareto_plots,
    write_compression_report,
    write_report,
)
from keras_autoopt.report import _plots as plots_module


def _trial(trial_id, status, score, params, message=None, **hyperparameters) -> Trial:
    return Trial(
        trial_id=trial_id,
        status=status,
        score=score,
        params=params,
        hyperparameters=hyperparameters,
        message=message,
    )


def _tflite(name, mode, size_bytes, gzip_bytes, accuracy) -> dict:
    """The fields an exported model and a compression stage share."""
    return dict(
        mode=mode,
        path=f"models/{name}.tflite",
        size_bytes=size_bytes,
        gzip_bytes=gzip_bytes,
        accuracy=accuracy,
    )


def _model(name, mode, size_bytes, gzip_bytes, accuracy, latency_us_median) -> ExportedModel:
    return ExportedModel(
        name=name,
        **_tflite(name, mode, size_bytes, gzip_bytes, accuracy),
        latency_us_median=latency_us_median,
        params=76522,
    )


def make_report_record() -> RunReport:
    """A report with four trials (one failed) and four exported models."""
    return RunReport(
        dataset=Dataset(name="digits", n_train=1203, n_val=297, n_test=297, classes=10),
        search=Search(
            tuner="RandomSearch",
            trials=3,
            best_hyperparameters={"filters": 32, "dense": 128, "learning_rate": 0.001},
            wall_time_s=3723.4,
            objective="val_accuracy",
        ),
        trials=[
            _trial("00", "COMPLETED", 0.9562, 12345, filters=8, dense=32, learning_rate=0.01),
            _trial("01", "COMPLETED", 0.9916, 76522, filters=32, dense=128, learning_rate=0.001),
            _trial(
                "02", "FAILED", None, None, "NaN loss at epoch 1",
                filters=64, dense=256, learning_rate=0.1,
            ),
            _trial("03", "COMPLETED", 0.9731, 30110, filters=16, dense=64, learning_rate=0.003),
        ],
        models=[
            _model("float32", "float32", 309240, 283575, 0.992, 151.25),
            _model("dynamic_range", "dynamic", 83296, 78506, 0.992, 98.0),
            _model("pruned_int8", "int8", 85880, 18880, 0.982, 64.5),
            _model("pcqat", "int8", 83344, 13860, 0.965, 63.9),
        ],
        environment={
            "python": "3.11.7",
            "platform": "Linux-x86_64",
            "tensorflow": "2.21.0",
            "ai-edge-litert": None,
        },
        run_id="demo-1",
    )


def make_report() -> dict:
    """`make_report_record` as the plain dict the writers take."""
    return make_report_record().model_dump()


@pytest.fixture
def report() -> dict:
    return make_report()


FLOAT32_BYTES = 309240


LAYERS = ("conv_1", "conv_2", "dense")

# stage, mode, size_bytes, gzip_bytes, accuracy, latency_us_median, wall_time_s, sparsity
STAGES = (
    ("float32", "float32", FLOAT32_BYTES, 283575, 0.992, 151.25, 0.0, 0.0),
    ("pruned", "float32", FLOAT32_BYTES, 71210, 0.988, 150.0, 42.5, 0.8),
    ("clustered", "float32", FLOAT32_BYTES, 38410, 0.986, 149.5, 30.1, 0.8),
    ("pcqat_int8", "int8", 85880, 8785, 0.984, 64.5, 55.0, 0.8),
    ("anchor_tfmot_guide", "int8", 85912, 7950, 0.975, 63.9, 61.7, 0.5),
)
# stage: (layer_sparsity, unique_weights), each per layer of LAYERS
STAGE_LAYERS = {
    "float32": ((0.0, 0.0, 0.0), (288, 9216, 65536)),
    "pruned": ((0.5, 0.8, 0.82), (145, 1844, 11797)),
    "clustered": ((0.5, 0.8, 0.82), (16, 16, 16)),
    "pcqat_int8": ((0.5, 0.8, 0.82), (16, 16, 16)),
    "anchor_tfmot_guide": ((0.5, 0.5, 0.5), (16, 16, 16)),
}
STAGE_EXTRAS = {"pcqat_int8": {"qat_epochs": 2}}


def _stage(name, mode, size_bytes, gzip_bytes, accuracy, latency, wall_time, sparsity):
    """A stage record with its ratios computed from the float32 size, as the pipeline does."""
    layer_sparsity, unique_weights = STAGE_LAYERS[name]
    return CompressionStage(
        stage=name,
        **_tflite(name, mode, size_bytes, gzip_bytes, accuracy),
        size_ratio=FLOAT32_BYTES / size_bytes,
        gzip_ratio=FLOAT32_BYTES / gzip_bytes,
        within_budget=accuracy >= 0.992 - 0.01,
        sparsity=sparsity,
        layer_sparsity=dict(zip(LAYERS, layer_sparsity, strict=True)),
        unique_weights=dict(zip(LAYERS, unique_weights, strict=True)),
        latency_us_median=latency,
        wall_time_s=wall_time,
        **STAGE_EXTRAS.get(name, {}),
    )


def make_compression_record() -> CompressionReport:
    """A compression report with five stages; pcqat_int8 is chosen, the anchor is over budget."""
    return CompressionReport(
        model=CompressedModel(name="cnn_small", params=76522, source="search best trial 01"),
        dataset=Dataset(name="digits", n_train=1203, n_val=297, n_test=297),
        budget=Budget(max_accuracy_drop=0.01, baseline_accuracy=0.992),
        chosen="pcqat_int8",
        stages=[_stage(*row) for row in STAGES],
        environment={"python": "3.11.7", "tensorflow": "2.21.0", "ai-edge-litert": None},
        sensitivity={
            "conv_1": {"0.5": 0.002, "0.8": 0.011},
            "conv_2": {"0.5": 0.0, "0.8": 0.004},
            "dense": {"0.8": 0.003, "0.5": 0.001, "0.9": -0.001},
        },
        seed=7,
        epochs=2,
    )


def make_compression_report() -> dict:
    """`make_compression_record` as the plain dict the writers take."""
    return make_compression_record().model_dump()


@pytest.fixture
def compression_report() -> dict:
    return make_compression_report()


def pareto_trial(trial_id, status="COMPLETED", *, feasible=True, rejected=False, reason=None, **kw):
    return ParetoTrial(
        trial_id=trial_id,
        status=status,
        rejected=rejected,
        reason=reason,
        feasible=feasible,
        metrics=kw.get("metrics", {}),
        hyperparameters=kw.get("hyperparameters", {}),
    )


def _metrics(accuracy, gzip_bytes, size_bytes, latency_us, params) -> dict:
    return {
        "val_accuracy": accuracy,
        "gzip_bytes": gzip_bytes,
        "size_bytes": size_bytes,
        "latency_us": latency_us,
        "params": params,
    }


def make_pareto() -> dict:
    """Seven trials: three on the front, one dominated, one infeasible, one rejected, one failed."""
    return Pareto(
        objectives=[
            ParetoObjective(name="val_accuracy", direction="max"),
            ParetoObjective(name="gzip_bytes", direction="min"),
        ],
        oracle="nsga2",
        constraints={
            "max_params": None,
            "max_size_bytes": 50000,
            "max_latency_ms": None,
            "min_accuracy": None,
        },
        trials=[
            pareto_trial(
                "00",
                metrics=_metrics(0.9512, 4210, 6200, 2.84, 3100),
                hyperparameters=dict(sparsity=0.5, clusters=16, quantization="int8", filters=8),
            ),
            pareto_trial(
                "01",
                metrics=_metrics(0.9731, 9876, 14500, 3.2, 8000),
                hyperparameters={
                    "sparsity": 0.8,
                    "clusters": 8,
                    "quantization": "int8",
                    "temperature": 4.0,
                    "alpha": 0.3,
                    "filters": 16,
                },
            ),
            pareto_trial(
                "02",
                metrics=_metrics(0.9400, 12000, 16000, 3.9, 9000),
                hyperparameters={"sparsity": 0.8, "filters": 16},
            ),
            pareto_trial(
                "03",
                metrics=_metrics(0.9866, 20480, 31000, 5.71, 21000),
                hyperparameters={"sparsity": 0.0, "quantization": "float16", "filters": 32},
            ),
            pareto_trial(
                "04",
                feasible=False,
                reason="size_bytes 61,240 > max_size_bytes 50,000",
                metrics=_metrics(0.9910, 52000, 61240, 9.1, 60000),
                hyperparameters={"filters": 64},
            ),
            pareto_trial(
                "05",
                "FAILED",
                feasible=None,
                rejected=True,
                reason="estimated int8 size 120,512 bytes > max_size_bytes 50,000",
                metrics={"params": 120000},
                hyperparameters={"filters": 128},
            ),
            pareto_trial(
                "06",
                "FAILED",
                feasible=None,
                reason="NaN loss\nat epoch 2",
                hyperparameters={"filters": 8, "learning_rate": 0.5},
            ),
        ],
        front=["00", "01", "03"],
        hypervolume=1234.5678,
        reference=[0.8, 52000],
    ).model_dump()


@pytest.fixture
def pareto() -> dict:
    return make_pareto()


def _table_row(text: str, first_cell: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0]


@pytest.fixture(scope="session")
def table_row():
    """``table_row(text, first_cell) -> str``: the one Markdown table row whose first cell is it."""
    return _table_row


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="session")
def markdown_section():
    """``markdown_section(markdown, heading)``: the ``## heading`` section, up to the next."""
    return _section


def _read_strict_json(path: Path):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


@pytest.fixture(scope="session")
def read_strict_json():
    """``read_strict_json(path)``: the JSON file parsed; NaN or Infinity in it fails the test."""
    return _read_strict_json


@pytest.fixture
def report_markdown(tmp_path):
    """``report_markdown(report) -> str``: `write_report` into ``tmp_path``, report.md's text."""
    return lambda report: write_report(report, tmp_path).markdown.read_text(encoding="utf-8")


@pytest.fixture
def compression_markdown(tmp_path):
    """``compression_markdown(report) -> str``: `write_compression_report` into ``tmp_path``."""

    def write(report) -> str:
        return write_compression_report(report, tmp_path).markdown.read_text(encoding="utf-8")

    return write


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fast_plots(monkeypatch):
    """Skip drawing (every plot is the bytes ``b"png"``) where only the text is checked."""
    for name in ("render_trials_plot", "render_models_plot", "render_compression_plot",
                 "render_confusion_plot"):
        monkeypatch.setattr(plots_module, name, lambda *args: b"png")
    monkeypatch.setattr(_pareto_plots, "render_pareto_plot", lambda *args: b"png")


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # a drawn chart, not an empty image


@pytest.fixture(scope="session")
def assert_png():
    """``assert_png(path)``: the file is a drawn PNG chart, not an empty image or a stub."""
    return _assert_png


def _assert_rows(text: str, *rows: str) -> None:
    for row in rows:
        first_cell = row.removeprefix("| ").split(" |", 1)[0]
        assert _table_row(text, first_cell) == row


@pytest.fixture(scope="session")
def assert_rows():
    """``assert_rows(text, *rows)``: each row is, whole, the one row that starts with its cell."""
    return _assert_rows


def _assert_contains(text: str, *fragments: str) -> None:
    missing = [fragment for fragment in fragments if fragment not in text]
    assert not missing, f"not in the text: {missing}"


@pytest.fixture(scope="session")
def assert_contains():
    """``assert_contains(text, *fragments)``: every fragment is in the text (all missing named)."""
    return _assert_contains
