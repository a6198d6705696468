"""What compression did to a model: per-layer sparsity and distinct kernel values."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_autoopt._backend import keras


def _kernel_values(layer: keras.layers.Layer) -> np.ndarray | None:
    """The effective kernel of a layer as NumPy, looking through TF-MOT wrappers.

    Pruning wrappers: kernel x mask. Clustering wrappers: each weight's
    centroid (per-channel centroids are not supported here and read as the
    original weights). QAT wrappers and plain layers: the kernel variable.
    """
    pruning_vars = getattr(layer, "pruning_vars", None)
    if pruning_vars:
        weight, mask, _ = pruning_vars[0]
        return np.asarray(weight.numpy()) * np.asarray(mask.numpy())
    centroids = getattr(layer, "cluster_centroids", None)
    if centroids and "kernel" in centroids and "kernel" in layer.pulling_indices:
        c = np.asarray(centroids["kernel"].numpy())
        indices = np.asarray(layer.pulling_indices["kernel"].numpy())
        if c.ndim == 1:
            return c[indices]
    for weight in layer.weights:
        short = weight.name.split("/")[-1].split(":")[0]
        if short in ("kernel", "depthwise_kernel"):
            return np.asarray(weight.numpy())
    return None


def kernel_stats(model: keras.Model) -> dict[str, dict[str, Any]]:
    """Per-layer kernel statistics of a (stripped or wrapped) model.

    Args:
        model: A tf_keras model.

    Returns:
        ``{layer_name: {"size": n, "zeros": z, "sparsity": z / n,
        "unique_weights": distinct values}}`` for every layer with a kernel.
    """
    stats = {}
    for layer in model.layers:
        values = _kernel_values(layer)
        if values is None:
            continue
        zeros = int(np.count_nonzero(values == 0))
        stats[getattr(getattr(layer, "layer", layer), "name", layer.name)] = {
            "size": int(values.size),
            "zeros": zeros,
            "sparsity": zeros / values.size if values.size else 0.0,
            "unique_weights": int(np.unique(values).size),
        }
    return stats


def overall_sparsity(stats: dict[str, dict[str, Any]]) -> float:
    """Fraction of zero weights over every kernel of `kernel_stats`.

    Args:
        stats: The output of `kernel_stats`.

    Returns:
        The fraction (0 for a model without kernels).
    """
    size = sum(entry["size"] for entry in stats.values())
    return sum(entry["zeros"] for entry in stats.values()) / size if size else 0.0
