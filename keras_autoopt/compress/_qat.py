"""`QATStep`: quantization-aware training, plain or collaborative (PQAT, CQAT, PCQAT).

Before TF-MOT annotates the model, `fold_for_qat` rewrites it so that every
layer our HyperModels build exports to a correct int8 model: batch norms after
a linear Conv2D / DepthwiseConv2D / Dense are folded into its kernel and bias,
fused activations TF-MOT cannot quantize become ``Activation`` layers, and
layers TF-MOT's 8-bit registry has no config for get one of ours
(`OutputQuantizeConfig`: ``elu`` and standalone batch norms quantized at their
output, ``sigmoid`` / ``tanh`` at the fixed ranges of the TFLite int8 kernels).
What still cannot be quantized stays float and is listed in
``QATStep.left_float``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from keras_autoopt._backend import default_8bit_quantize_registry, keras, tfmot
from keras_autoopt.compress._fold import custom_objects, fold_for_qat
from keras_autoopt.compress._steps import QAT_SCHEMES, CompressionStep, UnsupportedLayerError

_REGISTRY = default_8bit_quantize_registry.Default8BitQuantizeRegistry()

#: Activations TF-MOT's 8-bit registry quantizes in an ``Activation`` layer.
TFMOT_ACTIVATIONS = ("linear", "relu", "relu6", "swish", "silu", "gelu", "softmax")

#: Output ranges of TFLite's int8 kernels for bounded activations (LOGISTIC:
#: scale 1/256, zero point -128; TANH: scale 1/128, zero point 0). Measured on
#: digits ConvNets: these exact ranges leave a 3-10x smaller largest output
#: difference than TF-MOT's unquantized output or [0, 1] / [-1, 1] (which
#: also costs a requantize op per activation).
FIXED_RANGE_ACTIVATIONS = {"sigmoid": (0.0, 255 / 256), "tanh": (-1.0, 127 / 128)}

#: Activations with an int8 TFLite kernel whose output we quantize with a
#: moving-average range (TF-MOT's registry has no config for them).
OUTPUT_QUANTIZED_ACTIVATIONS = ("elu",)

#: Every activation of an ``Activation`` layer that `QATStep` quantizes.
QUANTIZABLE_ACTIVATIONS = (*TFMOT_ACTIVATIONS, *FIXED_RANGE_ACTIVATIONS,
                           *OUTPUT_QUANTIZED_ACTIVATIONS)


@keras.saving.register_keras_serializable(package="keras_autoopt")
class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Quantize a layer's output only (8 bits), its weights staying float.

    For ``Activation`` layers whose activation TF-MOT's 8-bit registry lacks
    and for batch norms that could not be folded: TFLite's int8 kernels
    (ELU, LOGISTIC, TANH, MUL/ADD) need only the output range.

    Args:
        low: Lower end of a fixed range; None learns the range (moving
            average of the batch minima and maxima).
        high: Upper end of a fixed range; None with ``low``.

    Raises:
        ValueError: If only one of ``low`` and ``high`` is given, or
            ``low >= high``.
    """

    def __init__(self, low: float | None = None, high: float | None = None):
        if (low is None) != (high is None) or (low is not None and not low < high):
            raise ValueError(
                f"Received: low={low!r}, high={high!r}; expected both None (a learned "
                "range) or two numbers with low < high (a fixed range).")
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        """No weight is quantized."""
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        """No fused activation is quantized."""
        return []

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        """Nothing to set."""

    def set_quantize_activations(self, layer: keras.layers.Layer,
                                 quantize_activations: list) -> None:
        """Nothing to set."""

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        """One 8-bit quantizer of the output, fixed or learned."""
        quantizers = tfmot.quantization.keras.quantizers
        if self.low is not None:
            return [quantizers.FixedQuantizer(num_bits=8, init_min=self.low,
                                              init_max=self.high, narrow_range=False)]
        return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False,
                                                  symmetric=False, narrow_range=False)]

    def get_config(self) -> dict[str, Any]:
        """The range (None for a learned one)."""
        return {"low": self.low, "high": self.high}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputQuantizeConfig) and other.get_config() == \
            self.get_config()


