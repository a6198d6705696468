"""The whole job: data -> search -> best model -> TFLite variants -> LiteRT measurement -> report.

`run_pipeline` is the Python API behind ``keras-autoopt demo`` and
``keras-autoopt run``. Running it again into the same output folder resumes
the search (keras-tuner reloads its oracle; completed trials are not run
again) and rewrites the exports and the report.

Output folder layout::

    config.json                the resolved configuration of the run
    search/                    keras-tuner's trial files (what resume reads)
    models/best.keras          the best Keras model (tf_keras format)
    models/best_<mode>.tflite  one file per export mode
    report.json, report.md, *.png
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_bool, check_positive_float
from keras_autoopt._defaults import DEFAULT_HEARTBEAT_S, DEFAULT_TRIAL_TIMEOUT_S
from keras_autoopt._failure import stage
from keras_autoopt._io import atomic_save_model, atomic_write_text, remove_stale_temp_files
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import ConfigError, PipelineConfig, make_config
from keras_autoopt.data import Dataset, load_dataset
from keras_autoopt.export import ExportVerificationError, export_tflite
from keras_autoopt.load import load_model_file
from keras_autoopt.measure import measure_tflite
from keras_autoopt.report import ReportPaths, environment_info, format_models_table, write_report
from keras_autoopt.search import (
    ConvNetHyperModel,
    DenseHyperModel,
    OptimizerSpace,
    SearchStopped,
    TrialLeases,
    TrialLogger,
    WorkerHeartbeat,
    distributed_env,
    distributed_role,
    failure_reason,
    failures_stop_cleanly,
    make_tuner,
)

#: Seconds a distributed worker may stay silent before its trial is handed out again.

#: The learning-rate grid step used with GridSearch (two values a decade).
GRID_LEARNING_RATE_STEP = 10**0.5


@dataclass(frozen=True)
class PipelineResult:
    """What a run produced.

    Attributes:
        report: The report dict written to ``report.json``.
        paths: Where the report files are.
        best_model: The best Keras model of the search.
        output_dir: The run's output folder.

    """

    report: dict[str, Any]
    paths: ReportPaths
    best_model: keras.Model
    output_dir: Path


def build_hypermodel(config: PipelineConfig, dataset: Dataset) -> kt.HyperModel:
    """Create the configured HyperModel for ``dataset``.

    Args:
        config: The run configuration.
        dataset: The data (gives the input shape and class count).

    Returns:
        A `ConvNetHyperModel` or `DenseHyperModel`.

    """
    space = OptimizerSpace(
        epochs=config.epochs,
        epochs_step=max(1, (config.epochs[1] - config.epochs[0]) // 4),
        learning_rate_step=GRID_LEARNING_RATE_STEP if config.tuner == "grid" else None,
    )
    if config.hypermodel == "dense":
        return DenseHyperModel(dataset.input_shape, dataset.num_classes, optimizer_space=space)
    shape = dataset.input_shape
    if len(shape) != 3:
        raise ConfigError(
            f"Received: hypermodel='convnet' with samples of shape {tuple(shape)}; expected "
            "images (height, width, channels); use hypermodel='dense' for tabular data.")
    # Two 2x2 poolings per halving: never sample more blocks than the input allows.
    max_blocks = max(1, min(3, min(shape[0], shape[1]).bit_length() - 1))
    return ConvNetHyperModel(shape, dataset.num_classes, blocks=(1, max_blocks),
                             optimizer_space=space)


def _resolve_arguments(dataset: Any, config: PipelineConfig | None, hypermodel: Any,
                       kwargs: dict[str, Any]
                       ) -> tuple[PipelineConfig, kt.HyperModel | None, Dataset | str]:
    """Check the shared arguments of `run_pipeline` and `run_worker`; build the config.

    Returns:
        The configuration, the HyperModel (None: the configured one) and the
        data argument (a `Dataset`, or a `load_dataset` source with paths as
        strings).

    Raises:
        ConfigError: For a bad argument, or both ``config`` and keyword arguments.
    """
    if isinstance(hypermodel, str):
        kwargs["hypermodel"], hypermodel = hypermodel, None
    if isinstance(dataset, os.PathLike):
        dataset = os.fspath(dataset)
    if config is None:
        if isinstance(dataset, str):
            kwargs.setdefault("dataset", dataset)
        config = make_config(**kwargs)
    elif kwargs:
        raise ConfigError(
            f"Received: config and keyword arguments {sorted(kwargs)}; expected one of them."
        )
    if hypermodel is not None and not isinstance(hypermodel, kt.HyperModel):
        raise ConfigError(
            f"Received: hypermodel={hypermodel!r}; expected a keras_tuner.HyperModel or None."
        )
    if not isinstance(dataset, (Dataset, str)):
        raise ConfigError(f"Received: dataset={dataset!r}; expected a Dataset, a data set "
                          "name or a path.")
    return config, hypermodel, dataset


def _load(dataset: Dataset | str, config: PipelineConfig) -> Dataset:
    """The `Dataset` itself, or the configured one loaded (with the configured split)."""
    if isinstance(dataset, Dataset):
        return dataset
    options = config.dataset.model_dump(exclude={"source"}, exclude_none=True)
    return load_dataset(config.dataset.source, seed=config.seed, **options)


@contextlib.contextmanager
def _environment(values: dict[str, str] | None):
    """Set environment variables for the duration of the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values or {}}
    os.environ.update(values or {})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _prepare_output(output_dir: Path, config: PipelineConfig, overwrite: bool, *,
                    sweep: bool = True) -> bool:
    """Create the output folder; return whether an earlier run is resumed.

    A resumed folder is first rid of the temporary files a killed run left
    (``sweep``; never in a distributed search, whose other processes may be
    writing theirs).

    Raises:
        ConfigError: If the folder holds a run of another configuration.

    """
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"Received: output={str(output_dir)!r}, an existing file; expected "
                          "a folder (new, or holding a run to resume).")
    config_path = output_dir / "config.json"
    wanted = config.model_dump(mode="json")
    if overwrite and output_dir.exists():
        for name in ("search", "models", "compression", "config.json"):
            target = output_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if config_path.exists():
        if sweep:
            remove_stale_temp_files(output_dir)
        previous = json.loads(config_path.read_text(encoding="utf-8"))
        if previous != wanted:
            changed = sorted(k for k in set(previous) | set(wanted)
                             if previous.get(k) != wanted.get(k))
            raise ConfigError(
                f"Received: output={str(output_dir)!r} holding a run with another "
                f"configuration (differs in: {', '.join(changed)}); expected the same "
                "configuration to resume it. Pass --overwrite (overwrite=True) to start "
                "over, or choose another output folder."
            )
        return True
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, json.dumps(wanted, indent=2) + "\n")
    return False


