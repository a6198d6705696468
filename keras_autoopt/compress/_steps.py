"""Compression steps: TF-MOT pruning, clustering and quantization-aware training.

Each step is a small config object (validated in ``__init__``, round-tripping
through `get_config` / `from_config`) that knows how to wrap a model with
TF-MOT (`apply`), which callbacks drive the wrappers in ``model.fit``
(`callbacks`), how to remove the wrappers (`strip`), and what it promised
(`target`). Nothing here re-implements TF-MOT: the steps only choose which
layers to wrap and with which parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from keras_autoopt._backend import keras
from keras_autoopt._graph import check_graph_model

SCHEDULES = ("polynomial", "constant")
CENTROID_INITS = ("kmeans_plus_plus", "linear", "density_based", "random")
QAT_SCHEMES = ("auto", "default", "pqat", "cqat", "pcqat")


class UnsupportedLayerError(ValueError):
    """A layer with weights that a TF-MOT technique cannot wrap."""


def _check_fraction(name: str, value: Any, *, allow_zero: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (0.0 <= value < 1.0) if allow_zero else (0.0 < value < 1.0)
    if not ok:
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"Received: {name}={value!r}; expected a float in {interval}.")
    return float(value)


def _check_names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
        isinstance(v, str) for v in value
    ):
        raise ValueError(f"Received: {name}={value!r}; expected a list of layer names.")
    return tuple(value)


def _check_layer_map(name: str, value: Any, check: Callable[[str, Any], Any],
                     what: str) -> dict[str, Any]:
    """Check a per-layer override mapping: layer name -> value checked by ``check``.

    Args:
        name: The argument's name, e.g. ``"layer_sparsity"``.
        value: A mapping of layer names to values, or None (no override).
        check: Called as ``check(f"{name}['<layer>']", value)``; returns the checked value.
        what: What the values are, for the error message (e.g. ``"sparsities"``).

    Returns:
        A new dict of layer names (as ``str``) to checked values.
    """
    if value is not None and not isinstance(value, Mapping):
        raise ValueError(
            f"Received: {name}={value!r}; expected a mapping of layer names to {what}."
        )
    return {str(layer): check(f"{name}['{layer}']", v) for layer, v in (value or {}).items()}


def _check_epochs(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Received: epochs={value!r}; expected an integer >= 0.")
    return value


def _check_learning_rate(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Received: learning_rate={value!r}; expected a positive float or None.")
    return float(value)


def _has_weights(layer: keras.layers.Layer) -> bool:
    return bool(layer.weights)


class CompressionStep:
    """Base of the compression steps.

    Invariants every step keeps: `apply` returns a new model (the input is not
    modified) with the same inputs and outputs, whose layers named in
    `skip_layers` are left as they are; a layer with weights that the
    technique cannot wrap raises `UnsupportedLayerError` naming it, unless
    ``skip_unsupported`` is set, in which case it is left unwrapped and
    reported by `skipped`; `strip` removes every wrapper this step added;
    ``get_config()`` is JSON-serializable and ``from_config`` rebuilds an
    equal step.

    Args:
        epochs: Fine-tuning epochs of this stage in `CompressionPlan.run`.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Names of layers never wrapped.
        skip_unsupported: Leave layers the technique cannot wrap unwrapped
            instead of raising.
    """

    kind: ClassVar[str] = "step"
    #: The attribute holding the step's per-layer settings (``{layer name: value}``), if any.
    per_layer_attr: ClassVar[str | None] = None

    def __init__(self, *, epochs: int = 2, learning_rate: float | None = None,
                 skip_layers: Sequence[str] = (), skip_unsupported: bool = False):
        self.epochs = _check_epochs(epochs)
        self.learning_rate = _check_learning_rate(learning_rate)
        self.skip_layers = _check_names("skip_layers", skip_layers)
        self.skip_unsupported = bool(skip_unsupported)
        self.skipped: list[str] = []

    # -- hooks for subclasses -------------------------------------------------------------
    def supports(self, layer: keras.layers.Layer) -> bool:
        """Whether the technique can wrap ``layer``."""
        raise NotImplementedError

    def wrap(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Wrap one supported layer."""
        raise NotImplementedError

    def strip(self, model: keras.Model) -> keras.Model:
        """Remove this step's wrappers from ``model``."""
        raise NotImplementedError

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """The callbacks this step's wrappers need in ``model.fit``."""
        return []

    def target(self) -> dict[str, Any]:
        """What the step promises (e.g. ``{"sparsity": 0.8}``)."""
        return {}

    # -- shared -------------------------------------------------------------------------
    def selects(self, layer: keras.layers.Layer) -> bool:
        """Whether ``layer`` is to be wrapped (has weights, not skipped)."""
        return _has_weights(layer) and layer.name not in self.skip_layers

    def apply(self, model: keras.Model) -> keras.Model:
        """Return a copy of ``model`` with the selected layers wrapped.

        Args:
            model: A Sequential or functional tf_keras model.

        Returns:
            The wrapped model (not compiled).

        Raises:
            UnsupportedLayerError: For a layer with weights the technique
                cannot wrap, unless ``skip_unsupported``.
            ValueError: For a subclassed model or an unknown layer in the
                step's per-layer settings.
        """
        check_graph_model("model", model, "TF-MOT cannot wrap subclassed models")
        self._check_layer_names(model)
        self.skipped = []
        for layer in model.layers:
            if self.selects(layer) and _has_weights(layer) and not self.supports(layer):
                if not self.skip_unsupported:
                    raise UnsupportedLayerError(
                        f"Layer '{layer.name}' ({type(layer).__name__}) cannot be wrapped by "
                        f"{type(self).__name__}: TF-MOT does not support it. Pass "
                        f"skip_layers=['{layer.name}'] or skip_unsupported=True to compress "
                        "the rest of the model."
                    )
                self.skipped.append(layer.name)

        # Wrap the layers of a private copy: TF-MOT wrappers take the layer
        # object itself (keeping its weights), so wrapping the user's layers
        # would make their model train along with the wrapped one.
        copy = clone_with_weights(model)
        return keras.models.clone_model(
            copy,
            clone_function=lambda layer: (
                self.wrap(layer)
                if self.selects(layer) and self.supports(layer)
                and layer.name not in self.skipped
                else layer
            ),
        )

    def layer_names(self) -> tuple[str, ...]:
        """Layer names the step's settings refer to (checked against the model)."""
        per_layer = getattr(self, self.per_layer_attr) if self.per_layer_attr else {}
        return (*self.skip_layers, *per_layer)

    def _check_layer_names(self, model: keras.Model) -> None:
        known = {layer.name for layer in model.layers}
        unknown = sorted(set(self.layer_names()) - known)
        if unknown:
            raise ValueError(
                f"Received: layer names {unknown} in {type(self).__name__}; expected names of "
                f"the model's layers: {sorted(known)}."
            )

    def base_config(self) -> dict[str, Any]:
        """The constructor arguments of the base class."""
        return {"epochs": self.epochs, "learning_rate": self.learning_rate,
                "skip_layers": list(self.skip_layers),
                "skip_unsupported": self.skip_unsupported}

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values."""
        return self.base_config()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CompressionStep:
        """Rebuild a step from `get_config` output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()!r})"


def clone_with_weights(model: keras.Model) -> keras.Model:
    """Return an independent copy of ``model`` with the same weights (not compiled).

    Args:
        model: A Sequential or functional tf_keras model.

    Returns:
        The copy.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
