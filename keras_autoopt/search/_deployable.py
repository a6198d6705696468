"""`DeployableTuner`: every trial trains, compresses, exports and is measured as deployed."""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from keras_autoopt._backend import keras, kt
from keras_autoopt._io import atomic_save_model, atomic_write_text
from keras_autoopt.compress import CompressionSpace, prune_by_ratio
from keras_autoopt.distill import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    DistillationSpace,
)
from keras_autoopt.export import SPARSE_MIN_ZEROS
from keras_autoopt.load import as_tf_keras
from keras_autoopt.search._constraints import Constraints
from keras_autoopt.search._estimates import estimate_model, measure_before_training
from keras_autoopt.search._gradients import _forget_custom_gradients, _gradient_registry
from keras_autoopt.search._legacy import rename_legacy_hyperparameters
from keras_autoopt.search._objectives import BUILTIN_OBJECTIVES, parse_objectives
from keras_autoopt.search._pareto import default_reference, hypervolume, pareto_front
from keras_autoopt.search._progress import trial_number
from keras_autoopt.search._reliability import FailOnNonFiniteLoss, ReliableTunerMixin
from keras_autoopt.search._target_rules import check_measurable, for_target, within_budgets
from keras_autoopt.search._tuners import _ProgressMixin
from keras_autoopt.targets import Target, get_target

#: The message of every trial a constraint rejected before training starts with this.
REJECTED_PREFIX = "Rejected before training:"
#: The message of every completed trial that breaks a constraint starts with this.
INFEASIBLE_PREFIX = "Infeasible:"
#: Names of the files each trial leaves in its folder.
TRIAL_MODEL = "model.keras"
TRIAL_TFLITE = "model.tflite"
#: The trial's `ExportResult.to_dict` (sparse-encoding decision and its reason, checks).
TRIAL_EXPORT = "export.json"
#: How each trial's export is checked (`export_tflite`'s ``verify``): only a broken export
#: fails a trial; the strict check is for the models a user ships.
TRIAL_EXPORT_VERIFY = "sanity"


class RejectedTrialError(kt.errors.FailedTrialError):
    """A trial whose built model breaks a constraint; it is never trained."""


