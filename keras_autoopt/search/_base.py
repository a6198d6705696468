"""The base of the package's classification HyperModels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.search._optimizers import OptimizerSpace

ACTIVATIONS = ("relu", "relu6", "swish", "elu")


def model_name(name: str) -> str:
    r"""Return ``name`` made valid as a TensorFlow name scope.

    TensorFlow accepts ``[A-Za-z0-9.][A-Za-z0-9_.\/>-]*``; a subclass such
    as ``_MyHyperModel`` or a name with spaces would fail every trial.

    Args:
        name: Any name.

    Returns:
        The name with other characters replaced by ``_`` and a leading
        character TensorFlow refuses dropped.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.\\/>-]", "_", name).lstrip("_/\\>-")
    return cleaned or "model"


class ClassifierHyperModel(kt.HyperModel):
    """A keras-tuner HyperModel for ``num_classes``-way classification.

    Subclasses implement `build_body` (input tensor to feature tensor); this
    base adds the softmax output, compiles with the `OptimizerSpace`, and
    trains in `fit` with the searched batch size, epochs and LR schedule.
    Extra callbacks passed to ``fit`` / ``tuner.search`` are kept: that is the
    seam compression callbacks plug into.

    A subclass lists in ``_RANGE_ARGS`` its own constructor arguments kept as
    sequences (choices, ``(low, high)`` ranges); `get_config` returns them as
    lists after the base's arguments.

    Invariants: `build` returns a compiled tf_keras model whose output is a
    probability vector of length ``num_classes``; an architecture that cannot
    work on the input raises ``keras_tuner.errors.FailedTrialError`` so that
    only that trial fails.

    Args:
        input_shape: Shape of one sample, without the batch axis.
        num_classes: Number of classes (>= 2).
        optimizer_space: The optimizer space; None means the default
            `OptimizerSpace()`.
        name: The HyperModel's name.

    Raises:
        ValueError: For a bad ``input_shape`` or ``num_classes``.

    """

    _RANGE_ARGS: tuple[str, ...] = ()

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        optimizer_space: OptimizerSpace | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name, tunable=True)
        if (
            isinstance(input_shape, (str, bytes))
            or not isinstance(input_shape, Sequence)
            or not input_shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                       for d in input_shape)
        ):
            raise ValueError(
                f"Received: input_shape={input_shape!r}; expected a non-empty tuple of "
                "positive integers (one sample's shape, without the batch axis)."
            )
        self.input_shape = tuple(int(d) for d in input_shape)
        check_positive_int("num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"Received: num_classes={num_classes!r}; expected an integer >= 2.")
        self.num_classes = int(num_classes)
        if optimizer_space is not None and not isinstance(optimizer_space, OptimizerSpace):
            raise ValueError(
                f"Received: optimizer_space={optimizer_space!r}; expected an OptimizerSpace "
                "or None."
            )
        self.optimizer_space = optimizer_space or OptimizerSpace()

    def build_body(self, hp, inputs):
        """Map the input tensor to a feature tensor; implemented by subclasses.

        Args:
            hp: The trial's ``HyperParameters``.
            inputs: The ``keras.Input`` tensor.

        Returns:
            A tensor that the softmax classifier is applied to.

        """
        raise NotImplementedError

    def build(self, hp) -> keras.Model:
        """Build and compile the model for ``hp``.

        Args:
            hp: The trial's ``HyperParameters``.

        Returns:
            A compiled tf_keras model.

        """
        inputs = keras.Input(shape=self.input_shape, name="input")
        features = self.build_body(hp, inputs)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax", name="output")(
            features
        )
        model = keras.Model(inputs, outputs, name=model_name(self.name or type(self).__name__))
        return self.optimizer_space.compile(hp, model)

    def fit(self, hp, model, *args, **kwargs):
        """Train with the searched batch size, epochs and schedule.

        Args:
            hp: The trial's ``HyperParameters``.
            model: The model returned by `build`.
            *args: Positional arguments of ``model.fit``.
            **kwargs: Keyword arguments of ``model.fit`` (``callbacks`` kept).

        Returns:
            The ``History`` of ``model.fit``.

        """
        return self.optimizer_space.fit(hp, model, *args, **kwargs)

    def dense_stack(self, hp, x, *, prefix: str, layers: tuple[int, int],
                    units: Sequence[int], dropout: tuple[float, float],
                    activations: Sequence[str], batch_norm: Sequence[bool]):
        """Append a searchable stack of Dense layers to ``x``.

        Args:
            hp: The trial's ``HyperParameters``.
            x: Input tensor (flat).
            prefix: Hyperparameter name prefix.
            layers: ``(low, high)`` number of Dense layers.
            units: Units choices.
            dropout: ``(low, high)`` dropout rate.
            activations: Activation choices.
            batch_norm: Batch-norm choices.

        Returns:
            The output tensor of the stack.

        """
        depth = hp.Int(f"{prefix}_layers", *layers)
        if depth == 0:
            return x
        n_units = hp.Choice(f"{prefix}_units", list(units))
        activation = hp.Choice(f"{prefix}_activation", list(activations))
        use_bn = hp.Choice(f"{prefix}_batch_norm", list(batch_norm))
        rate = hp.Float(f"{prefix}_dropout", *dropout, step=0.1) if dropout[1] > 0 else 0.0
        for i in range(depth):
            x = keras.layers.Dense(n_units, use_bias=not use_bn, name=f"{prefix}_{i}")(x)
            if use_bn:
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn_{i}")(x)
            x = keras.layers.Activation(activation, name=f"{prefix}_act_{i}")(x)
            if rate > 0:
                x = keras.layers.Dropout(rate, name=f"{prefix}_dropout_{i}")(x)
        return x

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values.

        Returns:
            A dict that `from_config` turns back into an equal HyperModel.

        """
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "optimizer_space": self.optimizer_space.get_config(),
            "name": self.name,
            **{arg: list(getattr(self, arg)) for arg in self._RANGE_ARGS},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """Rebuild a HyperModel from `get_config` output.

        Args:
            config: The dict returned by `get_config`.

        Returns:
            A new HyperModel of this class.

        """
        config = dict(config)
        config["optimizer_space"] = OptimizerSpace.from_config(config["optimizer_space"])
        return cls(**config)
