"""Per-layer sensitivity to magnitude pruning, and the sparsity each layer can afford."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_autoopt._backend import keras
from keras_autoopt._rules import check_sparsities
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._stats import kernel_stats
from keras_autoopt.compress._steps import clone_with_weights


def _check_sparsities(value: Any) -> tuple[float, ...]:
    return tuple(sorted(check_sparsities("sparsities", value, allow_zero=False)))


def _val_accuracy(model: keras.Model, dataset) -> float:
    return float(model.evaluate(dataset.x_val, dataset.y_val, verbose=0, batch_size=256,
                                return_dict=True)["accuracy"])


def layer_sensitivity(model: keras.Model, dataset, *, sparsities: Sequence[float],
                      epochs: int = 1, batch_size: int = 32, learning_rate: float = 3e-4,
                      ) -> tuple[float, dict[str, dict[float, float]]]:
    """Prune each kernel layer alone at each sparsity and measure the validation drop.

    Args:
        model: The trained float model (not modified).
        dataset: A ``keras_autoopt.data.Dataset``.
        sparsities: Candidate sparsities.
        epochs: Fine-tuning epochs after pruning one layer.
        batch_size: Fine-tuning batch size.
        learning_rate: Fine-tuning learning rate.

    Returns:
        ``(baseline validation accuracy, {layer: {sparsity: drop}})`` where a
        drop is baseline minus pruned accuracy (negative: it improved).
    """
    sparsities = _check_sparsities(sparsities)
    base = clone_with_weights(model)
    base.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                 ["accuracy"])
    baseline = _val_accuracy(base, dataset)
    layers = list(kernel_stats(base))
    result: dict[str, dict[float, float]] = {}
    for name in layers:
        result[name] = {}
        for sparsity in sparsities:
            step = PruningStep(sparsity, schedule="constant", frequency=1, epochs=epochs,
                               skip_layers=[n for n in layers if n != name])
            wrapped = step.apply(base)
            wrapped.compile(keras.optimizers.Adam(learning_rate),
                            "sparse_categorical_crossentropy", ["accuracy"])
            wrapped.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch_size,
                        verbose=0, callbacks=step.callbacks())
            stripped = step.strip(wrapped)
            stripped.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
            result[name][sparsity] = baseline - _val_accuracy(stripped, dataset)
    return baseline, result


def allocate(sensitivity: dict[str, dict[float, float]], budget: float,
             sizes: dict[str, int] | None = None, resolution: float = 0.0) -> dict[str, float]:
    """Give each layer the highest sparsity whose solo drop is within its share of ``budget``.

    With ``sizes``, a layer's share is proportional to its number of weights:
    accuracy is spent where the bytes are, and a small layer (a first conv of a
    few hundred weights) gets only the sparsities that cost nothing.

    Args:
        sensitivity: The output of `layer_sensitivity`.
        budget: Validation drop the layers share.
        sizes: ``{layer: number of kernel weights}``; None gives every layer
            the whole budget.
        resolution: Smallest share a layer gets: the accuracy of one
            validation sample (``1 / n_val``), below which a measured drop
            is noise.

    Returns:
        ``{layer: sparsity}``; 0 for a layer that no candidate fits.
    """
    total = sum(sizes.values()) if sizes else 0
    allocation = {}
    for name, drops in sensitivity.items():
        share = budget * sizes[name] / total if sizes and total else budget
        share = max(share, min(resolution, budget))
        fitting = [s for s, drop in drops.items() if drop <= share + 1e-9]
        allocation[name] = max(fitting) if fitting else 0.0
    return allocation


def _back_off(allocation: dict[str, float], sparsities: tuple[float, ...]) -> dict[str, float]:
    lower = {}
    for name, value in allocation.items():
        below = [s for s in sparsities if s < value]
        lower[name] = max(below) if below else 0.0
    return lower
