"""`DenseHyperModel`: searchable Dense stacks for flat (or flattened) inputs."""

from __future__ import annotations

from collections.abc import Sequence

from keras_autoopt._backend import keras
from keras_autoopt._checks import (
    check_choices,
    check_float_range,
    check_int_choices,
    check_int_range,
)
from keras_autoopt.search._base import ACTIVATIONS, ClassifierHyperModel
from keras_autoopt.search._optimizers import OptimizerSpace


class DenseHyperModel(ClassifierHyperModel):
    """Searchable multi-layer perceptron classifier.

    Inputs of any rank are flattened. Hyperparameters: ``dense_layers``,
    ``dense_units``, ``dense_activation``, ``dense_batch_norm``,
    ``dense_dropout``, plus those of the `OptimizerSpace`.

    Args:
        input_shape: One sample's shape.
        num_classes: Number of classes (>= 2).
        layers: ``(low, high)`` number of hidden Dense layers, low >= 1.
        units: Units choices (shared by the hidden layers).
        activations: Activation choices.
        batch_norm: Choices among ``(False, True)``.
        dropout: ``(low, high)`` dropout after each hidden layer, in [0, 0.9].
        optimizer_space: The optimizer space; None means the default.
        name: The HyperModel's name.

    Raises:
        ValueError: For any argument outside its documented range.

    """

    _RANGE_ARGS = (
        "layers", "units", "activations", "batch_norm", "dropout",
    )

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        layers: Sequence[int] = (1, 3),
        units: Sequence[int] = (32, 64, 128, 256),
        activations: Sequence[str] = ACTIVATIONS,
        batch_norm: Sequence[bool] = (False, True),
        dropout: Sequence[float] = (0.0, 0.5),
        optimizer_space: OptimizerSpace | None = None,
        name: str | None = None,
    ):
        super().__init__(
            input_shape, num_classes, optimizer_space=optimizer_space, name=name
        )
        self.layers = check_int_range("layers", layers, minimum=1)
        self.units = check_int_choices("units", units)
        self.activations = check_choices("activations", activations, allowed=ACTIVATIONS)
        self.batch_norm = check_choices("batch_norm", batch_norm, allowed=(False, True))
        self.dropout = check_float_range("dropout", dropout, low=0.0, high=0.9)

    def build_body(self, hp, inputs):
        """Flatten the input and build the Dense stack (`ClassifierHyperModel.build_body`)."""
        x = keras.layers.Flatten(name="flatten")(inputs) if len(self.input_shape) > 1 else inputs
        return self.dense_stack(
            hp, x, prefix="dense", layers=self.layers, units=self.units,
            dropout=self.dropout, activations=self.activations, batch_norm=self.batch_norm,
        )
