"""QAT exports correct int8 models for every layer and activation our HyperModels build.

Each case builds a model with the shipped `ConvNetHyperModel` / `DenseHyperModel`
(hyperparameters fixed with ``hp.Fixed``, which also lets gelu, sigmoid and tanh
through: the HyperModels do not sample them, the layers are the same), trains it
briefly on digits, runs a QAT stage through `CompressionPlan.run_step`, and checks
the exported int8 ``.tflite`` independently: run under LiteRT's interpreter here,
it agrees with the Keras QAT model on >= 99 % of the validation and test samples'
top-1 classes and its accuracy is within 0.5 point of the Keras model's.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_autoopt import load_dataset
from keras_autoopt.compress import ClusteringStep, CompressionPlan, PruningStep, QATStep
from keras_autoopt.search._fixed import fixed_model

ACTS = ("relu", "relu6", "swish", "elu", "gelu", "sigmoid", "tanh")
MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.005


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _build(digits, kind: str, act: str, head_act: str, bn: bool, head_bn: bool):
    """A model from a shipped HyperModel with fixed hyperparameters, trained briefly."""
    return fixed_model(digits, kind, act, bn, head_act=head_act, head_bn=head_bn)


def _litert(path, x: np.ndarray) -> np.ndarray:
    """Outputs of the .tflite on ``x``, computed here with LiteRT's interpreter."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    rows = []
    for sample in x:
        q = np.clip(np.round(sample / in_scale + in_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[np.newaxis])
        interpreter.invoke()
        rows.append((interpreter.get_tensor(out["index"])[0].astype("float32") - out_zero)
                    * out_scale)
    return np.stack(rows)


def _check_export(stage, digits) -> dict:
    # Validation and test splits: 540 samples, so that 1 % is more than a handful.
    x = np.concatenate([digits.x_val, digits.x_test])
    y = np.concatenate([digits.y_val, digits.y_test])
    keras_top1 = np.argmax(stage.model.predict(x, verbose=0), axis=1)
    tflite_top1 = np.argmax(_litert(stage.path, x), axis=1)
    figures = {
        "agreement": float(np.mean(keras_top1 == tflite_top1)),
        "keras_accuracy": float(np.mean(keras_top1 == y)),
        "tflite_accuracy": float(np.mean(tflite_top1 == y)),
    }
    assert figures["agreement"] >= MIN_AGREEMENT, figures
    assert figures["tflite_accuracy"] >= figures["keras_accuracy"] - MAX_ACCURACY_DROP - 1e-9, \
        figures
    return figures


def _plan():
    return CompressionPlan([], export_mode="float32", batch_size=32, learning_rate=1e-3)


# (conv activation, conv batch norm, head activation, head batch norm): every
# activation once in the conv block and once in the head, with and without batch
# norm, and every combination of the two batch-norm hyperparameters.
CONVNETS = [
    ("relu", True, "elu", True),
    ("relu6", True, "swish", False),
    ("swish", False, "sigmoid", True),
    ("elu", False, "tanh", False),
    ("gelu", True, "relu", False),
    ("sigmoid", False, "gelu", True),
    ("tanh", True, "relu6", True),
]


@pytest.mark.parametrize(("act", "bn", "head_act", "head_bn"), CONVNETS,
                         ids=[f"{a}{'+bn' if b else ''}-{c}{'+bn' if d else ''}"
                              for a, b, c, d in CONVNETS])
def test_default_scheme_on_convnets(digits, tmp_path, act, bn, head_act, head_bn):
    model = _build(digits, "convnet", act, head_act, bn, head_bn)
    step = QATStep("default", epochs=2, learning_rate=3e-4)
    stage = _plan().run_step(model, step, digits, tmp_path, name="qat")
    _check_export(stage, digits)
    assert step.left_float == {}
    folded = {"conv_bn_0": "conv_0"} if bn else {}
    assert step.folded == {**folded, **({"head_bn_0": "head_0"} if head_bn else {})}


# The Dense + batch norm cases the ConvNet heads above leave out.
@pytest.mark.parametrize("act", ["relu6", "swish", "tanh"])
def test_default_scheme_on_dense_models_with_batch_norm(digits, tmp_path, act):
    model = _build(digits, "dense", act, act, True, True)
    step = QATStep("default", epochs=2, learning_rate=3e-4)
    _check_export(_plan().run_step(model, step, digits, tmp_path, name="qat"), digits)
    assert step.left_float == {}
    assert step.folded == {"dense_bn_0": "dense_0", "dense_bn_1": "dense_1"}


def _tflite_kernel(path, size: int) -> np.ndarray:
    """The int8 constant of ``size`` elements in the .tflite (a kernel)."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    for detail in interpreter.get_tensor_details():
        if int(np.prod(detail["shape"])) == size and detail["dtype"] == np.int8 \
                and len(detail["shape"]) >= 2:
            try:
                return np.asarray(interpreter.get_tensor(detail["index"]))
            except ValueError:
                continue
    raise AssertionError(f"no int8 constant of {size} elements")


@pytest.fixture(scope="module")
def bn_convnet(digits):
    """The demo's kind of model: batch norm in the conv block and in the head, swish / elu."""
    return _build(digits, "convnet", "swish", "elu", True, True)


@pytest.fixture(scope="module")
def pruned(bn_convnet, digits, tmp_path_factory):
    return _plan().run_step(bn_convnet, PruningStep(0.6, epochs=2), digits,
                            tmp_path_factory.mktemp("prune")).model


def _clustered(model, digits, folder, preserve_sparsity):
    step = ClusteringStep(8, epochs=2, learning_rate=3e-4, preserve_sparsity=preserve_sparsity)
    return _plan().run_step(model, step, digits, folder).model


@pytest.fixture(scope="module")
def pruned_clustered(pruned, digits, tmp_path_factory):
    return _clustered(pruned, digits, tmp_path_factory.mktemp("cluster"), True)


@pytest.mark.parametrize(("scheme", "earlier"), [
    ("pqat", ["prune"]), ("cqat", ["cluster"]), ("pcqat", ["prune", "cluster"]),
    ("auto", ["prune", "cluster"]),  # resolves to pcqat
])
def test_each_scheme_on_a_batch_norm_convnet(digits, tmp_path, bn_convnet, pruned, scheme,
                                             earlier, request):
    if earlier == ["prune", "cluster"]:
        current = request.getfixturevalue("pruned_clustered")
    elif earlier == ["cluster"]:
        current = _clustered(bn_convnet, digits, tmp_path, preserve_sparsity=False)
    else:
        current = pruned
    step = QATStep(scheme, epochs=2, learning_rate=1e-4)
    stage = _plan().run_step(current, step, digits, tmp_path, name="qat", earlier_kinds=earlier)
    _check_export(stage, digits)
    head = _tflite_kernel(stage.path, 192 * 32)  # the Dense head, int8 per tensor
    if "prune" in earlier:
        assert np.mean(head == 0) >= 0.59  # the zeros survived folding and QAT
    if "cluster" in earlier:
        # Folded before clustering: the clusters are shared by every output channel.
        assert np.unique(head).size <= 8 + 1
