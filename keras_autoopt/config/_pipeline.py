"""`PipelineConfig`: everything one run of the pipeline needs, validated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from keras_autoopt._checks import check_int_choices
from keras_autoopt._defaults import EXPORT_MODES, TUNER_NAMES
from keras_autoopt.config._sections import (
    CompressConfig,
    CompressionSpaceConfig,
    ConstraintsConfig,
    DatasetConfig,
    Int,
    _one_of,
    _rule,
)

#: HyperModel names accepted in the configuration.
HYPERMODELS = ("convnet", "dense")


class PipelineConfig(BaseModel):
    """Everything one run of the pipeline needs, validated.

    Attributes:
        dataset: The data source and split.
        hypermodel: ``convnet`` or ``dense``.
        tuner: ``random``, ``grid``, ``bayesian`` or ``hyperband``.
        trials: Number of trials (Hyperband sets its own from the epochs).
        epochs: ``[low, high]`` epochs searched per trial, or one fixed number.
        export_modes: TFLite variants exported from the best model.
        seed: Seed of the split, the oracle and the weights.
        executions_per_trial: Models trained per trial.
        batch_sizes: Batch sizes the search chooses from (`OptimizerSpace`'s
            ``batch_sizes``); None keeps `OptimizerSpace`'s default.
        refit: Train the best hyperparameters once more on train + validation
            data before export (the test split stays untouched).
        compress: Run `auto_compress` on the best model (None: no compression).
        max_retries_per_trial: Times a trial that raised is run again before it
            counts as failed (a diverging loss is never retried).
        max_consecutive_failed_trials: Failed trials in a row that stop the
            search (rejected trials of a multi-objective search do not count).
        target: Where the models of a multi-objective search will run: a
            name of `TARGETS` or a mapping (`get_target`); None: ``host``.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetConfig = DatasetConfig(source="digits")
    hypermodel: Annotated[str, _one_of(HYPERMODELS)] = "convnet"
    tuner: Annotated[str, _one_of(TUNER_NAMES)] = "random"
    trials: Int = Field(default=10, ge=1)
    epochs: tuple[Int, Int] = (10, 30)
    export_modes: tuple[str, ...] = EXPORT_MODES
    seed: Int = Field(default=0, ge=0, lt=2**32)
    executions_per_trial: Int = Field(default=1, ge=1)
    batch_sizes: Annotated[tuple[Int, ...], _rule(check_int_choices)] | None = None
    refit: bool = True
    compress: CompressConfig | None = None
    max_retries_per_trial: Int = Field(default=0, ge=0)
    max_consecutive_failed_trials: Int = Field(default=3, ge=1)
    objectives: Any = None
    oracle: str | None = None
    constraints: ConstraintsConfig | None = None
    compression_space: CompressionSpaceConfig | None = None
    teacher: str | None = None
    target: Any = None

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, value: Any) -> Any:
        if value is None:
            return None
        from keras_autoopt.search import parse_objectives

        try:
            objectives = parse_objectives(value)
        except ValueError as exc:
            raise ValueError(str(exc).split("; ", 1)[-1].rstrip(".")) from None
        return [[o.name, o.direction] for o in objectives]

    @field_validator("oracle")
    @classmethod
    def _known_oracle(cls, value: str | None) -> str | None:
        from keras_autoopt.search import ORACLES

        if value is not None and value not in ORACLES:
            raise ValueError(f"expected one of {tuple(ORACLES)}")
        return value

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: Any) -> Any:
        if value is None:
            return None
        from keras_autoopt.targets import get_target

        try:
            get_target(value)
        except ValueError as exc:
            raise ValueError(str(exc).split("; ", 1)[-1].rstrip(".")) from None
        return value

    @field_validator("oracle", "constraints", "compression_space", "teacher", "target")
    @classmethod
    def _multi_objective_keys(cls, value: Any, info: ValidationInfo) -> Any:
        # Fields are validated in order: 'objectives' (declared first) is in info.data
        # unless it was invalid itself, which is reported on its own.
        if value is not None and "objectives" in info.data and info.data["objectives"] is None:
            raise ValueError(
                f"'{info.field_name}' belongs to a multi-objective search; expected "
                "'objectives' to be set too")
        return value

    @property
    def multi_objective(self) -> bool:
        """Whether this run is a search for deployable models (`objectives` set)."""
        return self.objectives is not None

    def oracle_name(self) -> str:
        """The oracle of the multi-objective search (the default resolved)."""
        if self.oracle is not None:
            return self.oracle
        return "nsga2" if self.objectives and len(self.objectives) > 1 else "tpe"

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_from_string(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs_from_int(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value

    @field_validator("epochs")
    @classmethod
    def _epochs_ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("expected 1 <= low <= high")
        return value

    @field_validator("export_modes")
    @classmethod
    def _modes_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected at least one export mode")
        unknown = [mode for mode in value if mode not in EXPORT_MODES]
        if unknown:
            raise ValueError(f"expected modes among {EXPORT_MODES}, got {unknown[0]!r}")
        if len(set(value)) != len(value):
            raise ValueError("expected each export mode once")
        return value

    def resolve_paths(self, base: str | os.PathLike) -> PipelineConfig:
        """Return a copy whose relative dataset path is resolved against ``base``.

        Args:
            base: Folder the configuration file lives in.

        Returns:
            The resolved configuration (named datasets are left as they are;
            a relative ``teacher`` path is resolved too).

        """
        resolved = self
        source = self.dataset.source
        candidate = Path(base) / source
        if not Path(source).is_absolute() and (candidate.exists() or source.endswith(".npz")):
            dataset = self.dataset.model_copy(update={"source": str(candidate.resolve())})
            resolved = resolved.model_copy(update={"dataset": dataset})
        if self.teacher is not None and not Path(self.teacher).is_absolute():
            teacher = str((Path(base) / self.teacher).resolve())
            resolved = resolved.model_copy(update={"teacher": teacher})
        return resolved
