"""Search objectives: what a multi-objective search optimizes.

`Objective` names one quantity a multi-objective search optimizes (built-in
ones are measured on each trial's exported ``.tflite``); `parse_objectives`
turns the short forms users write into a list of them. The hard limits
(`Constraints`) are in `keras_autoopt.search._constraints`.

This module imports no TensorFlow / Keras, like an Oracle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from keras_autoopt.search._pareto import DIRECTIONS

BUILTIN_OBJECTIVES: dict[str, str] = {
    "val_accuracy": "max",
    "val_f1": "max",
    "gzip_bytes": "min",
    "size_bytes": "min",
    "latency_us": "min",
    "params": "min",
    "flash_bytes": "min",
    "ram_bytes": "min",
    "macs": "min",
    "npu_latency_ms": "min",
}
"""Built-in objectives and their directions.

Measured on each trial's exported ``.tflite`` under LiteRT:
``val_accuracy`` (top-1 accuracy on the validation split), ``val_f1`` (macro
F1 on the validation split: the mean of the per-class F1 scores, which a
class the model neglects pulls down more than accuracy), ``size_bytes``
(file size), ``gzip_bytes`` (file size after ``gzip -9``: a transport
figure, what pruning and clustering save on the wire) and ``latency_us``
(median single-sample ``invoke()`` time, in microseconds). ``params`` is the
Keras model's parameter count. Measured for the search's target
(`measure_on_target`): ``flash_bytes`` (what the device stores), ``macs``,
``ram_bytes`` (TFLite Micro arena or Vela SRAM: targets ``tflm`` and
Ethos-U only) and ``npu_latency_ms`` (Vela: Ethos-U targets only).
"""
#: Built-in objectives only some runtimes measure -> those runtimes.
RUNTIME_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "ram_bytes": ("tflm", "vela"),
    "npu_latency_ms": ("vela",),
}


def _objective_problem(name: Any, direction: Any, fn: Any) -> str | None:
    """Return what is wrong with an objective definition, or ``None``.

    The text starts with "expected" so callers can prefix it with what they
    received.
    """
    if not isinstance(name, str) or not name:
        return f"expected an objective name as a non-empty string, got {name!r}."
    if direction is not None and direction not in DIRECTIONS:
        return f"expected direction 'min' or 'max' for objective {name!r}, got {direction!r}."
    if name in BUILTIN_OBJECTIVES:
        default = BUILTIN_OBJECTIVES[name]
        if fn is not None:
            return (
                f"expected fn=None for the built-in objective {name!r} (keras_autoopt "
                "measures it); give a custom objective another name."
            )
        if direction is not None and direction != default:
            verb = "minimized" if default == "min" else "maximized"
            return (
                f"expected direction {default!r} for objective {name!r} ({name} is {verb}), "
                f"got {direction!r}."
            )
        return None
    if fn is None:
        return (
            f"expected a built-in objective name (one of {sorted(BUILTIN_OBJECTIVES)}) or a "
            f"custom Objective with fn and direction; {name!r} is neither."
        )
    if not callable(fn):
        return (
            f"expected fn to be a callable fn(model, tflite_path, dataset) -> float for "
            f"objective {name!r}, got {fn!r}."
        )
    if direction is None:
        return f"expected a direction ('min' or 'max') for the custom objective {name!r}."
    return None


@dataclasses.dataclass(frozen=True)
class Objective:
    """One quantity a search optimizes, with its direction.

    A built-in objective (a key of `BUILTIN_OBJECTIVES`) is measured by
    keras_autoopt; its direction may be omitted, and any other than its own
    is an error (``Objective("gzip_bytes", "max")``: gzip_bytes is
    minimized). A custom objective has another name and needs both ``fn``
    and ``direction``::

        def flops(model, tflite_path, dataset):
            return float(count_flops(model))

        Objective("flops", "min", fn=flops)

    ``fn(model, tflite_path, dataset) -> float`` is called once per trial
    after export, with the trained Keras ``model``, the path (``str``) of
    its exported ``.tflite`` file and the keras_autoopt ``Dataset`` of the
    search (use ``dataset.x_val`` / ``dataset.y_val``, never the test
    split, for anything that selects models). Return NaN to mark a
    measurement that failed: that trial is then never on the Pareto front.

    Invariants: after construction ``direction`` is always ``"min"`` or
    ``"max"``; ``fn`` is ``None`` exactly for built-in objectives.

    Attributes:
        name: The objective's name, a key of the trial metrics.
        direction: ``"min"`` or ``"max"``; ``None`` at construction means
            the built-in default.
        fn: For a custom objective, the function that measures it.

    """

    name: str
    direction: str | None = None
    fn: Callable[[Any, str, Any], float] | None = None

    def __post_init__(self) -> None:
        problem = _objective_problem(self.name, self.direction, self.fn)
        if problem is not None:
            received = f"name={self.name!r}, direction={self.direction!r}"
            if self.fn is not None:
                received += f", fn={self.fn!r}"
            raise ValueError(f"Received: {received}; {problem}")
        if self.direction is None:
            object.__setattr__(self, "direction", BUILTIN_OBJECTIVES[self.name])

    @property
    def is_builtin(self) -> bool:
        """Whether keras_autoopt measures this objective itself."""
        return self.fn is None

    def get_config(self) -> dict[str, str]:
        """Return ``{"name": ..., "direction": ...}``, JSON-serializable.

        A custom objective's ``fn`` is not serializable and is left out: pass
        it again through ``custom_objects`` of `from_config`.

        Returns:
            The config dict.

        """
        return {"name": self.name, "direction": self.direction}

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        custom_objects: Mapping[str, Callable[[Any, str, Any], float]] | None = None,
    ) -> Objective:
        """Rebuild an objective from `get_config` output.

        Args:
            config: A dict with ``"name"`` and optionally ``"direction"``.
            custom_objects: For a custom objective, a mapping from its name
                to its ``fn`` (as in Keras, functions are not in configs).

        Returns:
            The objective.

        Raises:
            ValueError: If ``config`` is not such a dict, names a custom
                objective missing from ``custom_objects``, or as `Objective`.

        """
        if not isinstance(config, Mapping) or "name" not in config or set(config) - {
            "name",
            "direction",
        }:
            raise ValueError(
                f"Received: config={config!r}; expected a dict with 'name' and optionally "
                "'direction'."
            )
        name = config["name"]
        fn = None
        if isinstance(name, str) and name not in BUILTIN_OBJECTIVES:
            fn = (custom_objects or {}).get(name)
            if fn is None:
                raise ValueError(
                    f"Received: config={dict(config)!r}, custom_objects={custom_objects!r}; "
                    f"expected custom_objects={{{name!r}: fn}} for the custom objective "
                    f"{name!r} (its fn is not in the config)."
                )
        return cls(name, config.get("direction"), fn)


def _parse_item(item: Any, spec: Any) -> Objective:
    """Return one `Objective` from a list item of `parse_objectives`."""
    if isinstance(item, Objective):
        return item
    if isinstance(item, str):
        name, direction = item, None
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        name, direction = item
    else:
        raise ValueError(
            f"Received: objectives={spec!r}; expected every item to be a name, a "
            f"(name, direction) pair or an Objective, got {item!r}."
        )
    problem = _objective_problem(name, direction, None)
    if problem is not None:
        if isinstance(item, str) and item in DIRECTIONS:
            problem += " Write (name, direction) pairs inside a list: [('params', 'min')]."
        raise ValueError(f"Received: objectives={spec!r}; {problem}")
    return Objective(name, direction)


def parse_objectives(spec: Any) -> list[Objective]:
    """Return the objectives a user wrote in any accepted short form.

    Accepted forms, all giving objectives in the order written::

        "val_accuracy"
        ["val_accuracy", "gzip_bytes"]
        [("val_accuracy", "max"), ("latency_us", "min")]
        {"val_accuracy": "max", "params": None}  # None: the built-in default
        Objective("flops", "min", fn=flops)
        ["val_accuracy", ("size_bytes", "min"), Objective("flops", "min", fn=flops)]

    A tuple is read as a list of items, not as one ``(name, direction)``
    pair. Custom objectives can only be given as `Objective` instances
    (they need ``fn``).

    Args:
        spec: The objectives, in one of the forms above.

    Returns:
        A non-empty list of `Objective`, without duplicate names.

    Raises:
        ValueError: If ``spec`` is empty or of another type, an item is of
            another type, a name is unknown, a direction is wrong for its
            objective, or a name appears twice. The message names
            ``objectives`` and shows the value received.

    """
    if isinstance(spec, (str, Objective)):
        items: list[Any] = [spec]
    elif isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, (list, tuple)):
        items = list(spec)
    else:
        raise ValueError(
            f"Received: objectives={spec!r}; expected a name, a list of names, "
            "(name, direction) pairs or Objective instances, or a {name: direction} dict."
        )
    if not items:
        raise ValueError(f"Received: objectives={spec!r}; expected at least one objective.")
    objectives = [_parse_item(item, spec) for item in items]
    seen: set[str] = set()
    for objective in objectives:
        if objective.name in seen:
            raise ValueError(
                f"Received: objectives={spec!r}; expected each objective once, got "
                f"{objective.name!r} more than once."
            )
        seen.add(objective.name)
    return objectives
