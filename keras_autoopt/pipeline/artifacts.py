"""What a run leaves behind: the best model's exports, its compression, the report dict."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import PipelineConfig
from keras_autoopt.data import Dataset
from keras_autoopt.export import ExportVerificationError, export_tflite
from keras_autoopt.measure import measure_tflite
from keras_autoopt.pipeline.records import SearchOutcome
from keras_autoopt.report import environment_info
from keras_autoopt.search import ParetoTrial, TrialLeases

#: Fidelity figures of a verified export copied into its report row.
FIDELITY_KEYS = ("verify_samples", "top1_agreement", "keras_accuracy", "tflite_accuracy",
                 "max_abs_diff")


def trial_fidelity(metrics: dict[str, float], samples: int) -> dict[str, Any]:
    """The export check a search trial passed (on the validation split), as report fields."""
    if "export_top1_agreement" not in metrics:
        return {}
    return {"verify_samples": samples, "top1_agreement": metrics["export_top1_agreement"],
            "keras_accuracy": metrics.get("keras_val_accuracy"),
            "tflite_accuracy": metrics["val_accuracy"],
            **({"max_abs_diff": metrics["export_max_abs_diff"]}
               if "export_max_abs_diff" in metrics else {})}


def front_rows(front: list[ParetoTrial], dataset: Dataset, output_dir: Path
               ) -> list[dict[str, Any]]:
    """The report rows of the Pareto front's own TFLite files, measured on the test split."""
    rows = []
    for trial in front:
        metrics = measure_tflite(trial.tflite_path, dataset.x_test, dataset.y_test)
        rows.append({
            "name": f"pareto_{trial.trial_id}",
            "mode": trial.hyperparameters.get("quantization", "float32"),
            "path": Path(trial.tflite_path).resolve().relative_to(
                output_dir.resolve()).as_posix(),
            "params": int(trial.metrics["params"]),
            **metrics.to_dict(),
            **trial_fidelity(trial.metrics, len(dataset.x_val)),
        })
    return rows


def export_best(model: keras.Model, config: PipelineConfig, dataset: Dataset,
                output_dir: Path, out: TextIO) -> tuple[list[dict], list[dict]]:
    """Export ``model`` in every configured mode, verified on the validation split.

    Each export is checked against the Keras model on the whole validation
    split (top-1 agreement, and accuracy within ``DEFAULT_MAX_ACCURACY_DROP``)
    before its file is written; the figures go into its report row. An export
    that fails the check writes no file: it is reported loudly, on ``out`` and
    in the report's ``export_failures``, and the other modes go on.

    Returns:
        The report rows of the written exports, and the failed exports' records.
    """
    models_dir = output_dir / "models"
    rows, failures = [], []
    for mode in config.export_modes:
        try:
            exported = export_tflite(
                model, models_dir / f"best_{mode}.tflite", mode=mode,
                representative_data=dataset.x_train, verify_data=dataset.x_val,
                verify_labels=dataset.y_val,
            )
        except ExportVerificationError as exc:
            print(f"EXPORT FAILED ({mode}): {exc}", file=out, flush=True)
            failures.append({"name": f"best_{mode}", "reason": str(exc), **exc.to_dict()})
            continue
        metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test)
        fidelity = exported.to_dict()
        rows.append({
            "name": f"best_{mode}",
            "mode": mode,
            "path": Path(exported.path).relative_to(output_dir).as_posix(),
            "params": int(model.count_params()),
            **metrics.to_dict(),
            **{key: fidelity[key] for key in FIDELITY_KEYS if key in fidelity},
        })
    return rows, failures


def compress_best(model: keras.Model, config: PipelineConfig, dataset: Dataset,
                  output_dir: Path, out: TextIO):
    """Run `auto_compress` on the best trial's own model (trained on train only).

    The refit model has seen the validation split, which `auto_compress` uses
    for its decisions; the trial's model has not.
    """
    settings = config.compress
    print(f"Compressing the best trial's model (budget {settings.max_accuracy_drop:.2%} "
          "validation accuracy)", file=out, flush=True)
    return auto_compress(model, dataset, output_dir / "compression", seed=config.seed,
                         stream=out, **settings.model_dump(exclude_none=True))


def compressed_row(compression, output_dir: Path) -> dict[str, Any]:
    """The report row of the model `auto_compress` chose."""
    chosen = compression.chosen
    return {
        "name": f"compressed_{chosen.name}",
        "mode": chosen.mode,
        "path": Path(chosen.path).relative_to(output_dir).as_posix(),
        "params": int(chosen.model.count_params()) if chosen.model is not None else 0,
        **chosen.metrics,
    }


def _distributed(leases: TrialLeases, trial_timeout: float) -> dict[str, Any]:
    return {
        "address": f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                   f"{os.environ['KERASTUNER_ORACLE_PORT']}",
        "trial_timeout_s": float(trial_timeout),
        "workers": sorted({t.get("tuner_id") for t in leases.handed_out}),
        "reassigned": list(leases.revoked),
        "late_results_ignored": list(leases.late_results),
    }


def build_report(outcome: SearchOutcome, *, config: PipelineConfig, dataset: Dataset,
                 hypermodel_name: str, resumed: bool, models: list[dict],
                 export_failures: list[dict], compression, leases: TrialLeases | None,
                 trial_timeout: float) -> dict[str, Any]:
    """The run report (``report.json``) from the search's outcome and the artifacts.

    Args:
        outcome: What the search produced.
        config: The run configuration.
        dataset: The data.
        hypermodel_name: The report's ``search.hypermodel``.
        resumed: Whether an earlier run was resumed.
        models: The model rows (exports, front, compressed model).
        export_failures: The failed exports' records.
        compression: The `AutoCompressResult`, or None.
        leases: The chief's `TrialLeases` of a distributed search, or None.
        trial_timeout: The chief's trial timeout (distributed search only).
    """
    trials = outcome.records
    search = {
        "tuner": outcome.tuner_name,
        "hypermodel": hypermodel_name,
        "objective": outcome.objective,
        "trials": sum(t["status"] == "COMPLETED" for t in trials),
        "trials_total": len(trials),
        "trials_run_now": len(trials) - outcome.done_before,
        "resumed": resumed,
        "best_trial_id": outcome.best_trial_id,
        "best_score": float(outcome.best_score),
        "best_hyperparameters": outcome.best_hyperparameters,
        "direction": outcome.direction,
        "refit": outcome.refit,
        "wall_time_s": round(outcome.wall_time_s, 3),
        "seed": config.seed,
    }
    if leases is not None:
        search["distributed"] = _distributed(leases, trial_timeout)
    report = {
        "dataset": dataset.summary(),
        "search": search,
        "trials": trials,
        "models": models,
        "config": config.model_dump(mode="json"),
        "environment": environment_info(),
    }
    if outcome.pareto is not None:
        report["pareto"] = outcome.pareto
    if export_failures:
        report["export_failures"] = export_failures
    if compression is not None:
        chosen_row = next(row for row in compression.report["stages"]
                          if row["stage"] == compression.chosen.name)
        report["compression"] = {
            "report": "compression/compression.md",
            "chosen": chosen_row,
            "budget": compression.report["budget"],
        }
    return report
