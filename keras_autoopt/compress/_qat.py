"""`QATStep`: quantization-aware training, plain or collaborative (PQAT, CQAT, PCQAT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from keras_autoopt._backend import default_8bit_quantize_registry, keras, tfmot
from keras_autoopt.compress._steps import QAT_SCHEMES, CompressionStep

_REGISTRY = default_8bit_quantize_registry.Default8BitQuantizeRegistry()


def resolve_scheme(scheme: str, earlier_kinds: Sequence[str]) -> str:
    """Pick the QAT scheme that preserves what earlier steps did.

    Args:
        scheme: ``"auto"`` or a scheme name.
        earlier_kinds: Kinds of the steps run before (``"prune"``, ``"cluster"``).

    Returns:
        ``"default"``, ``"pqat"``, ``"cqat"`` or ``"pcqat"``.
    """
    if scheme != "auto":
        return scheme
    pruned, clustered = "prune" in earlier_kinds, "cluster" in earlier_kinds
    if pruned and clustered:
        return "pcqat"
    if clustered:
        return "cqat"
    if pruned:
        return "pqat"
    return "default"


class QATStep(CompressionStep):
    """Quantization-aware training with TF-MOT's 8-bit schemes.

    ``default`` is ``quantize_apply`` with the default 8-bit scheme; ``pqat``
    preserves pruning zeros, ``cqat`` preserves clusters, ``pcqat`` both;
    ``auto`` picks from the steps run before it in a `CompressionPlan`.
    The QAT model is exported as it is: the TFLite converter turns its fake
    quantization into int8 kernels.

    Args:
        scheme: One of `QAT_SCHEMES`.
        epochs: Fine-tuning epochs of the stage.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Layers left in float.
        skip_unsupported: Leave layers TF-MOT cannot quantize in float
            instead of raising.

    Raises:
        ValueError: For an unknown scheme.
    """

    kind: ClassVar[str] = "qat"

    def __init__(self, scheme: str = "auto", *, epochs: int = 2,
                 learning_rate: float | None = None, skip_layers: Sequence[str] = (),
                 skip_unsupported: bool = False):
        super().__init__(epochs=epochs, learning_rate=learning_rate, skip_layers=skip_layers,
                         skip_unsupported=skip_unsupported)
        if scheme not in QAT_SCHEMES:
            raise ValueError(f"Received: scheme={scheme!r}; expected one of {QAT_SCHEMES}.")
        self.scheme = scheme

    def selects(self, layer: keras.layers.Layer) -> bool:
        """Every layer but the skipped ones and the input (weights or not)."""
        return layer.name not in self.skip_layers and not isinstance(
            layer, keras.layers.InputLayer)

    def supports(self, layer: keras.layers.Layer) -> bool:
        """Whether TF-MOT's 8-bit scheme can quantize ``layer``.

        Batch normalization is not in the registry but is folded into the
        preceding Conv / Dense by the scheme's layout transforms.
        """
        return _REGISTRY.supports(layer) or isinstance(layer, keras.layers.BatchNormalization)

    def wrap(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Annotate ``layer`` for quantization."""
        return tfmot.quantization.keras.quantize_annotate_layer(layer)

    def apply(self, model: keras.Model, *, earlier_kinds: Sequence[str] = ()) -> keras.Model:
        """Annotate the selected layers and apply the (resolved) scheme.

        Args:
            model: A stripped Sequential or functional tf_keras model.
            earlier_kinds: Kinds of steps run before (for ``scheme="auto"``).

        Returns:
            The quantization-aware model (not compiled).
        """
        annotated = super().apply(model)
        scheme = resolve_scheme(self.scheme, earlier_kinds)
        combine = tfmot.experimental.combine
        with tfmot.quantization.keras.quantize_scope():
            if scheme == "default":
                return tfmot.quantization.keras.quantize_apply(annotated)
            if scheme == "pqat":
                return tfmot.quantization.keras.quantize_apply(
                    annotated, combine.Default8BitPrunePreserveQuantizeScheme())
            return tfmot.quantization.keras.quantize_apply(
                annotated,
                combine.Default8BitClusterPreserveQuantizeScheme(
                    preserve_sparsity=scheme == "pcqat"),
            )

    def strip(self, model: keras.Model) -> keras.Model:
        """QAT models are exported with their quantizers: nothing to strip."""
        return model

    def target(self) -> dict[str, Any]:
        """The scheme."""
        return {"scheme": self.scheme}

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values."""
        return {"scheme": self.scheme, **self.base_config()}
