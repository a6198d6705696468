"""What a run leaves behind: the best model's exports, its compression, the report dict."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import PipelineConfig
from keras_autoopt.data import Dataset
from keras_autoopt.export import ExportVerificationError, export_for_target, export_tflite
from keras_autoopt.measure import measure_on_target, measure_tflite
from keras_autoopt.pipeline.records import SearchOutcome
from keras_autoopt.report import environment_info
from keras_autoopt.search import TRIAL_EXPORT, ParetoTrial, TrialLeases
from keras_autoopt.targets import Target, get_target

#: How the report rows of the best model's exports are named: ``best_<mode>``.
BEST_PREFIX = "best_"
#: How the report rows of the Pareto front's files are named: ``pareto_<trial_id>``.
PARETO_PREFIX = "pareto_"
#: Fidelity figures of a verified export copied into its report row.
FIDELITY_KEYS = ("verify_samples", "top1_agreement", "keras_accuracy", "tflite_accuracy",
                 "max_abs_diff")
#: The export's sparse-encoding decision, copied into its report row.
SPARSE_KEYS = ("sparse_encoding", "dense_size_bytes", "sparse_reason")


def trial_fidelity(metrics: dict[str, float], samples: int) -> dict[str, Any]:
    """The export check a search trial passed (on the validation split), as report fields."""
    if "export_top1_agreement" not in metrics:
        return {}
    return {"verify_samples": samples, "top1_agreement": metrics["export_top1_agreement"],
            "keras_accuracy": metrics.get("keras_val_accuracy"),
            "tflite_accuracy": metrics["val_accuracy"],
            **({"max_abs_diff": metrics["export_max_abs_diff"]}
               if "export_max_abs_diff" in metrics else {})}


def config_target(config: PipelineConfig) -> Target | None:
    """The run's device target, or None (a single-objective run has none)."""
    return get_target(config.target) if config.target is not None else None


def device_row(path: str | os.PathLike, target: Target | None, dataset: Dataset
               ) -> dict[str, Any]:
    """``{"device": ...}``: the file measured for ``target`` (`measure_on_target`), or {}."""
    if target is None:
        return {}
    return {"device": measure_on_target(path, target, dataset.x_val).to_dict()}


def _trial_sparse(export_json: Path) -> dict[str, Any]:
    """The sparse-encoding decision a trial's export recorded (`TRIAL_EXPORT`), or {}."""
    if not export_json.is_file():  # trials run before the file existed
        return {}
    exported = json.loads(export_json.read_text(encoding="utf-8"))
    return {key: exported[key] for key in SPARSE_KEYS if key in exported}