def _trial_records(tuner: kt.Tuner, hypermodel: kt.HyperModel) -> list[dict[str, Any]]:
    """One dict per trial: id, status, score, params, hyperparameters, message."""
    records = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        status = str(getattr(trial.status, "value", trial.status))
        params = None
        if status == "COMPLETED":
            keras.backend.clear_session()
            params = int(hypermodel.build(trial.hyperparameters.copy()).count_params())
        records.append({
            "trial_id": str(trial_id),
            "status": status,
            "score": None if trial.score is None else float(trial.score),
            "params": params,
            "hyperparameters": dict(trial.hyperparameters.values),
            "message": failure_reason(trial.message),
        })
    return records


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
    if config.multi_objective:
        from keras_autoopt._deployable_run import build_deployable_tuner, check_teacher

        check_teacher(config, dataset, trust_model=trust_model)
        return build_deployable_tuner(config, hypermodel, output_dir, logger,
                                      trust_model=trust_model)
    return make_tuner(
        config.tuner, hypermodel, directory=output_dir, project_name="search",
        max_trials=config.trials, max_epochs=config.epochs[1], seed=config.seed,
        executions_per_trial=config.executions_per_trial, logger=logger,
        max_retries_per_trial=config.max_retries_per_trial,
        max_consecutive_failed_trials=config.max_consecutive_failed_trials,
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


def run_pipeline(
    dataset: Dataset | str = "digits",
    output_dir: str | os.PathLike = "runs/autoopt",
    *,
    config: PipelineConfig | None = None,
    hypermodel: kt.HyperModel | str | None = None,
    overwrite: bool = False,
    stream: TextIO | None = None,
    serve: str | None = None,
    trial_timeout: float = DEFAULT_TRIAL_TIMEOUT_S,
    trust_model: bool = False,
    **kwargs: Any,
) -> PipelineResult:
    """Search, export and measure: the whole job in one call.

    With ``serve="HOST:PORT"`` (or keras-tuner's ``KERASTUNER_*`` variables
    naming this process the chief), the search is distributed: this process
    serves the oracle and workers (`run_worker`, ``keras-autoopt worker``)
    run the trials into the same output folder; a worker silent for
    ``trial_timeout`` seconds has its trial handed to another. The exports
    and the report are made here once every trial has ended.

    Args:
        dataset: A `Dataset`, or a source for `load_dataset` (``"digits"``, a
            ``.npz`` path, an image folder). A `Dataset` wins over
            ``config.dataset``.
        output_dir: Folder of the run; an earlier run of the same
            configuration there is resumed.
        config: A validated `PipelineConfig`; if None it is built from
            ``kwargs`` (``tuner``, ``trials``, ``epochs``, ``export_modes``,
            ``seed``, ``hypermodel`` name, ...).
        hypermodel: A HyperModel name (``"convnet"``, ``"dense"``), or your
            own keras-tuner HyperModel (its ``build`` must return a compiled
            classifier with softmax outputs); None means the configured one.
        overwrite: Start over instead of resuming.
        stream: Where progress lines go; None means standard output.
        serve: ``HOST:PORT`` to serve a distributed search on, or None.
        trial_timeout: Seconds without a report from a worker after which its
            trial is handed out again (distributed search only).
        trust_model: Let the configured teacher file run the code it holds
            (a ``Lambda`` layer, custom classes); refused by default.
        **kwargs: Fields of `PipelineConfig` when ``config`` is None.

    Returns:
        A `PipelineResult`.

    Raises:
        ConfigError: For bad arguments, or an output folder holding a run of
            another configuration, before any training.
        keras_autoopt.data.DatasetError: For unusable data, before training.
        SearchStopped: If no trial completed, or too many failed in a row (the
            trials so far are kept: the same call resumes).
        keras_autoopt.search.SetupError: If the HyperModel cannot take the data.

    """
    config, hypermodel, dataset = _resolve_arguments(dataset, config, hypermodel, kwargs)
    out = sys.stdout if stream is None else stream
    try:
        chief_env = None if serve is None else distributed_env(serve, "chief")
        check_positive_float("trial_timeout", trial_timeout)
        check_bool("trust_model", trust_model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with _environment(chief_env):
        return _run(dataset, output_dir, config, hypermodel, overwrite, out, trial_timeout,
                    trust_model)


def _run(dataset: Dataset | str, output_dir: str | os.PathLike, config: PipelineConfig,
         hypermodel: kt.HyperModel | None, overwrite: bool, out: TextIO,
         trial_timeout: float, trust_model: bool) -> PipelineResult:
    """`run_pipeline` after its arguments are checked (in a chief's environment)."""
    try:
        role = distributed_role()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if role == "worker":
        raise ConfigError(
            f"Received: KERASTUNER_TUNER_ID={os.environ['KERASTUNER_TUNER_ID']!r}, a worker "
            "id; expected run_worker() (keras-autoopt worker) to run a worker, or an id "
            "containing 'chief' for the process that serves the search.")
    with stage("loading the data"):
        dataset = _load(dataset, config)
    output_dir = Path(output_dir)
    resumed = _prepare_output(output_dir, config, overwrite, sweep=role is None)

    keras.utils.set_random_seed(config.seed)
    hypermodel_name = config.hypermodel if hypermodel is None else type(hypermodel).__name__
    if hypermodel is None:
        hypermodel = build_hypermodel(config, dataset)
    with stage("setting up the search"):
        tuner = build_tuner(config, hypermodel, dataset, output_dir,
                            TrialLogger(config.trials, out), trust_model=trust_model)
    leases = None
    if role == "chief":
        leases = TrialLeases(tuner.oracle, trial_timeout, stream=out).install()
        print(f"keras-autoopt chief: serving the search on {os.environ['KERASTUNER_ORACLE_IP']}:"
              f"{os.environ['KERASTUNER_ORACLE_PORT']} (trial timeout {trial_timeout:g}s); "
              "start workers with: keras-autoopt worker", file=out, flush=True)
    done_before = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    print(
        f"keras-autoopt: {dataset.name} ({dataset.summary()['n_train']} train / "
        f"{dataset.summary()['n_val']} val / {dataset.summary()['n_test']} test), "
        f"{hypermodel_name} x "
        + (f"{config.oracle_name()} on {[o[0] for o in config.objectives]}"
           if config.multi_objective else config.tuner)
        + f", {config.trials} trials"
        + (f", resuming with {done_before} completed" if resumed else ""),
        file=out, flush=True,
    )
    pareto = None
    if config.multi_objective:
        from keras_autoopt._deployable_run import run_deployable_search

        with stage("search"):
            outcome = run_deployable_search(tuner, config, dataset, output_dir)
        trials, search_time = outcome.records, outcome.wall_time_s
        pareto = outcome.pareto
        completed = [t for t in trials if t["status"] == "COMPLETED"]
        best_id, best_score = outcome.best.trial_id, outcome.best.metrics["val_accuracy"]
        best_hyperparameters = dict(outcome.best.hyperparameters)
        # The front's models are the measured artifacts: no refit (it would undo them).
        best_model = outcome.best.load_model()
        trial_model = best_model
    else:
        start = time.perf_counter()
        with stage("search"), failures_stop_cleanly(str(output_dir / "search")):
            tuner.search(
                dataset.x_train, dataset.y_train,
                validation_data=(dataset.x_val, dataset.y_val), verbose=0,
            )
        search_time = time.perf_counter() - start
        trials = _trial_records(tuner, hypermodel)
        completed = [t for t in trials if t["status"] == "COMPLETED"]
        if not completed:
            raise SearchStopped(
                f"No trial completed out of {len(trials)}; see the messages in "
                f"{output_dir / 'search'} (first: {trials[0]['message'] if trials else None})."
            )
        best_trial = tuner.oracle.get_best_trials(1)[0]
        best_id, best_score = best_trial.trial_id, float(best_trial.score)
        best_hyperparameters = dict(best_trial.hyperparameters.values)
        trial_model = None
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
    models_dir = output_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    atomic_save_model(best_model, models_dir / "best.keras")

    with stage("export"):
        models, export_failures = _export_best(best_model, config, dataset, output_dir, out)
    compression = None
    if pareto is not None:
        for trial in outcome.front:
            metrics = measure_tflite(trial.tflite_path, dataset.x_test, dataset.y_test)
            models.append({
                "name": f"pareto_{trial.trial_id}",
                "mode": trial.hyperparameters.get("quantization", "float32"),
                "path": Path(trial.tflite_path).resolve().relative_to(
                    output_dir.resolve()).as_posix(),
                "params": int(trial.metrics["params"]),
                **metrics.to_dict(),
                **_trial_fidelity(trial.metrics, len(dataset.x_val)),
            })
    if config.compress is not None:
        if trial_model is None:
            trial_model = tuner.get_best_models(1)[0]
        with stage("compression"):
            compression = _compress_best(trial_model, config, dataset, output_dir, out)
        chosen = compression.chosen
        models.append({
            "name": f"compressed_{chosen.name}",
            "mode": chosen.mode,
            "path": Path(chosen.path).relative_to(output_dir).as_posix(),
            "params": int(chosen.model.count_params()) if chosen.model is not None else 0,
            **chosen.metrics,
        })
    report = {
        "dataset": dataset.summary(),
        "search": {
            "tuner": f"deployable/{config.oracle_name()}" if pareto is not None
            else config.tuner,
            "hypermodel": hypermodel_name,
            "objective": "val_accuracy" if pareto is not None else tuner.oracle.objective.name,
            "trials": len(completed),
            "trials_total": len(trials),
            "trials_run_now": len(trials) - done_before,
            "resumed": resumed,
            "best_trial_id": best_id,
            "best_score": float(best_score),
            "best_hyperparameters": best_hyperparameters,
            "direction": "max" if pareto is not None else tuner.oracle.objective.direction,
            "refit": config.refit and pareto is None,
            "wall_time_s": round(search_time, 3),
            "seed": config.seed,
            **({"distributed": {
                "address": f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                           f"{os.environ['KERASTUNER_ORACLE_PORT']}",
                "trial_timeout_s": float(trial_timeout),
                "workers": sorted({t.get("tuner_id") for t in leases.handed_out}),
                "reassigned": list(leases.revoked),
                "late_results_ignored": list(leases.late_results),
            }} if leases is not None else {}),
        },
        "trials": trials,
        "models": models,
        "config": config.model_dump(mode="json"),
        "environment": environment_info(),
    }
    if pareto is not None:
        report["pareto"] = pareto
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
    with stage("writing the report"):
        paths = write_report(report, output_dir)
    print("\n" + format_models_table(models), file=out)
    print(f"\nReport: {paths.markdown}", file=out, flush=True)
    return PipelineResult(report=report, paths=paths, best_model=best_model,
                          output_dir=output_dir)


#: Seconds between two reports of a worker on its running trial.


def run_worker(
    chief: str,
    worker_id: str,
    dataset: Dataset | str = "digits",
    output_dir: str | os.PathLike = "runs/autoopt",
    *,
    config: PipelineConfig | None = None,
    hypermodel: kt.HyperModel | str | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT_S,
    stream: TextIO | None = None,
    trust_model: bool = False,
    **kwargs: Any,
) -> list[str]:
    """Run trials of the distributed search served by `run_pipeline` at ``chief``.

    The worker loads the same data and HyperModel as the chief (same
    configuration, same seed), asks the chief for trials until the search
    ends, and writes each trial's files into the shared ``output_dir``. While
    a trial runs it reports every ``heartbeat`` seconds, so that the chief
    hands the trial to another worker only if this one dies. Exports and the
    report are the chief's.

    Args:
        chief: ``HOST:PORT`` the chief serves on.
        worker_id: This worker's unique id (must not contain "chief").
        dataset: As in `run_pipeline`.
        output_dir: The chief's output folder (shared).
        config: As in `run_pipeline`.
        hypermodel: As in `run_pipeline`.
        heartbeat: Seconds between two reports; keep it well below the
            chief's ``trial_timeout``.
        stream: Progress lines; None means standard output.
        trust_model: As in `run_pipeline`.
        **kwargs: Fields of `PipelineConfig` when ``config`` is None.

    Returns:
        The ids of the trials this worker ran.

    Raises:
        ConfigError: For bad arguments, or an output folder holding another
            configuration, before any training.
    """
    try:
        env = distributed_env(chief, worker_id)
        check_positive_float("heartbeat", heartbeat)
        check_bool("trust_model", trust_model)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("tuner_id=", "worker_id=")) from None
    if "chief" in worker_id:
        raise ConfigError(f"Received: worker_id={worker_id!r}; expected an id without "
                          "'chief' (keras-tuner makes any such process a chief).")
    config, hypermodel, dataset = _resolve_arguments(dataset, config, hypermodel, kwargs)
    out = sys.stdout if stream is None else stream
    dataset = _load(dataset, config)
    output_dir = Path(output_dir)
    _prepare_output(output_dir, config, overwrite=False, sweep=False)
    keras.utils.set_random_seed(config.seed)
    if hypermodel is None:
        hypermodel = build_hypermodel(config, dataset)
    with _environment(env):
        tuner = build_tuner(config, hypermodel, dataset, output_dir,
                            TrialLogger(config.trials, out), trust_model=trust_model)
        print(f"keras-autoopt worker {worker_id}: asking {chief} for trials", file=out,
              flush=True)
        with stage("search (worker)"), WorkerHeartbeat(tuner.oracle, heartbeat) as beat:
            tuner.search(dataset.x_train, dataset.y_train,
                         validation_data=(dataset.x_val, dataset.y_val), verbose=0)
    print(f"keras-autoopt worker {worker_id}: the search is over; ran trials "
          f"{beat.trials_run}", file=out, flush=True)
    return list(beat.trials_run)


def compress_saved_model(model_path: str | os.PathLike, output_dir: str | os.PathLike, *,
                         dataset: Dataset | str = "digits", seed: int = 0,
                         stream: TextIO | None = None, trust_model: bool = False,
                         **kwargs: Any):
    """`auto_compress` a saved model on a data set: the ``keras-autoopt compress`` job.

    Args:
        model_path: The saved tf_keras classifier.
        output_dir: Folder for the stages and the compression report.
        dataset: A `Dataset` or a `load_dataset` source.
        seed: Seed of the split and the fine-tuning.
        stream: Progress lines; None means standard output.
        trust_model: Load a model file that would run code on load (a
            ``Lambda`` layer, custom classes); refused by default.
        **kwargs: Arguments of `auto_compress` (``max_accuracy_drop``, ...).

    Returns:
        The `AutoCompressResult`.

    Raises:
        UnsafeModelError: For a model file that would run code on load
            (without ``trust_model``), before anything in it is deserialized.
        ModelFileError: For a missing or unreadable model file.
        ConfigError: For a model whose input or output does not fit the
            data, before any training.
    """
    model = load_model_file(model_path, trust_model=trust_model)
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, seed=seed)
    if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
        raise ConfigError(
            f"Received: model input shape {tuple(model.input_shape[1:])}; expected "
            f"{tuple(dataset.input_shape)}, the shape of the {dataset.name} samples.")
    if model.output_shape[-1] != dataset.num_classes:
        raise ConfigError(
            f"Received: model with {model.output_shape[-1]} outputs; expected "
            f"{dataset.num_classes}, the classes of {dataset.name}.")
    with stage("compression"):
        return auto_compress(model, dataset, output_dir, seed=seed,
                             stream=sys.stdout if stream is None else stream, **kwargs)


#: Fidelity figures of a verified export copied into its report row.
_FIDELITY_KEYS = ("verify_samples", "top1_agreement", "keras_accuracy", "tflite_accuracy",
                  "max_abs_diff")


def _trial_fidelity(metrics: dict[str, float], samples: int) -> dict[str, Any]:
    """The export check a search trial passed (on the validation split), as report fields."""
    if "export_top1_agreement" not in metrics:
        return {}
    return {"verify_samples": samples, "top1_agreement": metrics["export_top1_agreement"],
            "keras_accuracy": metrics.get("keras_val_accuracy"),
            "tflite_accuracy": metrics["val_accuracy"],
            **({"max_abs_diff": metrics["export_max_abs_diff"]}
               if "export_max_abs_diff" in metrics else {})}


def _export_best(model: keras.Model, config: PipelineConfig, dataset: Dataset,
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
            **{key: fidelity[key] for key in _FIDELITY_KEYS if key in fidelity},
        })
    return rows, failures


def _compress_best(model: keras.Model, config: PipelineConfig, dataset: Dataset,
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
