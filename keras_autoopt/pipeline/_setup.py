"""What every job of the pipeline does first: check its arguments, load the data, the folder.

Shared by `run_pipeline`, `run_worker` and `compress_saved_model`; nothing here trains.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from keras_autoopt._backend import kt
from keras_autoopt._io import atomic_write_text, remove_stale_temp_files
from keras_autoopt.config import ConfigError, PipelineConfig, make_config
from keras_autoopt.data import Dataset, load_dataset
from keras_autoopt.search import ConvNetHyperModel, DenseHyperModel, OptimizerSpace

#: The learning-rate grid step used with GridSearch (two values a decade).
GRID_LEARNING_RATE_STEP = 10**0.5


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
        **({"batch_sizes": config.batch_sizes} if config.batch_sizes is not None else {}),
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


def resolve_arguments(dataset: Any, config: PipelineConfig | None, hypermodel: Any,
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


def load(dataset: Dataset | str, config: PipelineConfig) -> Dataset:
    """The `Dataset` itself, or the configured one loaded (with the configured split)."""
    if isinstance(dataset, Dataset):
        return dataset
    options = config.dataset.model_dump(exclude={"source"}, exclude_none=True)
    return load_dataset(config.dataset.source, seed=config.seed, **options)


@contextlib.contextmanager
def environment(values: dict[str, str] | None):
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


def prepare_output(output_dir: Path, config: PipelineConfig, overwrite: bool, *,
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
        # A key added to the configuration since that run was written (absent from its
        # config.json) is the same configuration when this run leaves it at its default.
        defaults = type(config)().model_dump(mode="json")
        before = _effective({**defaults, **previous})
        now = _effective(wanted)
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if changed:
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


def _effective(dumped: dict[str, Any]) -> dict[str, Any]:
    """A dumped configuration with each section's unset values resolved to what runs.

    Older versions wrote some defaults out (``compression_space: prune_epochs: 3``)
    where today's leave None for "the default", and the other way round
    (``compress: sparsities: null``); the quantization choices were listed in
    another order. The same search must compare equal either way.
    """
    from keras_autoopt._rules import DEFAULT_CLUSTER_COUNTS, DEFAULT_SPARSITIES
    from keras_autoopt.compress import CompressionSpace

    resolved = dict(dumped)
    space = resolved.get("compression_space")
    if isinstance(space, dict):
        try:
            space = CompressionSpace(**{k: v for k, v in space.items()
                                        if v is not None}).get_config()
        except (TypeError, ValueError):
            pass  # compared as written: a section this version cannot read differs
        else:
            space["quantization"] = sorted(space["quantization"])
        resolved["compression_space"] = space
    compress = resolved.get("compress")
    if isinstance(compress, dict):
        compress = dict(compress)
        for key, default in (("sparsities", DEFAULT_SPARSITIES),
                             ("cluster_counts", DEFAULT_CLUSTER_COUNTS)):
            if compress.get(key) is None:
                compress[key] = list(default)
        resolved["compress"] = compress
    return resolved

