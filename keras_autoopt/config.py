"""The run configuration: a YAML file (or keyword arguments) validated by pydantic.

Example ``run.yaml``::

    dataset: digits              # a name, a .npz file, or an image folder
    hypermodel: convnet          # convnet | dense
    tuner: random                # random | grid | bayesian | hyperband
    trials: 12
    epochs: [10, 30]             # searched range; a single number fixes it
    export_modes: [float32, dynamic, float16, int8]
    seed: 0
    refit: true                  # retrain the best on train + validation
    compress:                    # optional: auto_compress the best model
      max_accuracy_drop: 0.01

A multi-objective search for deployable models (every trial trained,
compressed, exported and measured under LiteRT) is asked for with
``objectives``::

    objectives: [val_accuracy, gzip_bytes]   # or {val_accuracy: max, latency_us: min}
    oracle: nsga2                # random | bayesian | grid | greedy | tpe | nsga2 | ...
    constraints: {max_params: 50000, max_size_bytes: 20000,
                  max_latency_ms: 1.0, min_accuracy: 0.9}
    compression_space:           # what each trial may do before export
      sparsities: [0.0, 0.5, 0.75, 0.9]
      clusters: [0, 16, 32]
      quantization: [float32, float16, dynamic, int8]
    teacher: teacher.keras       # optional: distil; temperature and alpha are searched

``dataset`` may also be a mapping: ``{source: data/, image_size: [32, 32],
color_mode: rgb, val_fraction: 0.15, test_fraction: 0.15}``. Relative paths are
resolved against the folder of the YAML file.

Errors name the line of the YAML file, the key, the value received and what
was expected, and are raised before any work starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from keras_autoopt._defaults import EXPORT_MODES, TUNER_NAMES
from keras_autoopt._failure import InputError

#: HyperModel names accepted in the configuration.
HYPERMODELS = ("convnet", "dense")


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
    test_fraction: Float = Field(default=0.15, gt=0, lt=1)
    image_size: tuple[Int, Int] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] | None = None

    @field_validator("test_fraction")
    @classmethod
    def _room_for_training(cls, value: float, info: ValidationInfo) -> float:
        val = info.data.get("val_fraction")
        if val is not None and val + value >= 1:
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


class CompressConfig(BaseModel):
    """The ``compress:`` section: `auto_compress` on the best model after the search.

    Unset keys keep `auto_compress`'s defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_drop: Float = Field(default=0.01, ge=0, lt=1)
    sparsities: tuple[Float, ...] | None = None
    sensitivity_epochs: Int | None = Field(default=None, ge=1)
    prune_epochs: Int | None = Field(default=None, ge=1)
    cluster_counts: tuple[Int, ...] | None = None
    cluster_epochs: Int | None = Field(default=None, ge=0)
    qat_epochs: Int | None = Field(default=None, ge=0)
    learning_rate: Float | None = Field(default=None, gt=0)

    @field_validator("sparsities")
    @classmethod
    def _fractions(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and (not value or not all(0 < v < 1 for v in value)):
            raise ValueError("expected a non-empty list of fractions in (0, 1)")
        return value

    @field_validator("cluster_counts")
    @classmethod
    def _counts(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and not all(v >= 2 for v in value):
            raise ValueError("expected cluster counts >= 2")
        return value


class ConstraintsConfig(BaseModel):
    """The ``constraints:`` section of a multi-objective search (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_params: Int | None = Field(default=None, ge=1)
    max_size_bytes: Int | None = Field(default=None, ge=1)
    max_latency_ms: Float | None = Field(default=None, gt=0)
    min_accuracy: Float | None = Field(default=None, gt=0, le=1)


class CompressionSpaceConfig(BaseModel):
    """The ``compression_space:`` section: `CompressionSpace`'s arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sparsities: tuple[float, ...] = (0.0, 0.5, 0.75, 0.9)
    pruning_schedules: tuple[Literal["polynomial", "constant"], ...] = ("polynomial",)
    clusters: tuple[int, ...] = (0, 16, 32)
    quantization: tuple[str, ...] = EXPORT_MODES
    prune_epochs: Int = Field(default=3, ge=1)
    cluster_epochs: Int = Field(default=2, ge=1)
    learning_rate: Float = Field(default=1e-3, gt=0, lt=1)

    @model_validator(mode="after")
    def _valid_space(self) -> CompressionSpaceConfig:
        from keras_autoopt.search import CompressionSpace

        try:
            CompressionSpace(**self.model_dump())
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("Received: ").rstrip(".")) from None
        return self


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
        refit: Train the best hyperparameters once more on train + validation
            data before export (the test split stays untouched).
        compress: Run `auto_compress` on the best model (None: no compression).
        max_retries_per_trial: Times a trial that raised is run again before it
            counts as failed (a diverging loss is never retried).
        max_consecutive_failed_trials: Failed trials in a row that stop the
            search (rejected trials of a multi-objective search do not count).

    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetConfig = DatasetConfig(source="digits")
    hypermodel: str = "convnet"
    tuner: str = "random"
    trials: Int = Field(default=10, ge=1)
    epochs: tuple[Int, Int] = (10, 30)
    export_modes: tuple[str, ...] = EXPORT_MODES
    seed: Int = Field(default=0, ge=0, lt=2**32)
    executions_per_trial: Int = Field(default=1, ge=1)
    refit: bool = True
    compress: CompressConfig | None = None
    max_retries_per_trial: Int = Field(default=0, ge=0)
    max_consecutive_failed_trials: Int = Field(default=3, ge=1)
    objectives: Any = None
    oracle: str | None = None
    constraints: ConstraintsConfig | None = None
    compression_space: CompressionSpaceConfig | None = None
    teacher: str | None = None

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

    @field_validator("oracle", "constraints", "compression_space", "teacher")
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

    @field_validator("hypermodel")
    @classmethod
    def _known_hypermodel(cls, value: str) -> str:
        if value not in HYPERMODELS:
            raise ValueError(f"expected one of {HYPERMODELS}")
        return value

    @field_validator("tuner")
    @classmethod
    def _known_tuner(cls, value: str) -> str:
        if value not in TUNER_NAMES:
            raise ValueError(f"expected one of {TUNER_NAMES}")
        return value

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


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Return the 1-based YAML line of the key path ``loc``, as far as it goes."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def format_validation_error(error: ValidationError, *, source: str = "config",
                            root: yaml.Node | None = None) -> str:
    """Turn a pydantic error into lines naming the key, the value received and the rule.

    Args:
        error: The pydantic ``ValidationError``.
        source: Name of the file (or ``"config"``) shown first on each line.
        root: The composed YAML tree, to find line numbers; optional.

    Returns:
        The message, one line per problem.

    """
    lines = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        # Drop pydantic's union/literal tags (e.g. 'tuple[int, int]') from the key path.
        key = ".".join(str(p) for p in loc if isinstance(p, int) or "[" not in str(p))
        line = _line_of(root, loc) if root is not None else None
        where = f"{source}, line {line}" if line else source
        if item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{key}' (Received: {key}={item['input']!r}).")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if not key:  # a rule on the whole file: its message names the keys
            lines.append(f"{where}: {message}.")
            continue
        lines.append(f"{where}: Received: {key}={item['input']!r}; {message}.")
    return "\n".join(lines)


