"""The two searches of the pipeline, behind one small interface.

`search_strategy` picks one from the configuration, once: `SingleObjectiveSearch`
(a keras-tuner tuner on ``val_accuracy``, then an optional refit) or
`DeployableSearch` (a `DeployableTuner` on several objectives, whose Pareto
front's own models are the artifacts). Both build a tuner, run it and return a
`SearchOutcome`; the rest of the pipeline never asks which one ran.
"""

from __future__ import annotations

import abc
import functools
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from keras_autoopt._backend import keras, kt
from keras_autoopt._failure import stage
from keras_autoopt.compress import CompressionSpace
from keras_autoopt.config import ConfigError, PipelineConfig
from keras_autoopt.data import Dataset
from keras_autoopt.load import ModelFileError, is_keras3_file, load_model_file
from keras_autoopt.pipeline.artifacts import config_target, front_rows
from keras_autoopt.pipeline.records import (
    SearchOutcome,
    completed_trials,
    status_of,
    trial_records,
)
from keras_autoopt.search import (
    Constraints,
    DeployableTuner,
    ParetoTrial,
    SearchStopped,
    TrialLogger,
    default_reference,
    failures_stop_cleanly,
    make_oracle,
    make_tuner,
    oracle_objectives,
)


def refit_best(hypermodel: kt.HyperModel, hyperparameters: kt.HyperParameters,
               dataset: Dataset, *, seed: int = 0) -> keras.Model:
    """Train ``hyperparameters`` afresh on the train and validation splits together.

    The number of epochs is the trial's own (Hyperband's ``tuner/epochs`` when
    set), so the learning-rate schedule runs as it did in the search.

    Args:
        hypermodel: The searched HyperModel.
        hyperparameters: The best trial's hyperparameters.
        dataset: The data; its test split is not used.
        seed: Seed of the weights and shuffling.

    Returns:
        The trained model.

    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    hp = hyperparameters.copy()
    model = hypermodel.build(hp)
    fit_kwargs: dict[str, Any] = {"verbose": 0}
    if "tuner/epochs" in hp.values:
        fit_kwargs["epochs"] = int(hp.values["tuner/epochs"])
    hypermodel.fit(
        hp, model,
        np.concatenate([dataset.x_train, dataset.x_val]),
        np.concatenate([dataset.y_train, dataset.y_val]),
        **fit_kwargs,
    )
    return model


class SearchStrategy(abc.ABC):
    """One way of searching: build the tuner, run it, summarize it as a `SearchOutcome`.

    Invariants every strategy keeps:

    - `build_tuner` checks what it can before any training (a bad teacher file
      raises `ConfigError`) and resumes from ``output_dir/search``;
    - `search` marks its training with ``stage("search")``, leaves the trials
      on disk when it stops, and raises `SearchStopped` rather than returning
      an outcome without a usable best trial;
    - the outcome's ``records`` come from `trial_records` (one meaning of each key).

    Args:
        config: The run configuration.
    """

    def __init__(self, config: PipelineConfig):
        self.config = config

    @abc.abstractmethod
    def describe(self) -> str:
        """What searches, for the run's first progress line."""

    @abc.abstractmethod
    def build_tuner(self, hypermodel: kt.HyperModel, dataset: Dataset, output_dir: Path,
                    logger: TrialLogger | None, *, trust_model: bool = False) -> kt.Tuner:
        """The configured tuner, resuming from ``output_dir/search``."""

    @abc.abstractmethod
    def search(self, tuner: kt.Tuner, hypermodel: kt.HyperModel, dataset: Dataset,
               output_dir: Path, out: TextIO) -> SearchOutcome:
        """Run (or resume) the search with ``tuner``, then pick its best model."""

    def _run_tuner(self, tuner: kt.Tuner, dataset: Dataset, output_dir: Path) -> float:
        """Run the tuner on the train split (validated on the validation split); its wall time."""
        start = time.perf_counter()
        with failures_stop_cleanly(str(output_dir / "search")):
            tuner.search(dataset.x_train, dataset.y_train,
                         validation_data=(dataset.x_val, dataset.y_val), verbose=0)
        return time.perf_counter() - start


def _objective_score(trial, metrics: dict[str, float]) -> float | None:
    """The oracle's score of the trial (its best ``val_accuracy``)."""
    return None if trial.score is None else float(trial.score)


def _built_params(hypermodel: kt.HyperModel, trial, metrics: dict[str, float]) -> int:
    """The parameter count of the trial's model, built again from its hyperparameters."""
    keras.backend.clear_session()
    return int(hypermodel.build(trial.hyperparameters.copy()).count_params())


