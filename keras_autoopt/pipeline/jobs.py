"""The pipeline's other jobs: a distributed search's worker, and compressing a saved model."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_bool, check_positive_float
from keras_autoopt._defaults import DEFAULT_HEARTBEAT_S
from keras_autoopt._failure import stage
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import ConfigError, PipelineConfig
from keras_autoopt.data import Dataset, load_dataset
from keras_autoopt.load import is_keras3_file, load_model_file
from keras_autoopt.pipeline._setup import (
    build_hypermodel,
    environment,
    load,
    prepare_output,
    resolve_arguments,
)
from keras_autoopt.pipeline.strategies import build_tuner
from keras_autoopt.search import TrialLogger, WorkerHeartbeat, distributed_env


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
    config, hypermodel, dataset = resolve_arguments(dataset, config, hypermodel, kwargs)
    out = sys.stdout if stream is None else stream
    dataset = load(dataset, config)
    output_dir = Path(output_dir)
    prepare_output(output_dir, config, overwrite=False, sweep=False)
    keras.utils.set_random_seed(config.seed)
    if hypermodel is None:
        hypermodel = build_hypermodel(config, dataset)
    with environment(env):
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
        model_path: The saved tf_keras classifier, or a Keras 3 ``.keras``
            file (converted to tf_keras, said in one line).
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
    stream = sys.stdout if stream is None else stream
    if is_keras3_file(model_path):
        print(f"[compress] converted the Keras 3 model {os.fspath(model_path)!r} to tf_keras "
              f"({len(model.layers)} layers, {model.count_params():,} parameters, weights "
              "copied exactly; nothing in the file ran)", file=stream, flush=True)
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
        return auto_compress(model, dataset, output_dir, seed=seed, stream=stream, **kwargs)
