"""The base model of a transfer search: strategies, freezing, loading, the feature layer."""

from __future__ import annotations

import os
from pathlib import Path

from keras_autoopt._backend import keras
from keras_autoopt._checks import check_positive_int
from keras_autoopt.load import MODEL_SUFFIXES, load_model_file

STRATEGIES = ("feature_extraction", "top_k", "full")

#: The name of the (copied, truncated) base inside a model built by `TransferHyperModel`.
BASE_LAYER_NAME = "transfer_base"


def _layers_with_weights(base: keras.Model) -> list:
    return [layer for layer in base.layers if layer.weights]


def _find_base(model: keras.Model) -> keras.Model:
    for layer in model.layers:
        if layer.name == BASE_LAYER_NAME and isinstance(layer, keras.Model):
            return layer
    return model


def freeze_for_strategy(
    model_or_base: keras.Model, strategy: str, top_k: int | None = None
) -> list[str]:
    """Set the ``trainable`` flags of a base model's layers for a strategy.

    ``model_or_base`` is either a model built by `TransferHyperModel` (its
    base, the layer named `BASE_LAYER_NAME`, is changed; the head is left
    trainable) or a base model itself. Only the base's top-level layers are
    considered; a nested model inside the base counts as one layer.

    * ``"feature_extraction"``: every base layer is frozen.
    * ``"top_k"``: the last ``top_k`` base layers that hold weights (Conv,
      Dense, BatchNormalization, ...) are trainable, every other base layer is
      frozen. A ``top_k`` above the number of such layers unfreezes them all.
    * ``"full"``: every base layer is trainable.

    Recompile the model afterwards: Keras reads the flags when it compiles.
    The flags only choose what the optimizer updates; a BatchNormalization
    layer of a `TransferHyperModel` model stays in inference mode either way.

    Args:
        model_or_base: A model built by `TransferHyperModel`, or a base model.
        strategy: One of `STRATEGIES`.
        top_k: Number of top layers with weights to unfreeze; required (a
            positive integer) for ``"top_k"``, ignored otherwise.

    Returns:
        The names of the base layers made trainable, bottom to top.

    Raises:
        ValueError: For a model that is not a tf_keras model, an unknown
            strategy or a bad ``top_k``.

    """
    if not isinstance(model_or_base, keras.Model):
        raise ValueError(
            f"Received: model_or_base of type {type(model_or_base).__name__}; expected a "
            "tf_keras model."
        )
    if strategy not in STRATEGIES:
        raise ValueError(f"Received: strategy={strategy!r}; expected one of {STRATEGIES}.")
    if strategy == "top_k":
        top_k = check_positive_int("top_k", top_k)
    base = _find_base(model_or_base)
    weighted = _layers_with_weights(base)
    if strategy == "full":
        selected = weighted
    elif strategy == "top_k":
        selected = weighted[-top_k:]
    else:
        selected = []
    if not selected:
        base.trainable = False
        return []
    base.trainable = True
    chosen = {id(layer) for layer in selected}
    for layer in base.layers:
        layer.trainable = id(layer) in chosen
    return [layer.name for layer in selected]


def _is_classifier(layer) -> bool:
    if isinstance(layer, keras.layers.Dense):
        return True
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return isinstance(layer, keras.layers.Activation) and getattr(
        activation, "__name__", ""
    ) in ("softmax", "sigmoid")


def _layer_names_hint(base: keras.Model) -> str:
    names = [layer.name for layer in base.layers]
    if len(names) <= 12:
        return f"one of {names}"
    return f"one of its {len(names)} layers, e.g. the last ones: {names[-8:]}"


def _load_base(path: str | os.PathLike, trust_model: bool) -> tuple[keras.Model, str]:
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    expected = (
        "expected a tf_keras model or the path of a saved model file ending in "
        f"{' / '.join(MODEL_SUFFIXES)}"
    )
    if not text.lower().endswith(MODEL_SUFFIXES):
        raise ValueError(f"Received: base_model={text!r}; {expected}.")
    if not Path(text).is_file():
        raise ValueError(f"Received: base_model={text!r} (no such file); {expected}.")
    # Refuses a file whose loading would run code (Lambda, custom classes) unless trusted;
    # ModelFileError is a ValueError naming base_model and the file.
    return load_model_file(text, arg="base_model", trust_model=trust_model), text


def _resolve_feature_layer(base: keras.Model, feature_layer: str | None) -> str:
    """The name of the base layer whose output is the feature (see `TransferHyperModel`)."""
    if feature_layer is not None:
        names = [layer.name for layer in base.layers]
        if feature_layer not in names:
            raise ValueError(
                f"Received: feature_layer={feature_layer!r}; expected the name of a layer "
                f"of base_model {base.name!r}, {_layer_names_hint(base)}."
            )
        try:
            base.get_layer(feature_layer).output  # noqa: B018  (raises if ambiguous)
        except AttributeError as err:
            raise ValueError(
                f"Received: feature_layer={feature_layer!r}, a layer used more than once "
                f"in base_model ({err}); expected a layer with a single output."
            ) from err
        return feature_layer
    last = base.layers[-1]
    if not _is_classifier(last):
        return last.name
    feature = last.input
    if isinstance(feature, (list, tuple)):
        raise ValueError(
            f"Received: feature_layer=None for a base whose last layer {last.name!r} has "
            f"{len(feature)} inputs; expected a feature_layer name, "
            f"{_layer_names_hint(base)}."
        )
    for layer in base.layers[:-1]:
        if layer.output is feature:
            return layer.name
    raise ValueError(  # pragma: no cover - defensive
        f"Received: feature_layer=None; could not find the layer feeding {last.name!r}. "
        "Pass feature_layer explicitly."
    )
