"""`ConvNetHyperModel`: searchable Conv/Pool stacks for image classification."""

from __future__ import annotations

from collections.abc import Sequence

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import (
    check_choices,
    check_float_range,
    check_int_choices,
    check_int_range,
)
from keras_autoopt.search._base import ACTIVATIONS, ClassifierHyperModel
from keras_autoopt.search._optimizers import OptimizerSpace

POOLINGS = ("max", "avg")


class ConvNetHyperModel(ClassifierHyperModel):
    """Searchable convolutional classifier for any image input shape.

    Each block is ``Conv2D (same padding) -> [BatchNorm] -> activation ->
    2x2 pooling -> [Dropout]``; blocks are followed by ``Flatten``, a
    searchable Dense head and the softmax output. Hyperparameters:
    ``conv_blocks``, ``filters_<i>`` per block, ``kernel_size``,
    ``pooling``, ``conv_batch_norm``, ``conv_dropout``, ``conv_activation``,
    ``head_layers``, ``head_units``, ``head_activation``, ``head_batch_norm``,
    ``head_dropout``, plus those of the `OptimizerSpace`.

    An input given as ``(height, width)`` gets a channel axis. A sampled
    number of blocks whose pooling shrinks the input below 1x1 fails that
    trial (``FailedTrialError``) with the sizes in the message.

    Args:
        input_shape: ``(height, width)`` or ``(height, width, channels)``.
        num_classes: Number of classes (>= 2).
        blocks: ``(low, high)`` number of Conv/Pool blocks, low >= 1.
        filters: Choices of filters per block.
        kernel_sizes: Choices of (square) kernel size.
        poolings: Choices among ``("max", "avg")``.
        batch_norm: Choices among ``(False, True)``.
        dropout: ``(low, high)`` dropout after each block, in [0, 0.9].
        activations: Activation choices.
        head_layers: ``(low, high)`` Dense layers in the head, low >= 0.
        head_units: Units choices of the head.
        head_dropout: ``(low, high)`` dropout in the head, in [0, 0.9].
        optimizer_space: The optimizer space; None means the default.
        name: The HyperModel's name.

    Raises:
        ValueError: For any argument outside its documented range.

    """

    _RANGE_ARGS = (
        "blocks", "filters", "kernel_sizes", "poolings", "batch_norm", "dropout", "activations",
        "head_layers", "head_units", "head_dropout",
    )

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        blocks: Sequence[int] = (1, 3),
        filters: Sequence[int] = (16, 32, 64),
        kernel_sizes: Sequence[int] = (3, 5),
        poolings: Sequence[str] = POOLINGS,
        batch_norm: Sequence[bool] = (False, True),
        dropout: Sequence[float] = (0.0, 0.3),
        activations: Sequence[str] = ACTIVATIONS,
        head_layers: Sequence[int] = (0, 2),
        head_units: Sequence[int] = (32, 64, 128),
        head_dropout: Sequence[float] = (0.0, 0.5),
        optimizer_space: OptimizerSpace | None = None,
        name: str | None = None,
    ):
        super().__init__(
            input_shape, num_classes, optimizer_space=optimizer_space, name=name
        )
        if len(self.input_shape) not in (2, 3):
            raise ValueError(
                f"Received: input_shape={input_shape!r}; expected (height, width) or "
                "(height, width, channels) for a ConvNetHyperModel. Use DenseHyperModel "
                "for flat features."
            )
        self.blocks = check_int_range("blocks", blocks, minimum=1)
        self.filters = check_int_choices("filters", filters)
        self.kernel_sizes = check_int_choices("kernel_sizes", kernel_sizes)
        self.poolings = check_choices("poolings", poolings, allowed=POOLINGS)
        self.batch_norm = check_choices("batch_norm", batch_norm, allowed=(False, True))
        self.dropout = check_float_range("dropout", dropout, low=0.0, high=0.9)
        self.activations = check_choices("activations", activations, allowed=ACTIVATIONS)
        self.head_layers = check_int_range("head_layers", head_layers, minimum=0)
        self.head_units = check_int_choices("head_units", head_units)
        self.head_dropout = check_float_range("head_dropout", head_dropout, low=0.0, high=0.9)

    def build_body(self, hp, inputs):
        """Build the Conv/Pool blocks and the Dense head.

        Args:
            hp: The trial's ``HyperParameters``.
            inputs: The input tensor.

        Returns:
            The head's output tensor.

        Raises:
            keras_tuner.errors.FailedTrialError: If the sampled pooling stack
                shrinks the input below 1x1.

        """
        n_blocks = hp.Int("conv_blocks", *self.blocks)
        kernel_size = hp.Choice("kernel_size", list(self.kernel_sizes))
        pooling = hp.Choice("pooling", list(self.poolings))
        use_bn = hp.Choice("conv_batch_norm", list(self.batch_norm))
        activation = hp.Choice("conv_activation", list(self.activations))
        rate = (
            hp.Float("conv_dropout", *self.dropout, step=0.1) if self.dropout[1] > 0 else 0.0
        )
        filters = [hp.Choice(f"filters_{i}", list(self.filters)) for i in range(n_blocks)]

        height, width = self.input_shape[:2]
        for i in range(n_blocks):
            height, width = height // 2, width // 2
            if height < 1 or width < 1:
                raise kt.errors.FailedTrialError(
                    f"conv_blocks={n_blocks} cannot fit the {self.input_shape[0]}x"
                    f"{self.input_shape[1]} input: the 2x2 pooling of block {i + 1} shrinks "
                    f"it below 1x1. Lower the 'blocks' range or use a larger input."
                )

        x = inputs
        if len(self.input_shape) == 2:
            x = keras.layers.Reshape((*self.input_shape, 1), name="add_channel")(x)
        pool_cls = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
        for i, n_filters in enumerate(filters):
            x = keras.layers.Conv2D(
                n_filters, kernel_size, padding="same", use_bias=not use_bn, name=f"conv_{i}"
            )(x)
            if use_bn:
                x = keras.layers.BatchNormalization(name=f"conv_bn_{i}")(x)
            x = keras.layers.Activation(activation, name=f"conv_act_{i}")(x)
            x = pool_cls(2, name=f"pool_{i}")(x)
            if rate > 0:
                x = keras.layers.Dropout(rate, name=f"conv_dropout_{i}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        return self.dense_stack(
            hp, x, prefix="head", layers=self.head_layers, units=self.head_units,
            dropout=self.head_dropout, activations=self.activations,
            batch_norm=self.batch_norm,
        )