@dataclass(frozen=True)
class ParetoTrial:
    """One trial of the Pareto front.

    Attributes:
        trial_id: keras-tuner's trial id.
        values: Objective name -> measured value.
        metrics: Every measured figure of the trial.
        hyperparameters: The trial's hyperparameter values.
        model_path: The trained, compressed Keras model (``model.keras``).
        tflite_path: The exported ``.tflite`` file that was measured.
    """

    trial_id: str
    values: dict[str, float]
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    model_path: str
    tflite_path: str

    def load_model(self) -> keras.Model:
        """Load the trial's Keras model (for inference or further compression)."""
        return keras.models.load_model(self.model_path, compile=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        return {"trial_id": self.trial_id, "values": dict(self.values),
                "metrics": dict(self.metrics), "hyperparameters": dict(self.hyperparameters),
                "model_path": self.model_path, "tflite_path": self.tflite_path}


class DeployableTuner(ReliableTunerMixin, _ProgressMixin, kt.Tuner):
    """A keras-tuner Tuner that judges every trial on its exported ``.tflite`` model.

    Each trial: build the model from the HyperModel; reject it before any
    training if its parameter count (or the int8 size that count implies)
    breaks a constraint; train it with the HyperModel's ``fit`` (distilled
    from ``teacher`` when one is given: ``temperature`` and ``alpha`` become
    hyperparameters, from the same `DistillationSpace` as
    `DistillationHyperModel`); prune and cluster it as sampled from
    ``compression`` (the plan `CompressionSpace.plan` makes, fine-tuned by
    `CompressionPlan.fine_tune` with its target checks); export the ``.tflite`` file; measure it
    under LiteRT on the validation data. The trial's metrics are the
    built-in objectives (``val_accuracy``, ``gzip_bytes``, ``size_bytes``,
    ``latency_us``, ``params``), the custom ones, ``feasible`` (1 when
    the measured model meets every constraint, else 0), and the fidelity of
    the ``.tflite`` to its Keras model on the validation data
    (``export_top1_agreement``, ``export_max_abs_diff`` and, with integer
    labels, ``keras_val_accuracy``; the TFLite accuracy is ``val_accuracy``).
    The export is checked with `export_tflite`'s ``verify="sanity"`` policy:
    only a broken export fails the trial (top-1 agreement under 90 %, NaN or
    infinite outputs, or a conversion error), with the figures in its reason;
    one that loses a little accuracy is a measured trial like any other,
    since its objectives come from the ``.tflite`` itself. The oracle gets one
    objective per entry of ``objectives``: multi-objective oracles
    (`OptunaOracle` with NSGA-II) optimize them jointly; keras-tuner's own
    oracles see their signed sum.

    Rejected trials end FAILED with a message starting with
    `REJECTED_PREFIX` and cost no training; they count in keras-tuner's
    ``max_trials`` (the oracle proposed them) but never in the consecutive
    failure limit, which this tuner enforces on real failures only
    (``max_consecutive_failed_trials``).

    Args:
        hypermodel: A HyperModel whose ``build`` returns a compiled classifier
            (softmax outputs).
        oracle: A keras-tuner Oracle built with `oracle_objectives`.
        objectives: Objective spec (see `parse_objectives`).
        constraints: A `Constraints`, or None.
        compression: A `CompressionSpace`, or None (no compression
            hyperparameters; the model is exported in float32).
        teacher: A trained teacher to distil from, or None.
        target: Where the models will run (a `Target` or a name of
            `TARGETS`; None: ``"host"``). It decides the export (batch 1,
            int8 I/O, the quantization modes: a `CompressionSpace` left at
            its default quantization choices keeps the modes the target
            runs), what is measured (`measure_on_target`) and adds its flash
            and RAM budgets to the constraints.
        temperature: ``(low, high)`` of the ``temperature`` hyperparameter.
        alpha: ``(low, high)`` of the ``alpha`` hyperparameter.
        max_consecutive_failed_trials: Real (not rejected) failures in a row
            that stop the search.
        max_retries_per_trial: Times a trial that raised is run again before
            it counts as failed (rejections and diverging losses are never
            retried).
        latency_runs: Timed invokes behind each trial's latency median.
        **kwargs: ``directory``, ``project_name``, ``overwrite``, ... of
            ``keras_tuner.Tuner``.

    Raises:
        ValueError: For bad arguments, before any training.
    """

    def __init__(self, hypermodel: kt.HyperModel, oracle: kt.Oracle, *, objectives,
                 constraints: Constraints | None = None,
                 compression: CompressionSpace | None = None,
                 teacher: keras.Model | None = None,
                 target: Target | str | None = None,
                 temperature: Sequence[float] = DEFAULT_TEMPERATURE,
                 alpha: Sequence[float] = DEFAULT_ALPHA,
                 max_consecutive_failed_trials: int = 3, max_retries_per_trial: int = 0,
                 latency_runs: int = 50, **kwargs):
        from keras_autoopt._checks import check_positive_int

        self.objectives = parse_objectives(objectives)
        if constraints is not None and not isinstance(constraints, Constraints):
            raise ValueError(
                f"Received: constraints={constraints!r}; expected a Constraints or None.")
        if compression is not None and not isinstance(compression, CompressionSpace):
            raise ValueError(
                f"Received: compression={compression!r}; expected a CompressionSpace or None.")
        if teacher is not None:
            teacher, _ = as_tf_keras(teacher, arg="teacher")  # Keras 3: converted exactly
        if teacher is not None and not isinstance(teacher, keras.Model):
            raise ValueError(
                f"Received: teacher of type {type(teacher).__name__}; expected a tf_keras or "
                "Keras 3 Model, or None.")
        names = [o.name for o in self.objectives]
        oracle_names = _objective_names(oracle.objective)
        if oracle_names != names:
            raise ValueError(
                f"Received: an oracle with objectives {oracle_names}; expected {names} "
                "(build it with oracle_objectives(objectives)).")
        self.target = get_target(target if target is not None else "host")
        self.constraints = within_budgets(constraints or Constraints(), self.target)
        self.compression = for_target(compression, self.target)
        check_measurable(self.objectives, self.constraints, self.target)
        self._sizes: dict[tuple[str, str], Any] = {}  # (architecture, mode) -> estimate
        self.teacher = teacher
        self.distillation = DistillationSpace(temperature, alpha)
        self.temperature = self.distillation.temperature
        self.alpha = self.distillation.alpha
        self.max_real_failures = check_positive_int("max_consecutive_failed_trials",
                                                    max_consecutive_failed_trials)
        from keras_autoopt.measure import MIN_LATENCY_RUNS

        self.latency_runs = check_positive_int("latency_runs", latency_runs,
                                               minimum=MIN_LATENCY_RUNS)
        oracle.max_retries_per_trial = check_positive_int(
            "max_retries_per_trial", max_retries_per_trial, minimum=0)
        # Rejections are failures to keras-tuner; this tuner counts real ones itself.
        oracle.max_consecutive_failed_trials = None
        if not kwargs.get("overwrite", False):
            rename_legacy_hyperparameters(
                Path(kwargs.get("directory") or "."),
                kwargs.get("project_name") or "untitled_project")
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    # -- search ---------------------------------------------------------------------------
    def search(self, x, y, *, validation_data, **fit_kwargs):
        """Run the search; ``validation_data=(x_val, y_val)`` NumPy arrays are required.

        Raises:
            ValueError: Before any trial, for missing or malformed validation data.
        """
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2
                and all(isinstance(a, np.ndarray) for a in validation_data)
                and len(validation_data[0]) == len(validation_data[1]) > 0):
            raise ValueError(
                f"Received: validation_data of type {type(validation_data).__name__}; "
                "expected a pair (x_val, y_val) of non-empty NumPy arrays of equal length: "
                "every objective is measured on it.")
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise ValueError(
                f"Received: x of type {type(x).__name__}, y of type {type(y).__name__}; "
                "expected NumPy arrays (int8 calibration and distillation caching use them).")
        return super().search(x, y, validation_data=tuple(validation_data), **fit_kwargs)

    def on_trial_end(self, trial):
        kt.Tuner.on_trial_end(self, trial)
        if not isinstance(self.oracle, kt.Oracle):
            # A distributed worker: the chief's oracle holds the trials and the front.
            if self.trial_logger is not None:
                ended = self.oracle.get_trial(trial.trial_id)
                self.trial_logger.trial_end(ended, number=trial_number(ended, self.oracle),
                                            objective_name="", best=None,
                                            outcome=self._outcome(ended, front=False))
            return
        if self.trial_logger is not None:
            ended = self.oracle.get_trial(trial.trial_id)
            self.trial_logger.trial_end(ended, number=trial_number(ended, self.oracle),
                                        objective_name="", best=None,
                                        outcome=self._outcome(ended, front=True))
        failures = 0
        for trial_id in self.oracle.end_order:
            ended = self.oracle.trials[trial_id]
            if ended.status == "FAILED" and not is_rejected(ended):
                failures += 1
                if failures >= self.max_real_failures:
                    raise RuntimeError(
                        f"{failures} trials failed in a row (max_consecutive_failed_trials="
                        f"{self.max_real_failures}); the last one:\n{ended.message or ''}")
            elif not is_rejected(ended):
                failures = 0

    def _outcome(self, ended, *, front: bool) -> str | None:
        """The progress line's objectives of a completed trial (None otherwise)."""
        if ended.status != "COMPLETED":
            return None
        parts = [f"{o.name}={_fmt(ended.metrics.get_last_value(o.name))}"
                 for o in self.objectives]
        if ended.metrics.exists("feasible") and ended.metrics.get_last_value("feasible") < 0.5:
            parts.append("INFEASIBLE")
        if front:
            parts.append(f"(front {len(self.get_pareto_front())})")
        return " ".join(parts)

    # -- one trial ------------------------------------------------------------------------
    def run_trial(self, trial, x, y, *, validation_data, callbacks=None, **fit_kwargs):
        """Build, check, train, compress, export and measure one trial.

        The trial starts from a cleared Keras session. When it ends, the
        gradient functions its traces registered are dropped
        (`_forget_custom_gradients`) so that its graphs can be freed: without
        this, each trial kept 4 to 30 MB alive until the process ended.

        Returns:
            The trial's metrics (objectives, every built-in figure, ``feasible``).

        Raises:
            RejectedTrialError: When the built model breaks a constraint.
        """
        keras.backend.clear_session()
        kept = set(_gradient_registry())
        try:
            return self._run_trial(trial, x, y, validation_data=validation_data,
                                   callbacks=callbacks, **fit_kwargs)
        finally:
            _forget_custom_gradients(kept)
            gc.collect()

    def _run_trial(self, trial, x, y, *, validation_data, callbacks, **fit_kwargs):
        hp = trial.hyperparameters
        model = self.hypermodel.build(hp)
        choices = self.compression.sample(hp) if self.compression is not None else {
            "sparsity": 0.0, "pruning_schedule": None, "clusters": 0,
            "quantization": "float32" if self.target.allows("float32")
            else self.target.default_mode}
        # Structured pruning (``channels`` < 1) exports a smaller architecture: size that one.
        sized = model if choices.get("channels", 1.0) >= 1.0 else \
            prune_by_ratio(model, 1.0 - choices["channels"])
        params = int(sized.count_params())
        estimate = estimate_model(sized, choices["quantization"])
        # A pruned float model may be exported in TFLite's sparse encoding (LiteRT targets):
        # its file can be smaller than its weights, so size and flash are checked after export.
        dense = not (self.target.runtime in ("litert", "xnnpack")
                     and choices["sparsity"] >= SPARSE_MIN_ZEROS
                     and choices["quantization"] in ("float32", "float16"))
        reason = self.constraints.check_before_training(params, estimate, dense=dense)
        budgets = (self.constraints.max_flash_bytes, self.constraints.max_ram_bytes)
        if reason is None and self.target.runtime != "vela" and budgets != (None, None):
            estimate = self._measured_estimate(sized, choices["quantization"], x)
            reason = (estimate if isinstance(estimate, str)
                      else self.constraints.check_before_training(params, estimate, dense=dense))
        if reason is not None:
            raise RejectedTrialError(f"{REJECTED_PREFIX} {reason}")
        x_val, y_val = validation_data
        trained = model
        if self.teacher is not None:
            trained = self.distillation.build(hp, self.teacher, model)
        callbacks = [c for c in callbacks or [] if not isinstance(c, FailOnNonFiniteLoss)]
        train_start = time.perf_counter()
        self.hypermodel.fit(hp, trained, x, y, validation_data=validation_data,
                            callbacks=[*callbacks, FailOnNonFiniteLoss()], **fit_kwargs)
        model = self._compress(model, choices, x, y)
        train_s = time.perf_counter() - train_start
        params = int(model.count_params())  # the exported model's
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        trial_dir.mkdir(parents=True, exist_ok=True)
        from keras_autoopt.export import export_for_target
        from keras_autoopt.measure import measure_on_target, measure_tflite

        labels = y_val.reshape(-1) if y_val.ndim == 1 or y_val.shape[1:] == (1,) else None
        exported = export_for_target(model, trial_dir / TRIAL_TFLITE, self.target,
                                     choices["quantization"], representative_data=x,
                                     verify_data=x_val, verify_labels=labels,
                                     verify=TRIAL_EXPORT_VERIFY)
        measured = measure_tflite(exported.path, x_val, y_val, latency_runs=self.latency_runs)
        device = measure_on_target(exported.path, self.target, x_val)
        atomic_save_model(model, trial_dir / TRIAL_MODEL)
        metrics = {"val_accuracy": measured.accuracy, "val_f1": measured.f1_macro,
                   "gzip_bytes": measured.gzip_bytes, "size_bytes": measured.size_bytes,
                   "latency_us": measured.latency_us_median, "params": params,
                   "export_top1_agreement": exported.top1_agreement,
                   "export_max_abs_diff": exported.max_abs_diff, "train_s": train_s}
        if exported.keras_accuracy is not None:
            metrics["keras_val_accuracy"] = exported.keras_accuracy
        metrics["sparse_encoding"] = float(exported.sparse_encoding)
        if exported.dense_size_bytes is not None:
            metrics["dense_size_bytes"] = exported.dense_size_bytes
        atomic_write_text(trial_dir / TRIAL_EXPORT, json.dumps(exported.to_dict(), indent=2))
        metrics.update(device.metrics())
        data = SimpleNamespace(x_train=x, y_train=y, x_val=x_val, y_val=y_val)
        for objective in self.objectives:
            if objective.fn is not None:
                value = float(objective.fn(model, str(exported.path), data))
                if not math.isfinite(value):
                    raise kt.errors.FailedTrialError(
                        f"Objective {objective.name!r} returned {value!r}; expected a finite "
                        "number.")
                metrics[objective.name] = value
        violated = "; ".join(filter(None, [self.constraints.check_measured(metrics),
                                           device.reason]))
        metrics["feasible"] = 0.0 if violated else 1.0
        # The reason stays with the completed trial (keras-tuner keeps its message).
        trial.message = f"{INFEASIBLE_PREFIX} {violated}" if violated else None
        results = {name: float(value) for name, value in metrics.items()}
        if self.oracle.objective.name not in results:  # keras-tuner's MultiObjective
            results[self.oracle.objective.name] = float(self.oracle.objective.get_value(results))
        return results

    def _measured_estimate(self, model: keras.Model, mode: str, x):
        """`measure_before_training`'s estimate (cached per architecture), or why TFLM fails."""
        from keras_autoopt.measure import TFLMError

        key = (model.to_json(), mode)
        if key not in self._sizes:
            try:
                self._sizes[key] = measure_before_training(model, self.target, mode, x)
            except TFLMError as error:
                self._sizes[key] = f"TFLite Micro cannot run the untrained model: {error.reason}"
        return self._sizes[key]

    def _compress(self, model: keras.Model, choices: dict[str, Any], x, y) -> keras.Model:
        plan = self.compression.plan(choices) if self.compression is not None else None
        if plan is None:
            return model
        done = []
        for step in plan.steps:
            tuned = plan.fine_tune(model, step, x, y, earlier_kinds=done,
                                   callbacks=[FailOnNonFiniteLoss()])
            model = tuned.model
            done.append(step.kind)
        return model

    def load_model(self, trial):
        """The trial's trained, compressed model (``model.keras`` in its folder)."""
        return keras.models.load_model(
            Path(self.get_trial_dir(trial.trial_id)) / TRIAL_MODEL, compile=False)

    # -- the front ------------------------------------------------------------------------
    def completed_trials(self, *, feasible_only: bool = True) -> list:
        """Completed trials with every objective measured (feasible ones by default)."""
        names = [o.name for o in self.objectives]
        kept = []
        for trial in self.oracle.trials.values():
            if trial.status != "COMPLETED":
                continue
            if not all(trial.metrics.exists(name) for name in names):
                continue
            if feasible_only and trial.metrics.exists("feasible") and \
                    trial.metrics.get_last_value("feasible") < 0.5:
                continue
            kept.append(trial)
        return sorted(kept, key=lambda t: t.trial_id)

    def get_pareto_front(self) -> list[ParetoTrial]:
        """The feasible trials no other feasible trial dominates, in trial order."""
        trials = self.completed_trials()
        if not trials:
            return []
        names = [o.name for o in self.objectives]
        points = np.array([[t.metrics.get_last_value(n) for n in names] for t in trials])
        directions = [o.direction for o in self.objectives]
        return [self._pareto_trial(trials[i]) for i in pareto_front(points, directions)]

    def hypervolume(self, reference: Sequence[float] | None = None) -> float:
        """Hypervolume of the feasible trials' objective values.

        Args:
            reference: One value per objective; None means `default_reference`.

        Returns:
            The dominated hypervolume (0 without completed trials).
        """
        trials = self.completed_trials()
        if not trials:
            return 0.0
        names = [o.name for o in self.objectives]
        points = np.array([[t.metrics.get_last_value(n) for n in names] for t in trials])
        directions = [o.direction for o in self.objectives]
        if reference is None:
            reference = default_reference(points, directions)
        return hypervolume(points, directions, reference)

    def _pareto_trial(self, trial) -> ParetoTrial:
        names = [o.name for o in self.objectives]
        # Every metric the trial recorded (objectives, export check, device, timing).
        all_names = [*BUILTIN_OBJECTIVES, "feasible", *names, *trial.metrics.metrics]
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        return ParetoTrial(
            trial_id=trial.trial_id,
            values={n: float(trial.metrics.get_last_value(n)) for n in names},
            metrics={n: float(trial.metrics.get_last_value(n)) for n in dict.fromkeys(all_names)
                     if trial.metrics.exists(n)},
            hyperparameters=dict(trial.hyperparameters.values),
            model_path=str(trial_dir / TRIAL_MODEL),
            tflite_path=str(trial_dir / TRIAL_TFLITE))


def _fmt(value: float) -> str:
    if value is None:
        return "?"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.0f}"


def is_rejected(trial) -> bool:
    """Whether a trial was rejected by a constraint before training."""
    return REJECTED_PREFIX in (trial.message or "")


def oracle_objectives(objectives) -> list:
    """keras-tuner objectives for an oracle, one per objective (direction included)."""
    return [kt.Objective(o.name, o.direction) for o in parse_objectives(objectives)]


def _objective_names(objective) -> list[str]:
    inner = getattr(objective, "objectives", None)
    if inner is not None:
        return [o.name for o in inner]
    return [objective.name]
