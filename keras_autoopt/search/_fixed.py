"""Trained models of the shipped HyperModels with fixed hyperparameters (the QAT matrix's).

``hp.Fixed`` also lets through activations the HyperModels do not sample (gelu,
sigmoid, tanh): the layers are the same. One source for the QAT matrix of
``benchmarks/_qat_matrix.py`` and of ``tests/compress/test_qat_matrix.py``.
"""

from __future__ import annotations

from keras_autoopt._backend import keras, kt
from keras_autoopt.search._convnet import ConvNetHyperModel
from keras_autoopt.search._dense import DenseHyperModel

KINDS = ("convnet", "dense")


def fixed_model(dataset, kind: str, act: str, bn: bool, *, head_act: str | None = None,
                head_bn: bool | None = None, seed: int = 0, epochs: int = 6) -> keras.Model:
    """Build a small model of a shipped HyperModel and train it briefly.

    ``"convnet"``: one Conv/Pool block of 12 filters and a Dense head of 32
    units; ``"dense"``: two Dense layers of 32 units. Trained with Adam (3e-3)
    in batches of 16, enough steps for the batch norms' moving statistics to
    settle.

    Args:
        dataset: A `Dataset` (``input_shape``, ``num_classes``, ``x_train``,
            ``y_train``).
        kind: One of `KINDS`.
        act: Activation of the conv block (or of the Dense layers).
        bn: Batch norm in the conv block (or after the Dense layers).
        head_act: Activation of the ConvNet's head; None means ``act``.
        head_bn: Batch norm in the ConvNet's head; None means ``bn``.
        seed: Seed of the initialization and of the training.
        epochs: Training epochs.

    Returns:
        The trained, compiled model.
    """
    if kind not in KINDS:
        raise ValueError(f"Received: kind={kind!r}; expected one of {KINDS}.")
    hp = kt.HyperParameters()
    if kind == "convnet":
        hypermodel = ConvNetHyperModel(dataset.input_shape, dataset.num_classes)
        values = {"conv_blocks": 1, "kernel_size": 3, "pooling": "max", "filters_0": 12,
                  "conv_batch_norm": bn, "conv_activation": act, "conv_dropout": 0.0,
                  "head_layers": 1, "head_units": 32,
                  "head_activation": act if head_act is None else head_act,
                  "head_batch_norm": bn if head_bn is None else head_bn, "head_dropout": 0.1}
    else:
        hypermodel = DenseHyperModel(dataset.input_shape, dataset.num_classes)
        values = {"dense_layers": 2, "dense_units": 32, "dense_activation": act,
                  "dense_batch_norm": bn, "dense_dropout": 0.1}
    for name, value in values.items():
        hp.Fixed(name, value)
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hp)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=16, verbose=0)
    return model
