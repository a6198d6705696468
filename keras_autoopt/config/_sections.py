"""The sections of the run configuration (``dataset``, ``compress``, ``constraints``, ...).

The rules and defaults of the compression sections are `keras_autoopt._rules`'
(the same the Python API checks); a key left unset (None) keeps the default of
the Python function it configures, so YAML and Python defaults cannot drift.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from keras_autoopt._defaults import EXPORT_MODES
from keras_autoopt._failure import InputError
from keras_autoopt._rules import (
    CHANNEL_CRITERIA,
    DEFAULT_CHANNEL_RATIOS,
    DEFAULT_CLUSTER_COUNTS,
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_PRUNING_SCHEDULES,
    DEFAULT_QUANTIZATIONS,
    DEFAULT_SPACE_CLUSTERS,
    DEFAULT_SPACE_SPARSITIES,
    DEFAULT_SPARSITIES,
    MINIMIZE,
    check_channel_ratios,
    check_cluster_counts,
    check_max_accuracy_drop,
    check_sparsities,
)


class ConfigError(InputError):
    """A configuration that cannot be used; the message says where and why."""


def _not_bool(expected: str):
    def check(value: Any) -> Any:
        # pydantic's lax mode reads true/false as 1/0; in a config that is a mistake.
        if isinstance(value, bool):
            raise ValueError(f"expected {expected}, not a boolean")
        return value

    return BeforeValidator(check)


#: An integer field that refuses booleans (YAML ``trials: true`` is not 1).
Int = Annotated[int, _not_bool("an integer")]
#: A float field that refuses booleans.
Float = Annotated[float, _not_bool("a number")]


class DatasetConfig(BaseModel):
    """Where the data comes from and how it is split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    val_fraction: Float = Field(default=0.15, gt=0, lt=1)
    # None: the loader's default (0.15; refused for mnist1d, whose test split is published).
    test_fraction: Float | None = Field(default=None, gt=0, lt=1)
    test_samples: Int | None = Field(default=None, ge=1)
    generator_seed: Int | None = Field(default=None, ge=0)
    image_size: tuple[Int, Int] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] | None = None

    @field_validator("test_fraction")
    @classmethod
    def _room_for_training(cls, value: float | None, info: ValidationInfo) -> float | None:
        val = info.data.get("val_fraction")
        if value is not None and val is not None and val + value >= 1:
            raise ValueError(
                f"expected val_fraction + test_fraction < 1 (val_fraction={val}), so that "
                "some data is left for training")
        return value

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError("expected two positive integers (height, width)")
        return value



def _rule(check, **kwargs: Any) -> AfterValidator:
    """A shared rule of `keras_autoopt._rules` as a pydantic validator.

    The rule's message keeps its "expected ..." part; `format_validation_error`
    adds "Received: key=value" with the key's full path.
    """

    def validate(value: Any) -> Any:
        if value is None:
            return value
        try:
            return check("value", value, **kwargs)
        except ValueError as exc:
            raise ValueError(
                "expected " + str(exc).split("; expected ", 1)[-1].rstrip(".")) from None

    return AfterValidator(validate)


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    """A pydantic validator: the value, unless None, is one of ``choices``."""

    def validate(value: Any) -> Any:
        if value is not None and value not in choices:
            raise ValueError(f"expected one of {choices}")
        return value

    return AfterValidator(validate)


class CompressConfig(BaseModel):
    """The ``compress:`` section: `auto_compress` on the best model after the search.

    Every argument of `auto_compress` but the model, data, folder, seed and
    progress stream. The lists default to the shared constants of
    `keras_autoopt._rules`; an unset number (None) keeps `auto_compress`'s
    default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_drop: Annotated[Float, _rule(check_max_accuracy_drop)] = \
        DEFAULT_MAX_ACCURACY_DROP
    channel_ratios: Annotated[tuple[Float, ...], _rule(check_channel_ratios)] = \
        DEFAULT_CHANNEL_RATIOS
    structured_criterion: Annotated[str, _one_of(CHANNEL_CRITERIA)] | None = None
    structured_epochs: Int | None = Field(default=None, ge=1)
    structured_steps: Int | None = Field(default=None, ge=1)
    structured_pushes: Int | None = Field(default=None, ge=0)
    sparsities: Annotated[tuple[Float, ...], _rule(check_sparsities, allow_zero=False)] = \
        DEFAULT_SPARSITIES
    sensitivity_share: Float | None = Field(default=None, gt=0, le=1)
    sensitivity_epochs: Int | None = Field(default=None, ge=1)
    prune_epochs: Int | None = Field(default=None, ge=1)
    cluster_counts: Annotated[tuple[Int, ...], _rule(check_cluster_counts, allow_zero=False)] \
        = DEFAULT_CLUSTER_COUNTS
    cluster_epochs: Int | None = Field(default=None, ge=0)
    qat_epochs: Int | None = Field(default=None, ge=0)
    max_backoffs: Int | None = Field(default=None, ge=0)
    max_pushes: Int | None = Field(default=None, ge=0)
    minimize: Annotated[str, _one_of(MINIMIZE)] | None = None
    confidence: Float | None = Field(default=None, ge=0.5, lt=1)
    batch_size: Int | None = Field(default=None, ge=1)
    learning_rate: Float | None = Field(default=None, gt=0)
    export_mode: Annotated[str, _one_of(EXPORT_MODES)] | None = None


class ConstraintsConfig(BaseModel):
    """The ``constraints:`` section of a multi-objective search (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_params: Int | None = Field(default=None, ge=1)
    max_size_bytes: Int | None = Field(default=None, ge=1)
    max_latency_ms: Float | None = Field(default=None, gt=0)
    min_accuracy: Float | None = Field(default=None, gt=0, le=1)
    max_flash_bytes: Int | None = Field(default=None, ge=1)
    max_ram_bytes: Int | None = Field(default=None, ge=1)
    max_macs: Int | None = Field(default=None, ge=1)
    max_npu_latency_ms: Float | None = Field(default=None, gt=0)


class CompressionSpaceConfig(BaseModel):
    """The ``compression_space:`` section: `CompressionSpace`'s arguments.

    The choices default to the shared constants of `keras_autoopt._rules`; an
    unset number (None) keeps `CompressionSpace`'s default. The section is
    checked by building the `CompressionSpace` (its rules, once).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sparsities: tuple[Float, ...] = DEFAULT_SPACE_SPARSITIES
    pruning_schedules: tuple[str, ...] = DEFAULT_PRUNING_SCHEDULES
    clusters: tuple[Int, ...] = DEFAULT_SPACE_CLUSTERS
    quantization: tuple[str, ...] = DEFAULT_QUANTIZATIONS
    channels: tuple[Float, ...] = (1.0,)
    prune_epochs: Int | None = Field(default=None, ge=1)
    cluster_epochs: Int | None = Field(default=None, ge=1)
    learning_rate: Float | None = Field(default=None, gt=0, lt=1)
    batch_size: Int | None = Field(default=None, ge=1)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of `CompressionSpace` this section sets."""
        return self.model_dump(exclude_none=True)

    @model_validator(mode="after")
    def _valid_space(self) -> CompressionSpaceConfig:
        from keras_autoopt.compress import CompressionSpace

        try:
            CompressionSpace(**self.arguments())
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("Received: ").rstrip(".")) from None
        return self

