"""A valid run report, built like the pipeline builds it."""

from __future__ import annotations

import pytest


def make_report() -> dict:
    """A report with four trials (one failed) and four exported models."""
    return {
        "dataset": {"name": "digits", "n_train": 1203, "n_val": 297, "n_test": 297, "classes": 10},
        "search": {
            "tuner": "RandomSearch",
            "trials": 3,
            "best_hyperparameters": {"filters": 32, "dense": 128, "learning_rate": 0.001},
            "wall_time_s": 3723.4,
            "objective": "val_accuracy",
        },
        "trials": [
            {
                "trial_id": "00",
                "status": "COMPLETED",
                "score": 0.9562,
                "params": 12345,
                "hyperparameters": {"filters": 8, "dense": 32, "learning_rate": 0.01},
                "message": None,
            },
            {
                "trial_id": "01",
                "status": "COMPLETED",
                "score": 0.9916,
                "params": 76522,
                "hyperparameters": {"filters": 32, "dense": 128, "learning_rate": 0.001},
                "message": None,
            },
            {
                "trial_id": "02",
                "status": "FAILED",
                "score": None,
                "params": None,
                "hyperparameters": {"filters": 64, "dense": 256, "learning_rate": 0.1},
                "message": "NaN loss at epoch 1",
            },
            {
                "trial_id": "03",
                "status": "COMPLETED",
                "score": 0.9731,
                "params": 30110,
                "hyperparameters": {"filters": 16, "dense": 64, "learning_rate": 0.003},
                "message": None,
            },
        ],
        "models": [
            {
                "name": "float32",
                "mode": "float32",
                "path": "models/float32.tflite",
                "size_bytes": 309240,
                "gzip_bytes": 283575,
                "accuracy": 0.992,
                "latency_us_median": 151.25,
                "params": 76522,
            },
            {
                "name": "dynamic_range",
                "mode": "dynamic_range",
                "path": "models/dynamic_range.tflite",
                "size_bytes": 83296,
                "gzip_bytes": 78506,
                "accuracy": 0.992,
                "latency_us_median": 98.0,
                "params": 76522,
            },
            {
                "name": "pruned_int8",
                "mode": "int8",
                "path": "models/pruned_int8.tflite",
                "size_bytes": 85880,
                "gzip_bytes": 18880,
                "accuracy": 0.982,
                "latency_us_median": 64.5,
                "params": 76522,
            },
            {
                "name": "pcqat",
                "mode": "int8",
                "path": "models/pcqat.tflite",
                "size_bytes": 83344,
                "gzip_bytes": 13860,
                "accuracy": 0.965,
                "latency_us_median": 63.9,
                "params": 76522,
            },
        ],
        "environment": {
            "python": "3.11.7",
            "platform": "Linux-x86_64",
            "tensorflow": "2.21.0",
            "ai-edge-litert": None,
        },
        "run_id": "demo-1",
    }


@pytest.fixture
def report() -> dict:
    return make_report()


FLOAT32_BYTES = 309240


def _stage(name, mode, size_bytes, gzip_bytes, accuracy, **values) -> dict:
    """A stage record with its ratios computed from the float32 size, as the pipeline does."""
    record = {
        "stage": name,
        "mode": mode,
        "path": f"models/{name}.tflite",
        "size_bytes": size_bytes,
        "gzip_bytes": gzip_bytes,
        "accuracy": accuracy,
        "size_ratio": FLOAT32_BYTES / size_bytes,
        "gzip_ratio": FLOAT32_BYTES / gzip_bytes,
        "within_budget": accuracy >= 0.992 - 0.01,
    }
    record.update(values)
    return record


def make_compression_report() -> dict:
    """A compression report with five stages; pcqat_int8 is chosen, the anchor is over budget."""
    dense_16 = {"conv_1": 16, "conv_2": 16, "dense": 16}
    pruned_sparsity = {"conv_1": 0.5, "conv_2": 0.8, "dense": 0.82}
    return {
        "model": {"name": "cnn_small", "params": 76522, "source": "search best trial 01"},
        "dataset": {"name": "digits", "n_train": 1203, "n_val": 297, "n_test": 297},
        "budget": {"max_accuracy_drop": 0.01, "baseline_accuracy": 0.992},
        "chosen": "pcqat_int8",
        "stages": [
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
        "environment": {"python": "3.11.7", "tensorflow": "2.21.0", "ai-edge-litert": None},
        "sensitivity": {
            "conv_1": {"0.5": 0.002, "0.8": 0.011},
            "conv_2": {"0.5": 0.0, "0.8": 0.004},
            "dense": {"0.8": 0.003, "0.5": 0.001, "0.9": -0.001},
        },
        "seed": 7,
        "epochs": 2,
    }


@pytest.fixture
def compression_report() -> dict:
    return make_compression_report()
