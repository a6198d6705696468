"""`run_pipeline`: data -> search -> best model -> TFLite variants -> measurement -> report.

The search itself is a strategy (`keras_autoopt.pipeline.strategies`), chosen
once from the configuration; what comes after it is the same for every search.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_bool, check_positive_float
from keras_autoopt._defaults import DEFAULT_TRIAL_TIMEOUT_S
from keras_autoopt._failure import stage
from keras_autoopt._io import atomic_save_model
from keras_autoopt.config import ConfigError, PipelineConfig
from keras_autoopt.data import Dataset
from keras_autoopt.pipeline._setup import (
    build_hypermodel,
    environment,
    load,
    prepare_output,
    resolve_arguments,
)
from keras_autoopt.pipeline.artifacts import (
    build_report,
    compress_best,
    compressed_row,
    config_target,
    export_best,
)
from keras_autoopt.pipeline.records import completed_trials
from keras_autoopt.pipeline.strategies import search_strategy
from keras_autoopt.report import ReportPaths, format_models_table, write_report
from keras_autoopt.search import (
    TrialLeases,
    TrialLogger,
    distributed_env,
    distributed_role,
)


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
    config, hypermodel, dataset = resolve_arguments(dataset, config, hypermodel, kwargs)
    out = sys.stdout if stream is None else stream
    try:
        chief_env = None if serve is None else distributed_env(serve, "chief")
        check_positive_float("trial_timeout", trial_timeout)
        check_bool("trust_model", trust_model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with environment(chief_env):
        return _run(dataset, output_dir, config, hypermodel, overwrite, out, trial_timeout,
                    trust_model)


def _role() -> str | None:
    """This process's role in a distributed search (None: not distributed); never a worker."""
    try:
        role = distributed_role()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if role == "worker":
        raise ConfigError(
            f"Received: KERASTUNER_TUNER_ID={os.environ['KERASTUNER_TUNER_ID']!r}, a worker "
            "id; expected run_worker() (keras-autoopt worker) to run a worker, or an id "
            "containing 'chief' for the process that serves the search.")
    return role


def _serve(tuner: kt.Tuner, trial_timeout: float, out: TextIO) -> TrialLeases:
    """Hand out the chief's trials under leases of ``trial_timeout`` seconds."""
    leases = TrialLeases(tuner.oracle, trial_timeout, stream=out).install()
    print(f"keras-autoopt chief: serving the search on {os.environ['KERASTUNER_ORACLE_IP']}:"
          f"{os.environ['KERASTUNER_ORACLE_PORT']} (trial timeout {trial_timeout:g}s); "
          "start workers with: keras-autoopt worker", file=out, flush=True)
    return leases


def _run(dataset: Dataset | str, output_dir: str | os.PathLike, config: PipelineConfig,
         hypermodel: kt.HyperModel | None, overwrite: bool, out: TextIO,
         trial_timeout: float, trust_model: bool) -> PipelineResult:
    """`run_pipeline` after its arguments are checked (in a chief's environment)."""
    role = _role()
    with stage("loading the data"):
        dataset = load(dataset, config)
    output_dir = Path(output_dir)
    resumed = prepare_output(output_dir, config, overwrite, sweep=role is None)
    keras.utils.set_random_seed(config.seed)
    hypermodel_name = config.hypermodel if hypermodel is None else type(hypermodel).__name__
    if hypermodel is None:
        hypermodel = build_hypermodel(config, dataset)
    strategy = search_strategy(config)
    with stage("setting up the search"):
        tuner = strategy.build_tuner(hypermodel, dataset, output_dir,
                                     TrialLogger(config.trials, out), trust_model=trust_model)
    leases = _serve(tuner, trial_timeout, out) if role == "chief" else None
    summary = dataset.summary()
    print(f"keras-autoopt: {dataset.name} ({summary['n_train']} train / {summary['n_val']} val "
          f"/ {summary['n_test']} test), {hypermodel_name} x {strategy.describe()}, "
          f"{config.trials} trials"
          + (f", resuming with {completed_trials(tuner)} completed" if resumed else ""),
          file=out, flush=True)
    outcome = strategy.search(tuner, hypermodel, dataset, output_dir, out)

    models_dir = output_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    atomic_save_model(outcome.best_model, models_dir / "best.keras")
    with stage("export"):
        models, export_failures = export_best(outcome.best_model, config, dataset,
                                              output_dir, out)
    models += outcome.front_rows
    compression = None
    if config.compress is not None:
        trial_model = outcome.trial_model()
        with stage("compression"):
            compression = compress_best(trial_model, config, dataset, output_dir, out)
        models.append(compressed_row(compression, output_dir, config_target(config), dataset))
    report = build_report(outcome, config=config, dataset=dataset,
                          hypermodel_name=hypermodel_name, resumed=resumed, models=models,
                          export_failures=export_failures, compression=compression,
                          leases=leases, trial_timeout=trial_timeout)
    with stage("writing the report"):
        paths = write_report(report, output_dir)
    print("\n" + format_models_table(models), file=out)
    print(f"\nReport: {paths.markdown}", file=out, flush=True)
    return PipelineResult(report=report, paths=paths, best_model=outcome.best_model,
                          output_dir=output_dir)