def front_rows(front: list[ParetoTrial], dataset: Dataset, output_dir: Path,
               target: Target | None = None) -> list[dict[str, Any]]:
    """The report rows of the Pareto front's own TFLite files, measured on the test split.

    With a ``target``, each row also holds the file measured for it (``device``).
    """
    rows = []
    for trial in front:
        metrics = measure_tflite(trial.tflite_path, dataset.x_test, dataset.y_test)
        rows.append({
            "name": f"{PARETO_PREFIX}{trial.trial_id}",
            "mode": trial.hyperparameters.get("quantization", "float32"),
            "path": Path(trial.tflite_path).resolve().relative_to(
                output_dir.resolve()).as_posix(),
            "params": int(trial.metrics["params"]),
            **metrics.to_dict(),
            **trial_fidelity(trial.metrics, len(dataset.x_val)),
            **_trial_sparse(Path(trial.tflite_path).with_name(TRIAL_EXPORT)),
            **device_row(trial.tflite_path, target, dataset),
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

    With a device target (``config.target``), only the modes the target runs
    are exported, as `export_for_target` exports them (batch 1, int8 input and
    output, a C array for microcontrollers), and each row holds the file
    measured for the target (``device``).

    Returns:
        The report rows of the written exports, and the failed exports' records.
    """
    models_dir = output_dir / "models"
    rows, failures = [], []
    target = config_target(config)
    modes = [m for m in config.export_modes if target is None or target.allows(m)]
    for mode in modes:
        path = models_dir / f"{BEST_PREFIX}{mode}.tflite"
        check = {"representative_data": dataset.x_train, "verify_data": dataset.x_val,
                 "verify_labels": dataset.y_val}
        try:
            if target is None:
                exported = export_tflite(model, path, mode=mode, **check)
            else:
                exported = export_for_target(model, path, target, mode,
                                             c_name=f"{BEST_PREFIX}{mode}", **check)
        except ExportVerificationError as exc:
            print(f"EXPORT FAILED ({mode}): {exc}", file=out, flush=True)
            failures.append({"name": f"{BEST_PREFIX}{mode}", "reason": str(exc), **exc.to_dict()})
            continue
        metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test)
        fidelity = exported.to_dict()
        rows.append({
            "name": f"{BEST_PREFIX}{mode}",
            "mode": mode,
            "path": Path(exported.path).relative_to(output_dir).as_posix(),
            "params": int(model.count_params()),
            **metrics.to_dict(),
            **{key: fidelity[key] for key in (*FIDELITY_KEYS, *SPARSE_KEYS) if key in fidelity},
            **device_row(exported.path, target, dataset),
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
    # A device target makes every stage measured as the target runs it (flash, RAM), and a
    # stage it cannot run is never chosen.
    target = {"target": config.target} if config.target is not None else {}
    return auto_compress(model, dataset, output_dir / "compression", seed=config.seed,
                         stream=out, **target, **settings.model_dump(exclude_none=True))


def compressed_row(compression, output_dir: Path, target: Target | None = None,
                   dataset: Dataset | None = None) -> dict[str, Any]:
    """The report row of the model `auto_compress` chose.

    With a device ``target`` (and the ``dataset``), the chosen model is
    exported again for it (`export_for_target`: batch 1, int8 input and
    output, a C array for microcontrollers) into ``models/`` and that file is
    measured, on the test split and for the target (``device``).

    Raises:
        ValueError: If the chosen mode is one the target does not run.
    """
    chosen = compression.chosen
    row = {
        "name": f"compressed_{chosen.name}",
        "mode": chosen.mode,
        "path": Path(chosen.path).relative_to(output_dir).as_posix(),
        "params": int(chosen.model.count_params()) if chosen.model is not None else 0,
        **chosen.metrics,
    }
    if target is None or dataset is None or chosen.model is None:
        return row
    exported = export_for_target(
        chosen.model, output_dir / "models" / f"{row['name']}.tflite", target, chosen.mode,
        c_name=row["name"], representative_data=dataset.x_train, verify_data=dataset.x_val,
        verify_labels=dataset.y_val, verify="sanity")
    metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test)
    return {**row, "path": Path(exported.path).relative_to(output_dir).as_posix(),
            **metrics.to_dict(), **device_row(exported.path, target, dataset)}


def _distributed(leases: TrialLeases, trial_timeout: float) -> dict[str, Any]:
    return {
        "address": f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                   f"{os.environ['KERASTUNER_ORACLE_PORT']}",
        "trial_timeout_s": float(trial_timeout),
        "workers": sorted({t.get("tuner_id") for t in leases.handed_out}),
        "reassigned": list(leases.revoked),
        "late_results_ignored": list(leases.late_results),
    }


def with_train_s(models: list[dict[str, Any]], outcome: SearchOutcome) -> list[dict[str, Any]]:
    """The model rows, each with the ``train_s`` of the trial it came from (None if unknown).

    A row that has ``train_s`` keeps it. A Pareto front row (``pareto_<trial_id>``)
    gets its trial's; the others come from the best trial: the compressed model
    starts from its own model, and so do the ``best_*`` exports unless the best
    trial was refit (a refit is not timed: None).
    """
    train_s = {str(t["trial_id"]): t.get("train_s") for t in outcome.records}
    best_train_s = train_s.get(str(outcome.best_trial_id))
    rows = []
    for row in models:
        name = str(row.get("name", ""))
        if "train_s" in row:
            pass
        elif name.startswith(PARETO_PREFIX):
            row = {**row, "train_s": train_s.get(name.removeprefix(PARETO_PREFIX))}
        elif outcome.refit and name.startswith(BEST_PREFIX):
            row = {**row, "train_s": None}
        else:
            row = {**row, "train_s": best_train_s}
        rows.append(row)
    return rows


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
        models: The model rows (exports, front, compressed model); each row
            without ``train_s`` gets it (see `with_train_s`).
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
        "models": with_train_s(models, outcome),
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
