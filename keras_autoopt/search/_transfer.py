"""`TransferHyperModel`: search how to fine-tune a trained base model on a new task.

A trial copies the user's trained base (never the base itself), cuts it at a
feature layer, puts a new classification head on it and trains in two phases:

1. *head*: the whole base is frozen; only the head trains, with Adam at
   ``head_learning_rate``, for ``head_epochs``;
2. *fine-tune*: the base layers chosen by the ``strategy`` are unfrozen and
   training continues, with Adam at ``head_learning_rate *
   fine_tune_learning_rate_factor``, for ``fine_tune_epochs`` (``initial_epoch``
   follows on from phase 1, so epoch numbers, callbacks and the returned
   history run across both phases).

Strategies: ``"feature_extraction"`` (the base stays frozen in both phases;
phase 2 trains the head on at the lower learning rate, so every strategy gets
the same epoch budget), ``"top_k"`` (the top ``top_k`` base layers that hold
weights are unfrozen) and ``"full"`` (every base layer is unfrozen).

The base is called with ``training=False``: every BatchNormalization layer of
the base stays in inference mode, also when it is unfrozen. It keeps
normalising with the moving statistics learned on the source data and never
updates them; only its ``gamma``/``beta`` are fine-tuned. (Letting BN layers
re-estimate statistics from a few target batches is the classic way to
destroy a pre-trained base in the first fine-tuning step.) Dropout layers of
the base are inactive for the same reason.

`freeze_for_strategy` applies a strategy to a model without keras-tuner; it and the
handling of the base model live in `keras_autoopt.search._transfer_base`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import (
    check_choices,
    check_float_range,
    check_int_choices,
    check_int_range,
    check_positive_int,
)
from keras_autoopt.load import as_tf_keras
from keras_autoopt.search._base import model_name
from keras_autoopt.search._transfer_base import (
    BASE_LAYER_NAME,
    STRATEGIES,
    _find_base,
    _layers_with_weights,
    _load_base,
    _resolve_feature_layer,
    freeze_for_strategy,
)

_LOSS = "sparse_categorical_crossentropy"


def _json_normalized(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _combine_histories(model: keras.Model, histories: Sequence) -> keras.callbacks.History:
    combined = keras.callbacks.History()
    combined.set_model(model)
    combined.epoch = [epoch for h in histories for epoch in h.epoch]
    keys = [key for h in histories for key in h.history]
    combined.history = {
        key: [value for h in histories for value in h.history.get(key, [])]
        for key in dict.fromkeys(keys)
    }
    combined.params = dict(histories[-1].params) if histories else {}
    return combined


class TransferHyperModel(kt.HyperModel):
    """A keras-tuner HyperModel that fine-tunes a trained base model on a new task.

    Every `build` copies the base (``clone_model`` + ``set_weights``), so
    trials never change the user's model or share weights with each other. The
    copy is cut at ``feature_layer``, called with ``training=False`` (see the
    module docstring: BatchNormalization stays in inference mode) and topped
    with a new head: ``[Dense(head_units, relu)] -> [Dropout] ->
    Dense(num_classes, softmax)``. Feature maps with spatial axes (rank 3 or 4)
    go through global average pooling first, other ranks through ``Flatten``.
    `fit` trains in two phases: head first, then the fine-tuning ``strategy``.

    Hyperparameters: ``strategy``, ``top_k`` (only for ``strategy="top_k"``),
    ``head_units`` (0 means a linear head), ``head_dropout``,
    ``head_learning_rate`` (log), ``fine_tune_learning_rate_factor`` (log), and
    in `fit`: ``head_epochs``, ``fine_tune_epochs``, ``batch_size``.

    Nothing is downloaded. Keras Applications architectures work when built
    with ``weights=None`` and trained by you (e.g.
    ``keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None,
    classes=10)``); for MobileNet (v1), whose classifier is more than one layer,
    pass ``feature_layer`` (e.g. its global pooling layer).

    Args:
        base_model: A trained tf_keras functional or Sequential model with one
            input, or the path of one saved as ``.keras`` / ``.h5`` (loaded with
            `keras_autoopt.load.load_model_file`: a file that would run code on
            load is refused unless ``trust_model``). Its weights are
            copied when the HyperModel is created; later changes to the model
            are not seen.
        num_classes: Number of classes of the new task (>= 2).
        strategies: Fine-tuning strategies to choose from, among `STRATEGIES`.
        top_k: ``(low, high)`` number of top base layers that hold weights to
            unfreeze with ``"top_k"``, low >= 1 (see `freeze_for_strategy`;
            `fine_tunable_layers` lists the candidates). A value above the
            number of such layers unfreezes them all.
        head_units: Choices of units of the head's hidden Dense layer; 0
            means no hidden layer (a linear head).
        head_dropout: ``(low, high)`` dropout before the output layer, in
            [0, 0.9].
        head_learning_rate: ``(low, high)`` of the log-uniform phase-1 Adam
            learning rate.
        fine_tune_learning_rate_factor: ``(low, high)`` of the log-uniform
            factor, in (0, 1], that multiplies the head learning rate in phase 2.
        head_epochs: ``(low, high)`` epochs of phase 1, low >= 1.
        fine_tune_epochs: ``(low, high)`` epochs of phase 2, low >= 1.
        batch_sizes: Batch size choices.
        feature_layer: Name of the base layer whose output is the feature.
            None: if the base's last layer is a classifier (a ``Dense`` layer,
            a ``Softmax`` layer, or a softmax/sigmoid ``Activation``), the
            features are that layer's input, i.e. the classifier is dropped;
            otherwise (e.g. a base built with ``include_top=False``) the whole
            base is the feature extractor.
        name: The HyperModel's name.
        trust_model: Load a ``base_model`` file that would run code on load
            (a ``Lambda`` layer, custom classes); refused by default.

    Raises:
        ValueError: For any argument outside its documented range, a path
            that is not a loadable model file, a subclassed or multi-input
            base, or a ``feature_layer`` the base does not have. All checked
            before any training.

    """

    def __init__(
        self,
        base_model: keras.Model | str | os.PathLike,
        num_classes: int,
        *,
        strategies: Sequence[str] = STRATEGIES,
        top_k: Sequence[int] = (1, 4),
        head_units: Sequence[int] = (0, 64, 128),
        head_dropout: Sequence[float] = (0.0, 0.5),
        head_learning_rate: Sequence[float] = (1e-3, 1e-2),
        fine_tune_learning_rate_factor: Sequence[float] = (0.01, 0.1),
        head_epochs: Sequence[int] = (5, 15),
        fine_tune_epochs: Sequence[int] = (5, 15),
        batch_sizes: Sequence[int] = (16, 32),
        feature_layer: str | None = None,
        name: str | None = None,
        trust_model: bool = False,
    ):
        super().__init__(name=name, tunable=True)
        check_positive_int("num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"Received: num_classes={num_classes!r}; expected an integer >= 2.")
        self.num_classes = int(num_classes)
        self.strategies = check_choices("strategies", strategies, allowed=STRATEGIES)
        self.top_k = check_int_range("top_k", top_k, minimum=1)
        self.head_units = check_choices("head_units", head_units, kind=int)
        for units in self.head_units:
            check_positive_int("head_units", units, minimum=0)
        self.head_dropout = check_float_range("head_dropout", head_dropout, low=0.0, high=0.9)
        self.head_learning_rate = check_float_range(
            "head_learning_rate", head_learning_rate, low=0.0, high=10.0, open_low=True
        )
        self.fine_tune_learning_rate_factor = check_float_range(
            "fine_tune_learning_rate_factor", fine_tune_learning_rate_factor, low=0.0,
            high=1.0, open_low=True,
        )
        self.head_epochs = check_int_range("head_epochs", head_epochs, minimum=1)
        self.fine_tune_epochs = check_int_range("fine_tune_epochs", fine_tune_epochs, minimum=1)
        self.batch_sizes = check_int_choices("batch_sizes", batch_sizes)
        if feature_layer is not None and (not isinstance(feature_layer, str) or not feature_layer):
            raise ValueError(
                f"Received: feature_layer={feature_layer!r}; expected None or the name of a "
                "layer of base_model."
            )
        self.feature_layer = feature_layer

        if isinstance(base_model, (str, bytes, os.PathLike)):
            base, self.base_model_path = _load_base(base_model, trust_model)
        elif isinstance(converted := as_tf_keras(base_model, arg="base_model")[0], keras.Model):
            # A Keras 3 model is converted exactly (its weights copied).
            base, self.base_model_path = converted, None
        else:
            raise ValueError(
                f"Received: base_model of type {type(base_model).__name__}; expected a tf_keras "
                "or Keras 3 model, or the path of a saved .keras / .h5 file."
            )
        if not getattr(base, "_is_graph_network", False) or not base.inputs:
            raise ValueError(
                f"Received: base_model={base.name!r} of type {type(base).__name__}; expected a "
                "functional or Sequential model with a defined input (a subclassed model "
                "cannot be cut at a feature layer)."
            )
        if len(base.inputs) != 1:
            raise ValueError(
                f"Received: base_model={base.name!r} with {len(base.inputs)} inputs; expected "
                "a model with one input."
            )
        self.base_model = base
        self.feature_layer_name = _resolve_feature_layer(base, feature_layer)
        trunk = keras.Model(base.inputs, base.get_layer(self.feature_layer_name).output)
        self.fine_tunable_layers = [layer.name for layer in _layers_with_weights(trunk)]
        if not self.fine_tunable_layers:
            raise ValueError(
                f"Received: feature_layer={self.feature_layer_name!r}; expected a layer above "
                "at least one layer with weights (this one leaves nothing of the base to "
                "transfer)."
            )
        self._base_weights = base.get_weights()

    # -- hyperparameters --------------------------------------------------------------------
    def _strategy_hp(self, hp) -> tuple[str, int | None]:
        strategy = hp.Choice("strategy", list(self.strategies))
        top_k = None
        if "top_k" in self.strategies:
            with hp.conditional_scope("strategy", ["top_k"]):
                top_k = hp.Int("top_k", *self.top_k)
        return strategy, (top_k if strategy == "top_k" else None)

    def _learning_rates_hp(self, hp) -> tuple[float, float]:
        head = hp.Float("head_learning_rate", *self.head_learning_rate, sampling="log")
        factor = hp.Float(
            "fine_tune_learning_rate_factor", *self.fine_tune_learning_rate_factor,
            sampling="log",
        )
        return float(head), float(head * factor)

    @staticmethod
    def _compile(model: keras.Model, learning_rate: float) -> keras.Model:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss=_LOSS, metrics=["accuracy"]
        )
        return model

    # -- build ------------------------------------------------------------------------------
    def build(self, hp) -> keras.Model:
        """Build the phase-1 model for ``hp``: a fresh copy of the base, frozen, plus a head.

        Args:
            hp: The trial's ``HyperParameters``.

        Returns:
            A tf_keras model compiled with Adam at the head learning rate,
            whose base (the layer named `BASE_LAYER_NAME`) is frozen.

        """
        self._strategy_hp(hp)
        units = hp.Choice("head_units", list(self.head_units))
        low, high = self.head_dropout
        rate = hp.Float("head_dropout", low, high, step=0.1) if high > 0 else 0.0
        head_lr, _ = self._learning_rates_hp(hp)

        clone = keras.models.clone_model(self.base_model)
        clone.set_weights(self._base_weights)
        base = keras.Model(
            clone.inputs, clone.get_layer(self.feature_layer_name).output, name=BASE_LAYER_NAME
        )
        source = self.base_model.inputs[0]
        inputs = keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype, name="input")
        # training=False: the base's BatchNormalization (and Dropout) layers run in
        # inference mode in both phases, even when they are unfrozen.
        x = base(inputs, training=False)
        if x.shape.rank == 4:
            x = keras.layers.GlobalAveragePooling2D(name="feature_pool")(x)
        elif x.shape.rank == 3:
            x = keras.layers.GlobalAveragePooling1D(name="feature_pool")(x)
        elif x.shape.rank != 2:
            x = keras.layers.Flatten(name="feature_flatten")(x)
        if units:
            x = keras.layers.Dense(units, activation="relu", name="head_dense")(x)
        if rate > 0:
            x = keras.layers.Dropout(rate, name="head_dropout")(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax", name="output")(x)
        model = keras.Model(
            inputs, outputs, name=model_name(self.name or type(self).__name__)
        )
        freeze_for_strategy(model, "feature_extraction")
        return self._compile(model, head_lr)

    # -- fit --------------------------------------------------------------------------------
    def fit(self, hp, model: keras.Model, *args, **kwargs) -> keras.callbacks.History:
        """Train in two phases: the head on the frozen base, then the strategy's layers.

        Phase 1 freezes the base and trains with Adam at the head learning
        rate; phase 2 applies `freeze_for_strategy` and recompiles with Adam
        at the head learning rate times the factor. Both phases get the same
        ``callbacks`` instances (a keras-tuner checkpoint keeps its best value
        across them) and phase 2 starts at the epoch where phase 1 stopped.

        ``batch_size`` and ``epochs`` given in ``kwargs`` win over the searched
        ones. A given ``epochs`` is the total of both phases, split in the
        ratio of the sampled ``head_epochs`` to ``fine_tune_epochs`` (at least
        one head epoch; ``epochs=1`` runs phase 1 only). A given
        ``initial_epoch`` (Hyperband resuming a trial) skips the epochs before
        it, in whichever phase they fall. The inputs must be iterable twice
        (arrays, a ``tf.data.Dataset``, a ``keras.utils.Sequence``).

        Args:
            hp: The trial's ``HyperParameters``.
            model: A model built by `build`.
            *args: Positional arguments of ``model.fit``.
            **kwargs: Keyword arguments of ``model.fit`` (``callbacks`` kept).

        Returns:
            A ``History`` holding both phases: one entry per epoch in
            ``history.history[metric]`` and ``history.epoch``.

        Raises:
            ValueError: If ``model`` was not built by a `TransferHyperModel`,
                or for a bad ``epochs`` / ``initial_epoch``.

        """
        if _find_base(model) is model:
            raise ValueError(
                f"Received: model={model.name!r} without a {BASE_LAYER_NAME!r} layer; expected "
                "a model built by TransferHyperModel.build."
            )
        strategy, top_k = self._strategy_hp(hp)
        head_lr, fine_tune_lr = self._learning_rates_hp(hp)
        head_epochs = hp.Int("head_epochs", *self.head_epochs)
        fine_tune_epochs = hp.Int("fine_tune_epochs", *self.fine_tune_epochs)
        if "batch_size" not in kwargs:
            kwargs["batch_size"] = hp.Choice("batch_size", list(self.batch_sizes))
        if "epochs" in kwargs:
            total = check_positive_int("epochs", kwargs.pop("epochs"))
            split = round(total * head_epochs / (head_epochs + fine_tune_epochs))
            phase1_end = min(max(1, split), total)
        else:
            total = head_epochs + fine_tune_epochs
            phase1_end = head_epochs
        initial = check_positive_int("initial_epoch", kwargs.pop("initial_epoch", 0), minimum=0)
        callbacks = list(kwargs.pop("callbacks", None) or [])

        histories = []
        if initial < phase1_end:
            freeze_for_strategy(model, "feature_extraction")
            self._compile(model, head_lr)
            histories.append(model.fit(*args, epochs=phase1_end, initial_epoch=initial,
                                       callbacks=callbacks, **kwargs))
        if total > max(initial, phase1_end):
            freeze_for_strategy(model, strategy, top_k)
            self._compile(model, fine_tune_lr)
            histories.append(model.fit(*args, epochs=total,
                                       initial_epoch=max(initial, phase1_end),
                                       callbacks=callbacks, **kwargs))
        return _combine_histories(model, histories)

    # -- serialization ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values.

        A base given as a path is stored as that path. A base given as a model
        object is stored as its Keras architecture (``base_model_config``)
        only: the weights are not in the config, so `from_config` then needs
        the model again (``base_model=``).

        Returns:
            A dict that `from_config` turns back into an equal HyperModel.

        """
        architecture = None
        if self.base_model_path is None:
            architecture = _json_normalized({
                "class_name": type(self.base_model).__name__,
                "config": self.base_model.get_config(),
            })
        return {
            "base_model": self.base_model_path,
            "base_model_config": architecture,
            "num_classes": self.num_classes,
            "strategies": list(self.strategies),
            "top_k": list(self.top_k),
            "head_units": list(self.head_units),
            "head_dropout": list(self.head_dropout),
            "head_learning_rate": list(self.head_learning_rate),
            "fine_tune_learning_rate_factor": list(self.fine_tune_learning_rate_factor),
            "head_epochs": list(self.head_epochs),
            "fine_tune_epochs": list(self.fine_tune_epochs),
            "batch_sizes": list(self.batch_sizes),
            "feature_layer": self.feature_layer,
            "name": self.name,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, base_model: keras.Model | None = None,
        trust_model: bool = False,
    ) -> TransferHyperModel:
        """Rebuild a HyperModel from `get_config` output.

        Args:
            config: The dict returned by `get_config`.
            base_model: The trained base model; required when the config was
                made from a model object (it holds no weights), otherwise it
                replaces the stored path.
            trust_model: As in the constructor (a stored path is loaded).

        Returns:
            A new `TransferHyperModel`.

        Raises:
            ValueError: If the config holds no path and ``base_model`` is not
                given, or ``base_model``'s architecture differs from the one
                in the config.

        """
        config = dict(config)
        path = config.pop("base_model", None)
        architecture = config.pop("base_model_config", None)
        if base_model is None:
            if path is None:
                raise ValueError(
                    "Received: base_model=None for a config made from a model object; "
                    "expected the trained base model: the config holds its architecture but "
                    "not its weights. Call from_config(config, base_model=model)."
                )
            base_model = path
        elif architecture is not None and isinstance(base_model, keras.Model):
            given = _json_normalized(base_model.get_config())
            if given != architecture.get("config"):
                raise ValueError(
                    f"Received: base_model={base_model.name!r} whose architecture differs from "
                    "the base_model_config in config; expected the model the config was made "
                    "from."
                )
        return cls(base_model, trust_model=trust_model, **config)
