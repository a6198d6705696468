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

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from keras_autoopt._backend import keras, kt
from keras_autoopt._io import atomic_write_text
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import ConfigError, PipelineConfig, make_config
from keras_autoopt.data import Dataset, load_dataset
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import measure_tflite
from keras_autoopt.report import ReportPaths, environment_info, format_models_table, write_report
from keras_autoopt.search import (
    ConvNetHyperModel,
    DenseHyperModel,
    OptimizerSpace,
    TrialLogger,
    make_tuner,
)

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
    # Two 2x2 poolings per halving: never sample more blocks than the input allows.
    max_blocks = max(1, min(3, min(shape[0], shape[1]).bit_length() - 1))
    return ConvNetHyperModel(shape, dataset.num_classes, blocks=(1, max_blocks),
                             optimizer_space=space)


def _prepare_output(output_dir: Path, config: PipelineConfig, overwrite: bool) -> bool:
    """Create the output folder; return whether an earlier run is resumed.

    Raises:
        ConfigError: If the folder holds a run of another configuration.

    """
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
        message = (trial.message or "").strip().splitlines()
        records.append({
            "trial_id": str(trial_id),
            "status": status,
            "score": None if trial.score is None else float(trial.score),
            "params": params,
            "hyperparameters": dict(trial.hyperparameters.values),
            "message": message[-1] if message else None,
        })
    return records


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
    **kwargs: Any,
) -> PipelineResult:
    """Search, export and measure: the whole job in one call.

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
        **kwargs: Fields of `PipelineConfig` when ``config`` is None.

    Returns:
        A `PipelineResult`.

    Raises:
        ConfigError: For bad arguments, or an output folder holding a run of
            another configuration, before any training.
        keras_autoopt.data.DatasetError: For unusable data, before training.
        RuntimeError: If no trial completed.

    """
    if isinstance(hypermodel, str):
        kwargs["hypermodel"], hypermodel = hypermodel, None
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
    out = sys.stdout if stream is None else stream
    if not isinstance(dataset, Dataset):
        options = config.dataset.model_dump(exclude={"source"}, exclude_none=True)
        dataset = load_dataset(config.dataset.source, seed=config.seed, **options)
    output_dir = Path(output_dir)
    resumed = _prepare_output(output_dir, config, overwrite)

    keras.utils.set_random_seed(config.seed)
    hypermodel_name = config.hypermodel if hypermodel is None else type(hypermodel).__name__
    if hypermodel is None:
        hypermodel = build_hypermodel(config, dataset)
    logger = TrialLogger(config.trials, out)
    if config.multi_objective:
        from keras_autoopt._deployable_run import (
            build_deployable_tuner,
            check_teacher,
            run_deployable_search,
        )

        check_teacher(config, dataset)
        tuner = build_deployable_tuner(config, hypermodel, output_dir, logger)
    else:
        tuner = make_tuner(
            config.tuner, hypermodel, directory=output_dir, project_name="search",
            max_trials=config.trials, max_epochs=config.epochs[1], seed=config.seed,
            executions_per_trial=config.executions_per_trial, logger=logger,
        )
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
        tuner.search(
            dataset.x_train, dataset.y_train,
            validation_data=(dataset.x_val, dataset.y_val), verbose=0,
        )
        search_time = time.perf_counter() - start
        trials = _trial_records(tuner, hypermodel)
        completed = [t for t in trials if t["status"] == "COMPLETED"]
        if not completed:
            raise RuntimeError(
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
            best_model = refit_best(hypermodel, best_trial.hyperparameters, dataset,
                                    seed=config.seed)
        else:
            best_model = tuner.get_best_models(1)[0]
    models_dir = output_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    _save_keras_model(best_model, models_dir / "best.keras")

    models = []
    for mode in config.export_modes:
        exported = export_tflite(
            best_model, models_dir / f"best_{mode}.tflite", mode=mode,
            representative_data=dataset.x_train,
        )
        metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test)
        models.append({
            "name": f"best_{mode}",
            "mode": mode,
            "path": Path(exported.path).relative_to(output_dir).as_posix(),
            "params": int(best_model.count_params()),
            **metrics.to_dict(),
        })
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
            })
    if config.compress is not None:
        if trial_model is None:
            trial_model = tuner.get_best_models(1)[0]
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
        },
        "trials": trials,
        "models": models,
        "config": config.model_dump(mode="json"),
        "environment": environment_info(),
    }
    if pareto is not None:
        report["pareto"] = pareto
    if compression is not None:
        chosen_row = next(row for row in compression.report["stages"]
                          if row["stage"] == compression.chosen.name)
        report["compression"] = {
            "report": "compression/compression.md",
            "chosen": chosen_row,
            "budget": compression.report["budget"],
        }
    paths = write_report(report, output_dir)
    print("\n" + format_models_table(models), file=out)
    print(f"\nReport: {paths.markdown}", file=out, flush=True)
    return PipelineResult(report=report, paths=paths, best_model=best_model,
                          output_dir=output_dir)


def load_model_file(path: str | os.PathLike) -> keras.Model:
    """Load a saved tf_keras model (``.keras``, ``.h5`` or SavedModel folder).

    Args:
        path: The file or folder.

    Returns:
        The model (not compiled).

    Raises:
        ConfigError: If the path does not exist or does not hold a tf_keras model.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"Received: model={str(path)!r}; expected an existing model file "
                          "(.keras, .h5 or a SavedModel folder).")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # the loaders raise many types; name the file and the cause
        raise ConfigError(
            f"Received: model={str(path)!r}; expected a tf_keras model file, but loading "
            f"failed: {type(exc).__name__}: {exc}") from None


def compress_saved_model(model_path: str | os.PathLike, output_dir: str | os.PathLike, *,
                         dataset: Dataset | str = "digits", seed: int = 0,
                         stream: TextIO | None = None, **kwargs: Any):
    """`auto_compress` a saved model on a data set: the ``keras-autoopt compress`` job.

    Args:
        model_path: The saved tf_keras classifier.
        output_dir: Folder for the stages and the compression report.
        dataset: A `Dataset` or a `load_dataset` source.
        seed: Seed of the split and the fine-tuning.
        stream: Progress lines; None means standard output.
        **kwargs: Arguments of `auto_compress` (``max_accuracy_drop``, ...).

    Returns:
        The `AutoCompressResult`.

    Raises:
        ConfigError: For a missing or unreadable model, or one whose input or
            output does not fit the data, before any training.
    """
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, seed=seed)
    model = load_model_file(model_path)
    if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
        raise ConfigError(
            f"Received: model input shape {tuple(model.input_shape[1:])}; expected "
            f"{tuple(dataset.input_shape)}, the shape of the {dataset.name} samples.")
    if model.output_shape[-1] != dataset.num_classes:
        raise ConfigError(
            f"Received: model with {model.output_shape[-1]} outputs; expected "
            f"{dataset.num_classes}, the classes of {dataset.name}.")
    return auto_compress(model, dataset, output_dir, seed=seed,
                         stream=sys.stdout if stream is None else stream, **kwargs)


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


def _save_keras_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` (``.keras`` format) through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