class SingleObjectiveSearch(SearchStrategy):
    """A keras-tuner tuner (``config.tuner``) maximizing ``val_accuracy``.

    The best trial is refit on train + validation when ``config.refit``;
    otherwise its own model is the best model.
    """

    def describe(self) -> str:
        """The tuner's name."""
        return self.config.tuner

    def build_tuner(self, hypermodel, dataset, output_dir, logger, *, trust_model=False):
        """The named keras-tuner tuner (``trust_model`` has no file to apply to)."""
        config = self.config
        return make_tuner(
            config.tuner, hypermodel, directory=output_dir, project_name="search",
            max_trials=config.trials, max_epochs=config.epochs[1], seed=config.seed,
            executions_per_trial=config.executions_per_trial, logger=logger,
            max_retries_per_trial=config.max_retries_per_trial,
            max_consecutive_failed_trials=config.max_consecutive_failed_trials,
        )

    def search(self, tuner, hypermodel, dataset, output_dir, out):
        """Search, then refit the best trial (``config.refit``) or load its model.

        Raises:
            SearchStopped: When no trial completed, or too many failed in a row.
        """
        config = self.config
        done_before = completed_trials(tuner)
        with stage("search"):
            wall_time = self._run_tuner(tuner, dataset, output_dir)
        records = trial_records(tuner, score=_objective_score,
                                params=functools.partial(_built_params, hypermodel))
        if not any(t["status"] == "COMPLETED" for t in records):
            raise SearchStopped(
                f"No trial completed out of {len(records)}; see the messages in "
                f"{output_dir / 'search'} (first: {records[0]['message'] if records else None})."
            )
        best_trial = tuner.oracle.get_best_trials(1)[0]
        if config.refit:
            print(
                f"Refitting trial {best_trial.trial_id} on train + validation "
                f"({len(dataset.x_train) + len(dataset.x_val)} samples)",
                file=out, flush=True,
            )
            with stage("refit"):
                best_model = refit_best(hypermodel, best_trial.hyperparameters, dataset,
                                        seed=config.seed)
        else:
            best_model = tuner.get_best_models(1)[0]
        return SearchOutcome(
            tuner=tuner, tuner_name=config.tuner, objective=tuner.oracle.objective.name,
            direction=tuner.oracle.objective.direction, refit=config.refit, records=records,
            best_trial_id=best_trial.trial_id, best_score=float(best_trial.score),
            best_hyperparameters=dict(best_trial.hyperparameters.values),
            best_model=best_model,
            # A fresh copy: compression fine-tunes it, the best model stays as reported.
            trial_model=lambda: tuner.get_best_models(1)[0],
            wall_time_s=wall_time, done_before=done_before,
        )


def _load_teacher(path: str | None, trust_model: bool = False) -> keras.Model | None:
    if path is None:
        return None
    try:
        teacher = load_model_file(path, arg="teacher", trust_model=trust_model)
    except ModelFileError as exc:
        raise ConfigError(str(exc)) from None
    teacher.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return teacher


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
    if is_keras3_file(config.teacher):
        print(f"converted the Keras 3 teacher {config.teacher!r} to tf_keras "
              f"({len(teacher.layers)} layers, {teacher.count_params():,} parameters, weights "
              "copied exactly; nothing in the file ran)", flush=True)
    if tuple(teacher.input_shape[1:]) != tuple(dataset.input_shape) or \
            teacher.output_shape[-1] != dataset.num_classes:
        raise ConfigError(
            f"Received: teacher={config.teacher!r} with input shape "
            f"{tuple(teacher.input_shape[1:])} and {teacher.output_shape[-1]} outputs; expected "
            f"input shape {tuple(dataset.input_shape)} and {dataset.num_classes} outputs.")


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
    compression = CompressionSpace(**(space.arguments() if space is not None else {}))
    constraints = Constraints(**(config.constraints.model_dump()
                                 if config.constraints is not None else {}))
    oracle = make_oracle(config.oracle_name(), oracle_objectives(objectives),
                         max_trials=config.trials, seed=config.seed)
    teacher = _load_teacher(config.teacher, trust_model)
    tuner = DeployableTuner(hypermodel, oracle, objectives=objectives, constraints=constraints,
                            compression=compression, teacher=teacher, target=config.target,
                            max_retries_per_trial=config.max_retries_per_trial,
                            max_consecutive_failed_trials=config.max_consecutive_failed_trials,
                            directory=output_dir, project_name="search")
    tuner.trial_logger = logger
    return tuner


def _metric_score(trial, metrics: dict[str, float]) -> float | None:
    """The trial's ``val_accuracy`` (of its compressed model), if it completed."""
    return metrics.get("val_accuracy") if status_of(trial) == "COMPLETED" else None


