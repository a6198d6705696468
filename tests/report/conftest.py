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