@keras.saving.register_keras_serializable(package="keras_autoopt")
class FloatQuantizeConfig(OutputQuantizeConfig):
    """Quantize nothing: the layer stays float inside the QAT model.

    Given to weightless layers left float: unannotated, TF-MOT would add an
    output quantizer from its registry when the next layer is quantized, and
    fail for an activation its registry lacks.
    """

    def __init__(self):
        super().__init__()

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        """No quantizer."""
        return []

    def get_config(self) -> dict[str, Any]:
        """Nothing to configure."""
        return {}


def _activation_name(layer: keras.layers.Layer) -> str | None:
    value = keras.activations.serialize(layer.activation)
    return value if isinstance(value, str) else None


def _shown_activation(layer: keras.layers.Layer) -> str:
    function = layer.activation
    return _activation_name(layer) or getattr(function, "__name__", type(function).__name__)


def quantize_config_for(layer: keras.layers.Layer) -> tuple[bool, Any, str | None]:
    """How `QATStep` quantizes one layer.

    Args:
        layer: A layer of a model prepared by `fold_for_qat`.

    Returns:
        ``(quantized, config, reason)``: ``quantized`` False means the layer
        stays float (``reason`` says why); ``config`` None means TF-MOT's
        registry decides.
    """
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(layer)
        if name in FIXED_RANGE_ACTIVATIONS:
            return True, OutputQuantizeConfig(*FIXED_RANGE_ACTIVATIONS[name]), None
        if name in OUTPUT_QUANTIZED_ACTIVATIONS:
            return True, OutputQuantizeConfig(), None
        if name in TFMOT_ACTIVATIONS:
            return True, None, None
        return False, None, (f"activation {_shown_activation(layer)!r} has no "
                             f"8-bit quantization (supported: {list(QUANTIZABLE_ACTIVATIONS)})")
    if isinstance(layer, keras.layers.BatchNormalization):
        return True, OutputQuantizeConfig(), None
    if _REGISTRY.supports(layer):
        activation = getattr(layer, "activation", None)
        if activation is not None and _activation_name(layer) not in (
                *TFMOT_ACTIVATIONS, "sigmoid", "tanh"):
            return False, None, (f"fused activation {_shown_activation(layer)!r} is not "
                                 "supported by TF-MOT inside the layer")
        return True, None, None
    return False, None, f"TF-MOT's 8-bit scheme cannot quantize {type(layer).__name__}"


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
    The model is first rewritten by `fold_for_qat` (batch norms folded into
    the preceding Conv / Dense, unsupported fused activations split out);
    the QAT model is exported as it is: the TFLite converter turns its fake
    quantization into int8 kernels.

    After `apply`: ``folded``, ``fused`` and ``split`` say what the rewrite
    did (see `FoldResult`);
    ``left_float`` maps each layer left unquantized to the reason (the
    converter calibrates it from the representative data); ``skipped`` lists
    the layers with weights left float because of ``skip_unsupported``.

    Args:
        scheme: One of `QAT_SCHEMES`.
        epochs: Fine-tuning epochs of the stage.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Layers left in float (and not rewritten).
        skip_unsupported: Leave layers with weights that cannot be quantized
            in float instead of raising.
        fold_batch_norm: Fold batch norms before annotating. False keeps
            TF-MOT's own handling, for comparison: measured equal after a
            Conv2D, wrong after a Dense (11 % top-1 agreement of the int8
            export on a digits ConvNet; tensorflow/model-optimization#377).

    Raises:
        ValueError: For an unknown scheme.
    """

    kind: ClassVar[str] = "qat"

    def __init__(self, scheme: str = "auto", *, epochs: int = 2,
                 learning_rate: float | None = None, skip_layers: Sequence[str] = (),
                 skip_unsupported: bool = False, fold_batch_norm: bool = True):
        super().__init__(epochs=epochs, learning_rate=learning_rate, skip_layers=skip_layers,
                         skip_unsupported=skip_unsupported)
        if scheme not in QAT_SCHEMES:
            raise ValueError(f"Received: scheme={scheme!r}; expected one of {QAT_SCHEMES}.")
        if not isinstance(fold_batch_norm, bool):
            raise ValueError(
                f"Received: fold_batch_norm={fold_batch_norm!r}; expected True or False.")
        self.scheme = scheme
        self.fold_batch_norm = fold_batch_norm
        self.folded: dict[str, str] = {}
        self.fused: dict[str, str] = {}
        self.split: dict[str, str] = {}
        self.left_float: dict[str, str] = {}
        self._tfmot_handles: set[str] = set()

    def selects(self, layer: keras.layers.Layer) -> bool:
        """Every layer but the skipped ones and the input (weights or not)."""
        return layer.name not in self.skip_layers and not isinstance(
            layer, keras.layers.InputLayer)

    def supports(self, layer: keras.layers.Layer) -> bool:
        """Whether ``layer`` (of a model prepared by `fold_for_qat`) can be quantized."""
        return quantize_config_for(layer)[0]

    def wrap(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Annotate ``layer`` for quantization (with our config where TF-MOT has none)."""
        if layer.name in self._tfmot_handles:
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        _, config, _ = quantize_config_for(layer)
        return tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=config)

    def apply(self, model: keras.Model, *, earlier_kinds: Sequence[str] = ()) -> keras.Model:
        """Rewrite, annotate the selected layers and apply the (resolved) scheme.

        Args:
            model: A stripped Sequential or functional tf_keras model.
            earlier_kinds: Kinds of steps run before (for ``scheme="auto"``).

        Returns:
            The quantization-aware model (not compiled).

        Raises:
            UnsupportedLayerError: For a layer with weights that cannot be
                quantized, unless ``skip_unsupported``.
        """
        self._check_layer_names(model)
        prepared = fold_for_qat(model, skip_layers=self.skip_layers,
                                fold=self.fold_batch_norm)
        self.folded, self.fused, self.split = prepared.folded, prepared.fused, prepared.split
        # Unfolded, the batch norms after a Conv / Dense are TF-MOT's to handle (its
        # layout transforms give them a config, and skip any layer that has one).
        tfmot_handles = set() if self.fold_batch_norm else set(fold_for_qat(
            prepared.model, skip_layers=self.skip_layers, fuse_relu=False, split=False).folded)
        self._tfmot_handles = tfmot_handles
        self.skipped, self.left_float = [], {}
        for layer in prepared.model.layers:
            if isinstance(layer, keras.layers.InputLayer) or layer.name in tfmot_handles:
                continue
            if layer.name in self.skip_layers:
                self.left_float[layer.name] = "in skip_layers"
                continue
            quantized, _, reason = quantize_config_for(layer)
            if quantized:
                continue
            if layer.weights and not self.skip_unsupported:
                raise UnsupportedLayerError(
                    f"Layer '{layer.name}' ({type(layer).__name__}) cannot be wrapped by "
                    f"QATStep: {reason}. Pass skip_layers=['{layer.name}'] or "
                    "skip_unsupported=True to quantize the rest of the model."
                )
            if layer.weights:
                self.skipped.append(layer.name)
            self.left_float[layer.name] = reason

        def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
            if isinstance(layer, keras.layers.InputLayer):
                return layer
            if layer.name not in self.left_float:
                return self.wrap(layer)
            if not layer.weights:
                return tfmot.quantization.keras.quantize_annotate_layer(
                    layer, quantize_config=FloatQuantizeConfig())
            return layer

        scope = {**custom_objects(prepared.model), "OutputQuantizeConfig": OutputQuantizeConfig,
                 "FloatQuantizeConfig": FloatQuantizeConfig}
        with keras.utils.custom_object_scope(scope):
            annotated = keras.models.clone_model(prepared.model, clone_function=annotate)
        annotated.set_weights(prepared.model.get_weights())
        scheme = resolve_scheme(self.scheme, earlier_kinds)
        combine = tfmot.experimental.combine
        with tfmot.quantization.keras.quantize_scope(scope):
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
        return {"scheme": self.scheme, "fold_batch_norm": self.fold_batch_norm,
                **self.base_config()}