def _recorded_params(trial, metrics: dict[str, float]) -> int | None:
    """The parameter count the trial recorded."""
    return int(metrics["params"]) if "params" in metrics else None


def _pareto_section(tuner: DeployableTuner, config: PipelineConfig,
                    records: list[dict[str, Any]], front: list[ParetoTrial]) -> dict[str, Any]:
    directions = [o.direction for o in tuner.objectives]
    points = [[t["metrics"][o.name] for o in tuner.objectives] for t in records
              if t["status"] == "COMPLETED" and t["feasible"]]
    reference = default_reference(points, directions)
    return {
        "objectives": [{"name": o.name, "direction": o.direction} for o in tuner.objectives],
        "oracle": config.oracle_name(),
        "constraints": tuner.constraints.get_config(),
        "target": tuner.target.get_config(),
        "trials": [{k: r[k] for k in ("trial_id", "status", "rejected", "reason", "feasible",
                                      "metrics", "hyperparameters")} for r in records],
        "front": [p.trial_id for p in front],
        "hypervolume": float(tuner.hypervolume(reference)),
        "reference": [float(v) for v in reference],
        "reference_rule": "worst feasible value of each objective, 10 % of its range further",
    }


class DeployableSearch(SearchStrategy):
    """A `DeployableTuner` on ``config.objectives``: compressed, exported trials.

    The Pareto front's most accurate trial (fewest gzip bytes on ties) is the
    best model, not refit (a refit would undo its compression); every front
    trial's own TFLite file becomes a report row. The teacher, if any, is
    loaded and checked before the tuner is built.
    """

    def describe(self) -> str:
        """The oracle's name and the objectives."""
        return f"{self.config.oracle_name()} on {[o[0] for o in self.config.objectives]}"

    def build_tuner(self, hypermodel, dataset, output_dir, logger, *, trust_model=False):
        """The `DeployableTuner`, its teacher (if any) loaded and checked first.

        Raises:
            ConfigError: For a teacher that cannot be used with ``dataset`` (one
                whose file would run code on load, unless ``trust_model``).
        """
        check_teacher(self.config, dataset, trust_model=trust_model)
        return build_deployable_tuner(self.config, hypermodel, output_dir, logger,
                                      trust_model=trust_model)

    def search(self, tuner, hypermodel, dataset, output_dir, out):
        """Search, summarize the Pareto front and measure its trials' TFLite files.

        Raises:
            SearchStopped: When no trial is feasible and completed, or too many
                failed in a row.
        """
        config = self.config
        done_before = completed_trials(tuner)
        with stage("search"):
            wall_time = self._run_tuner(tuner, dataset, output_dir)
            records = trial_records(tuner, score=_metric_score, params=_recorded_params,
                                    pareto=True)
            front = tuner.get_pareto_front()
            if not front:
                reasons = sorted({r["reason"] for r in records if r["reason"]})
                raise SearchStopped(
                    f"No feasible trial completed out of {len(records)} (constraints "
                    f"{tuner.constraints.get_config()}); reasons: {reasons[:3]}.")
            front.sort(key=lambda p: (-p.metrics["val_accuracy"], p.metrics["gzip_bytes"]))
            pareto = _pareto_section(tuner, config, records, front)
        best = front[0]
        best_model = best.load_model()
        return SearchOutcome(
            tuner=tuner, tuner_name=f"deployable/{config.oracle_name()}",
            objective="val_accuracy", direction="max", refit=False, records=records,
            best_trial_id=best.trial_id, best_score=float(best.metrics["val_accuracy"]),
            best_hyperparameters=dict(best.hyperparameters), best_model=best_model,
            trial_model=lambda: best_model, wall_time_s=wall_time, done_before=done_before,
            pareto=pareto, front_rows=front_rows(front, dataset, output_dir, config_target(config)),
        )


def search_strategy(config: PipelineConfig) -> SearchStrategy:
    """The search ``config`` asks for: `DeployableSearch` if it names objectives."""
    return DeployableSearch(config) if config.multi_objective else SingleObjectiveSearch(config)


def build_tuner(config: PipelineConfig, hypermodel: kt.HyperModel, dataset: Dataset,
                output_dir: Path, logger: TrialLogger | None, *,
                trust_model: bool = False) -> kt.Tuner:
    """The configured tuner, resuming from ``output_dir/search``.

    A multi-objective configuration gives a `DeployableTuner` (its teacher
    loaded and checked first, refused if its file would run code on load
    unless ``trust_model``); otherwise the named keras-tuner tuner.

    Raises:
        ConfigError: For a teacher that cannot be used with ``dataset``.
    """
    return search_strategy(config).build_tuner(hypermodel, dataset, output_dir, logger,
                                               trust_model=trust_model)