_YAML_TAG_PREFIX = "tag:yaml.org,2002:"


def _walk(node: yaml.Node, loc: tuple = ()):
    """Yield ``(key path, node)`` for every node of a composed YAML tree, depth first."""
    yield loc, node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*loc, index))


def _node_value(node: yaml.Node) -> Any:
    """The plain value of a composed node (for messages); its source text if it has none."""
    try:
        return yaml.safe_load(yaml.serialize(node))
    except yaml.YAMLError:
        return node.start_mark.buffer[node.start_mark.index:node.end_mark.index]


def _duplicate_key_message(root: yaml.Node | None, source: str) -> str | None:
    """A message for the first key set twice in one mapping, or None.

    ``yaml.safe_load`` keeps the last of two equal keys without a word; a
    configuration that says ``trials`` twice is a mistake either way.
    """
    if root is None:
        return None
    for loc, node in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            if key.value in seen:
                first_key, first_value = seen[key.value]
                name = ".".join(str(p) for p in (*loc, key.value))
                return (
                    f"{source}, line {key.start_mark.line + 1}: duplicate key '{name}' "
                    f"(Received: {name}={_node_value(first_value)!r} on line "
                    f"{first_key.start_mark.line + 1} and {name}={_node_value(value)!r} on "
                    f"line {key.start_mark.line + 1}); expected each key once."
                )
            seen[key.value] = (key, value)
    return None


def _yaml_error_message(exc: yaml.YAMLError, source: str, root: yaml.Node | None) -> str:
    """Name the line, and for a refused tag the key and the tagged value."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return (f"{source}: Received: the character U+{char:04X} at position "
                f"{exc.position}; expected printable text (a YAML file).")
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag and mark is not None:
        short = tag.group(1).replace(_YAML_TAG_PREFIX, "!!", 1)
        loc, text = (), short
        for node_loc, node in _walk(root) if root is not None else ():
            if node.start_mark.index == mark.index and node.tag == tag.group(1):
                loc = node_loc
                text = node.start_mark.buffer[node.start_mark.index:node.end_mark.index]
                break
        key = ".".join(str(p) for p in loc)
        received = f"{key}={text}" if key else text
        return (f"{where}: Received: {received[:120]}; expected plain YAML values. The file "
                f"is safe-loaded: the tag {short} is refused and nothing was run.")
    return f"{where}: malformed YAML: {problem}."


def load_config(path: str | os.PathLike) -> PipelineConfig:
    """Safe-load and validate a YAML run configuration.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration, with relative paths resolved against the
        file's folder.

    Raises:
        ConfigError: If the file is missing or unreadable, is not UTF-8 text,
            is not valid YAML (the line is named), uses a tag that safe
            loading refuses (``!!python/...``: refused, never run), sets a key
            twice, is not a mapping, has unknown keys or wrong values.

    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Received: config={str(path)!r}; expected an existing YAML file.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Received: config={str(path)!r}, which cannot be read "
                          f"({exc.strerror}); expected a readable YAML file.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}, line {line}: Received: the byte {raw[exc.start]:#04x}, which is not "
            "UTF-8 text; expected a UTF-8 encoded YAML file.") from None
    root = None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
        duplicate = _duplicate_key_message(root, str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error_message(exc, str(path), root)) from None
    except RecursionError:
        raise ConfigError(f"{path}: Received: YAML nested too deeply to read; expected a "
                          "mapping of keys with short values.") from None
    if duplicate:
        raise ConfigError(duplicate)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: Received: a {type(data).__name__} at the top level; expected a mapping "
            f"of keys such as {', '.join(PipelineConfig.model_fields)}."
        )
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=str(path), root=root)) from None
    return config.resolve_paths(path.parent)


def make_config(**kwargs: Any) -> PipelineConfig:
    """Validate keyword arguments into a `PipelineConfig` (the Python API's path).

    Args:
        **kwargs: Fields of `PipelineConfig`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: For unknown keys or wrong values, named.

    """
    try:
        return PipelineConfig.model_validate(kwargs)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source="arguments")) from None
