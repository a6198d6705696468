"""A valid run report, built like the pipeline builds it."""

from __future__ import annotations

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
)


def _trial(trial_id, status, score, params, message=None, **hyperparameters) -> Trial:
    return Trial(
        trial_id=trial_id,
        status=status,
        score=score,
        params=params,
        hyperparameters=hyperparameters,
        message=message,
    )


def _model(name, mode, size_bytes, gzip_bytes, accuracy, latency_us_median) -> ExportedModel:
    return ExportedModel(
        name=name,
        mode=mode,
        path=f"models/{name}.tflite",
        size_bytes=size_bytes,
        gzip_bytes=gzip_bytes,
        accuracy=accuracy,
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


def _stage(name, mode, size_bytes, gzip_bytes, accuracy, **values) -> CompressionStage:
    """A stage record with its ratios computed from the float32 size, as the pipeline does."""
    return CompressionStage(
        stage=name,
        mode=mode,
        path=f"models/{name}.tflite",
        size_bytes=size_bytes,
        gzip_bytes=gzip_bytes,
        accuracy=accuracy,
        size_ratio=FLOAT32_BYTES / size_bytes,
        gzip_ratio=FLOAT32_BYTES / gzip_bytes,
        within_budget=accuracy >= 0.992 - 0.01,
        **values,
    )


def make_compression_record() -> CompressionReport:
    """A compression report with five stages; pcqat_int8 is chosen, the anchor is over budget."""
    dense_16 = {"conv_1": 16, "conv_2": 16, "dense": 16}
    pruned_sparsity = {"conv_1": 0.5, "conv_2": 0.8, "dense": 0.82}
    return CompressionReport(
        model=CompressedModel(name="cnn_small", params=76522, source="search best trial 01"),
        dataset=Dataset(name="digits", n_train=1203, n_val=297, n_test=297),
        budget=Budget(max_accuracy_drop=0.01, baseline_accuracy=0.992),
        chosen="pcqat_int8",
        stages=[
            _stage(
                "float32",
                "float32",
                FLOAT32_BYTES,
                283575,
                0.992,
                sparsity=0.0,
                layer_sparsity={"conv_1": 0.0, "conv_2": 0.0, "dense": 0.0},
                unique_weights={"conv_1": 288, "conv_2": 9216, "dense": 65536},
                latency_us_median=151.25,
                wall_time_s=0.0,
            ),
            _stage(
                "pruned",
                "float32",
                FLOAT32_BYTES,
                71210,
                0.988,
                sparsity=0.8,
                layer_sparsity=dict(pruned_sparsity),
                unique_weights={"conv_1": 145, "conv_2": 1844, "dense": 11797},
                latency_us_median=150.0,
                wall_time_s=42.5,
            ),
            _stage(
                "clustered",
                "float32",
                FLOAT32_BYTES,
                38410,
                0.986,
                sparsity=0.8,
                layer_sparsity=dict(pruned_sparsity),
                unique_weights=dict(dense_16),
                latency_us_median=149.5,
                wall_time_s=30.1,
            ),
            _stage(
                "pcqat_int8",
                "int8",
                85880,
                8785,
                0.984,
                sparsity=0.8,
                layer_sparsity=dict(pruned_sparsity),
                unique_weights=dict(dense_16),
                latency_us_median=64.5,
                wall_time_s=55.0,
                qat_epochs=2,
            ),
            _stage(
                "anchor_tfmot_guide",
                "int8",
                85912,
                7950,
                0.975,
                sparsity=0.5,
                layer_sparsity={"conv_1": 0.5, "conv_2": 0.5, "dense": 0.5},
                unique_weights=dict(dense_16),
                latency_us_median=63.9,
                wall_time_s=61.7,
            ),
        ],
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
                hyperparameters={
                    "sparsity": 0.5,
                    "clusters": 16,
                    "quantization": "int8",
                    "filters": 8,
                },
            ),
            pareto_trial(
                "01",
                metrics=_metrics(0.9731, 9876, 14500, 3.2, 8000),
                hyperparameters={
                    "sparsity": 0.8,
                    "clusters": 8,
                    "quantization": "int8",
                    "distill_temperature": 4.0,
                    "distill_alpha": 0.3,
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
