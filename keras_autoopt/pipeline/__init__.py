"""The whole job: data -> search -> best model -> TFLite variants -> LiteRT measurement -> report.

`run_pipeline` is the Python API behind ``keras-autoopt demo`` and
``keras-autoopt run``. Running it again into the same output folder resumes
the search (keras-tuner reloads its oracle; completed trials are not run
again) and rewrites the exports and the report.

Modules:

- `run`: `run_pipeline`, the same steps for every search;
- `strategies`: the two searches (`SingleObjectiveSearch`, `DeployableSearch`),
  one picked from the configuration by `search_strategy`;
- `records`: `SearchOutcome` and the one builder of the report's trial records;
- `artifacts`: exporting and compressing the best model, the report dict;
- `jobs`: `run_worker` (a distributed search's worker) and `compress_saved_model`.

Output folder layout::

    config.json                the resolved configuration of the run
    search/                    keras-tuner's trial files (what resume reads)
    models/best.keras          the best Keras model (tf_keras format)
    models/best_<mode>.tflite  one file per export mode
    report.json, report.md, *.png
"""

from keras_autoopt.pipeline._setup import GRID_LEARNING_RATE_STEP, build_hypermodel
from keras_autoopt.pipeline.jobs import compress_saved_model, run_worker
from keras_autoopt.pipeline.records import SearchOutcome, trial_records
from keras_autoopt.pipeline.run import PipelineResult, run_pipeline
from keras_autoopt.pipeline.strategies import (
    DeployableSearch,
    SearchStrategy,
    SingleObjectiveSearch,
    build_tuner,
    refit_best,
    search_strategy,
)

__all__ = [
    "GRID_LEARNING_RATE_STEP",
    "DeployableSearch",
    "PipelineResult",
    "SearchOutcome",
    "SearchStrategy",
    "SingleObjectiveSearch",
    "build_hypermodel",
    "build_tuner",
    "compress_saved_model",
    "refit_best",
    "run_pipeline",
    "run_worker",
    "search_strategy",
    "trial_records",
]
