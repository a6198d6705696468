"""The run configuration: a YAML file (or keyword arguments) validated by pydantic.

Example ``run.yaml``::

    dataset: digits              # a name, a .npz file, or an image folder
    hypermodel: convnet          # convnet | dense
    tuner: random                # random | grid | bayesian | hyperband
    trials: 12
    epochs: [10, 30]             # searched range; a single number fixes it
    export_modes: [float32, dynamic, float16, int8]
    batch_sizes: [32, 64, 128]   # searched; OptimizerSpace's default when unset
    seed: 0
    refit: true                  # retrain the best on train + validation
    compress:                    # optional: auto_compress the best model
      max_accuracy_drop: 0.01    # any auto_compress argument (batch_size, ...)

A multi-objective search for deployable models (every trial trained,
compressed, exported and measured under LiteRT) is asked for with
``objectives``::

    objectives: [val_accuracy, gzip_bytes]   # or {val_accuracy: max, latency_us: min}
    oracle: nsga2                # random | bayesian | grid | greedy | tpe | nsga2 | ...
    constraints: {max_params: 50000, max_size_bytes: 20000,
                  max_latency_ms: 1.0, min_accuracy: 0.9,
                  max_flash_bytes: 65536, max_ram_bytes: 16384, max_macs: 2000000}
    compression_space:           # what each trial may do before export
      sparsities: [0.0, 0.5, 0.75, 0.9]
      clusters: [0, 16, 32]
      quantization: [float32, float16, dynamic, int8]
      batch_size: 32
    teacher: teacher.keras       # optional: distil; temperature and alpha are searched
    target: tflm                 # host (default) | mobile-cpu | tflm | ethos-u55-128 |
                                 # ethos-u65-256, or {base: tflm, ram_bytes: 131072}

``dataset`` may also be a mapping: ``{source: data/, image_size: [32, 32],
color_mode: rgb, val_fraction: 0.15, test_fraction: 0.15}``, or for MNIST-1D
``{source: mnist1d, test_samples: 10000, generator_seed: 42}`` (its test split
is the published one: no ``test_fraction``). Relative paths are resolved
against the folder of the YAML file.

Unset keys keep the defaults of the Python API (`CompressionSpace`,
`auto_compress`, `OptimizerSpace`); the compression rules and defaults are
`keras_autoopt._rules`', shared with the Python API (``tests/test_defaults.py``).
The package: ``_sections`` (the sections), ``_pipeline`` (`PipelineConfig`),
``_yaml`` (reading files, error messages).

Errors name the line of the YAML file, the key, the value received and what
was expected, and are raised before any work starts.
"""

from keras_autoopt.config._pipeline import HYPERMODELS, PipelineConfig
from keras_autoopt.config._sections import (
    CompressConfig,
    CompressionSpaceConfig,
    ConfigError,
    ConstraintsConfig,
    DatasetConfig,
    Float,
    Int,
)
from keras_autoopt.config._yaml import format_validation_error, load_config, make_config

__all__ = [
    "HYPERMODELS",
    "CompressConfig",
    "CompressionSpaceConfig",
    "ConfigError",
    "ConstraintsConfig",
    "DatasetConfig",
    "Float",
    "Int",
    "PipelineConfig",
    "format_validation_error",
    "load_config",
    "make_config",
]
