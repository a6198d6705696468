"""`ClusteringStep`: TF-MOT weight clustering, sparsity-preserving after pruning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from keras_autoopt._backend import clustering_registry, keras, tfmot
from keras_autoopt._checks import check_positive_int
from keras_autoopt.compress._steps import CENTROID_INITS, CompressionStep, _check_layer_map


def _check_clusters(name: str, value: Any) -> int:
    check_positive_int(name, value)
    if value < 2:
        raise ValueError(f"Received: {name}={value!r}; expected an integer >= 2.")
    return int(value)


class ClusteringStep(CompressionStep):
    """Weight clustering (``tfmot.clustering.keras.cluster_weights``).

    Args:
        n_clusters: Distinct values per kernel after clustering (>= 2).
        init: Centroid initialization, one of `CENTROID_INITS`.
        preserve_sparsity: Keep pruned zeros at zero (use after pruning).
        layer_clusters: Per-layer cluster counts overriding ``n_clusters``.
        epochs: Fine-tuning epochs of the stage.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Layers never clustered.
        skip_unsupported: Leave layers TF-MOT cannot cluster as they are
            instead of raising.

    Raises:
        ValueError: For any argument outside its documented range.
    """

    kind: ClassVar[str] = "cluster"
    per_layer_attr: ClassVar[str] = "layer_clusters"

    def __init__(
        self,
        n_clusters: int = 16,
        *,
        init: str = "kmeans_plus_plus",
        preserve_sparsity: bool = True,
        layer_clusters: Mapping[str, int] | None = None,
        epochs: int = 2,
        learning_rate: float | None = None,
        skip_layers: Sequence[str] = (),
        skip_unsupported: bool = False,
    ):
        super().__init__(epochs=epochs, learning_rate=learning_rate, skip_layers=skip_layers,
                         skip_unsupported=skip_unsupported)
        self.n_clusters = _check_clusters("n_clusters", n_clusters)
        if init not in CENTROID_INITS:
            raise ValueError(f"Received: init={init!r}; expected one of {CENTROID_INITS}.")
        self.init = init
        self.preserve_sparsity = bool(preserve_sparsity)
        self.layer_clusters = _check_layer_map("layer_clusters", layer_clusters,
                                               _check_clusters, "cluster counts")

    def clusters_of(self, layer_name: str) -> int:
        """The cluster count of one layer."""
        return self.layer_clusters.get(layer_name, self.n_clusters)

    def supports(self, layer: keras.layers.Layer) -> bool:
        """Whether TF-MOT can cluster ``layer``."""
        return isinstance(layer, tfmot.clustering.keras.ClusterableLayer) or (
            clustering_registry.ClusteringRegistry.supports(layer)
        )

    def feasible_clusters(self, layer: keras.layers.Layer) -> int:
        """The cluster count TF-MOT can initialize for ``layer``'s kernel.

        TF-MOT's centroid initialization samples each centroid from the
        weights (k-means++ fails with "num_to_sample <= points.rows()"
        otherwise): with ``preserve_sparsity`` the zero centroid plus at most
        one centroid per non-zero weight, else one per weight. A heavily
        pruned layer therefore gets fewer clusters than asked (recorded in
        ``clamped``); it has no more distinct values than that anyway.

        Returns:
            ``min(clusters_of(layer), what the kernel supports)``.
        """
        wanted = self.clusters_of(layer.name)
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            return wanted
        values = kernel.numpy()
        limit = int(np.count_nonzero(values)) + 1 if self.preserve_sparsity else values.size
        return min(wanted, limit)

    def wrap(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Wrap ``layer`` in ``ClusterWeights``.

        A layer with fewer feasible clusters than TF-MOT accepts (3 with
        ``preserve_sparsity``, whose zero centroid is fixed; 2 otherwise) is
        left as it is, recorded in ``clamped``.
        """
        clusters = self.feasible_clusters(layer)
        if clusters < self.clusters_of(layer.name):
            self.clamped[layer.name] = clusters
        if clusters < (3 if self.preserve_sparsity else 2):
            self.clamped[layer.name] = clusters
            return layer
        init = getattr(tfmot.clustering.keras.CentroidInitialization, self.init.upper())
        return tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=clusters,
            cluster_centroids_init=init, preserve_sparsity=self.preserve_sparsity,
        )

    def apply(self, model: keras.Model) -> keras.Model:
        """`CompressionStep.apply`; ``clamped`` lists layers given fewer clusters."""
        self.clamped: dict[str, int] = {}
        return super().apply(model)

    def strip(self, model: keras.Model) -> keras.Model:
        """Remove the clustering wrappers (kernels keep their clustered values)."""
        return tfmot.clustering.keras.strip_clustering(model)

    def target(self) -> dict[str, Any]:
        """The promised maximum of distinct values per kernel."""
        return {"n_clusters": self.n_clusters, "layer_clusters": dict(self.layer_clusters)}

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values."""
        return {
            "n_clusters": self.n_clusters,
            "init": self.init,
            "preserve_sparsity": self.preserve_sparsity,
            "layer_clusters": dict(self.layer_clusters),
            **self.base_config(),
        }
