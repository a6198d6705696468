"""The pipeline's multi-objective search: `DeployableTuner` from a `PipelineConfig`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_autoopt._backend import keras, kt
from keras_autoopt.config import ConfigError, PipelineConfig
from keras_autoopt.data import Dataset
from keras_autoopt.load import ModelFileError, load_model_file
from keras_autoopt.search import (
    CompressionSpace,
    Constraints,
    DeployableTuner,
    ParetoTrial,
    SearchStopped,
    TrialLogger,
    default_reference,
    failure_reason,
    failures_stop_cleanly,
    is_rejected,
    make_oracle,
    oracle_objectives,
)


@dataclass(frozen=True)
class DeployableOutcome:
    """What the multi-objective search produced.

    Attributes:
        tuner: The tuner (its oracle holds every trial).
        records: One report record per trial.
        front: The Pareto front, most accurate first.
        best: The front's most accurate trial (fewest gzip bytes on ties).
        pareto: The report's ``pareto`` section.
        wall_time_s: Search time.
        done_before: Trials completed by an earlier run (resume).
    """

    tuner: DeployableTuner
    records: list[dict[str, Any]]
    front: list[ParetoTrial]
    best: ParetoTrial
    pareto: dict[str, Any]
    wall_time_s: float
    done_before: int


def _load_teacher(path: str | None, trust_model: bool = False) -> keras.Model | None:
    if path is None:
        return None
    try:
        teacher = load_model_file(path, arg="teacher", trust_model=trust_model)
    except ModelFileError as exc:
        raise ConfigError(str(exc)) from None
    teacher.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return teacher


def build_deployable_tuner(config: PipelineConfig, hypermodel: kt.HyperModel,
                           output_dir: Path, logger: TrialLogger | None = None, *,
                           trust_model: bool = False) -> DeployableTuner:
    """The configured `DeployableTuner` (resuming from ``output_dir/search``).

    ``trust_model`` lets the teacher file run the code it holds (see
    `keras_autoopt.load.load_model_file`).

    Raises:
        ConfigError: For a teacher that cannot be loaded.
    """
    objectives = [tuple(o) for o in config.objectives]
    space = config.compression_space
    compression = CompressionSpace(**(space.model_dump() if space is not None else {}))
    constraints = Constraints(**(config.constraints.model_dump()
                                 if config.constraints is not None else {}))
    oracle = make_oracle(config.oracle_name(), oracle_objectives(objectives),
                         max_trials=config.trials, seed=config.seed)
    teacher = _load_teacher(config.teacher, trust_model)
    tuner = DeployableTuner(hypermodel, oracle, objectives=objectives, constraints=constraints,
                            compression=compression, teacher=teacher,
                            max_retries_per_trial=config.max_retries_per_trial,
                            max_consecutive_failed_trials=config.max_consecutive_failed_trials,
                            directory=output_dir, project_name="search")
    tuner.trial_logger = logger
    return tuner


def _reason(trial) -> str | None:
    return failure_reason(trial.message)


def trial_records(tuner: DeployableTuner) -> list[dict[str, Any]]:
    """One report record per trial: the run report's and the Pareto section's fields."""
    records = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        status = str(getattr(trial.status, "value", trial.status))
        metrics = {name: float(trial.metrics.get_last_value(name))
                   for name in trial.metrics.metrics if trial.metrics.exists(name)
                   and name != tuner.oracle.objective.name}
        completed = status == "COMPLETED"
        rejected = is_rejected(trial)
        reason = _reason(trial) if not completed else None
        if rejected:
            reason = trial.message.split("Rejected before training:", 1)[-1].strip() \
                .splitlines()[0]
        records.append({
            "trial_id": str(trial_id),
            "status": status,
            "score": metrics.get("val_accuracy") if completed else None,
            "params": int(metrics["params"]) if completed and "params" in metrics else None,
            "hyperparameters": dict(trial.hyperparameters.values),
            "message": reason,
            "rejected": rejected,
            "reason": reason,
            "feasible": (metrics.get("feasible", 1.0) >= 0.5) if completed else None,
            "metrics": metrics,
        })
    return records


def run_deployable_search(tuner: DeployableTuner, config: PipelineConfig, dataset: Dataset,
                          output_dir: Path) -> DeployableOutcome:
    """Run (or resume) the multi-objective search and summarize its front.

    Raises:
        SearchStopped: When no trial is feasible and completed, or too many
            failed in a row.
    """
    done_before = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    start = time.perf_counter()
    with failures_stop_cleanly(str(output_dir / "search")):
        tuner.search(dataset.x_train, dataset.y_train,
                     validation_data=(dataset.x_val, dataset.y_val), verbose=0)
    wall = time.perf_counter() - start
    records = trial_records(tuner)
    front = tuner.get_pareto_front()
    if not front:
        reasons = sorted({r["reason"] for r in records if r["reason"]})
        raise SearchStopped(
            f"No feasible trial completed out of {len(records)} (constraints "
            f"{tuner.constraints.get_config()}); reasons: {reasons[:3]}.")
    front.sort(key=lambda p: (-p.metrics["val_accuracy"], p.metrics["gzip_bytes"]))
    directions = [o.direction for o in tuner.objectives]
    points = [[t["metrics"][o.name] for o in tuner.objectives] for t in records
              if t["status"] == "COMPLETED" and t["feasible"]]
    reference = default_reference(points, directions)
    pareto = {
        "objectives": [{"name": o.name, "direction": o.direction} for o in tuner.objectives],
        "oracle": config.oracle_name(),
        "constraints": tuner.constraints.get_config(),
        "trials": [{k: r[k] for k in ("trial_id", "status", "rejected", "reason", "feasible",
                                      "metrics", "hyperparameters")} for r in records],
        "front": [p.trial_id for p in front],
        "hypervolume": float(tuner.hypervolume(reference)),
        "reference": [float(v) for v in reference],
        "reference_rule": "worst feasible value of each objective, 10 % of its range further",
    }
    return DeployableOutcome(tuner=tuner, records=records, front=front, best=front[0],
                             pareto=pareto, wall_time_s=wall, done_before=done_before)


def check_teacher(config: PipelineConfig, dataset: Dataset, *, trust_model: bool = False
                  ) -> None:
    """Load the configured teacher once before any training and check its shapes.

    A teacher file that would run code on load is refused unless ``trust_model``.

    Raises:
        ConfigError: For a missing or unusable teacher file, or one whose input or
            output shape does not match the data.
    """
    teacher = _load_teacher(config.teacher, trust_model)
    if teacher is None:
        return
    if tuple(teacher.input_shape[1:]) != tuple(dataset.input_shape) or \
            teacher.output_shape[-1] != dataset.num_classes:
        raise ConfigError(
            f"Received: teacher={config.teacher!r} with input shape "
            f"{tuple(teacher.input_shape[1:])} and {teacher.output_shape[-1]} outputs; expected "
            f"input shape {tuple(dataset.input_shape)} and {dataset.num_classes} outputs.")
