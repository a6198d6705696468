"""TFLite's sparse-tensor encoding of pruned weights: when to try it, and when to keep it.

What LiteRT does with ``Optimize.EXPERIMENTAL_SPARSITY`` files (measured with
TF 2.21 and ai-edge-litert, whose interpreter applies its XNNPACK delegate by
default, as `TFLiteRunner` does; ``benchmarks/sparse_export.py``):

- The converter encodes a weight tensor only when at least 30 % of it is
  zeros (`SPARSE_MIN_ZEROS`, the converter's own threshold).
- Unstructured sparsity (what TF-MOT's magnitude pruning gives) is stored
  compressed and decoded when the model is loaded: the converter puts a
  ``DENSIFY`` operator before every sparse ``CONV_2D`` / ``FULLY_CONNECTED``
  weight. The file shrinks (the reference CNN pruned to 90 %: 0.17x in
  float32, 0.23x in float16; to 50 %: 0.75x and 0.98x); the latency is the
  dense file's (within 2 %), and the memory is not saved: loading a 90 %
  sparse 1024-2048-2048-10 MLP in float32 (25.2 MB dense, 3.8 MB sparse)
  raised the peak RSS by 59 MB against 53 MB for the dense file (35 vs
  27 MB without the delegate): the dense weights are rebuilt in memory.
- ``FULLY_CONNECTED`` weights pruned in 1x4 blocks (four consecutive inputs
  of one unit, i.e. TF-MOT's ``block_size=(4, 1)`` on a Keras Dense kernel)
  keep their sparse format and run LiteRT's own sparse kernels: 4x faster
  than XNNPACK's dense kernel in float32 on a 256-512-512-10 MLP (the
  reference CNN with its Dense layers so pruned: 0.13x the file, 0.83x the
  latency), but 1.5x slower in int8, and wrong in float16 (NaN outputs).
- ``float32``: the sparse files load and compute the dense file's outputs
  (exactly when densified, within 1e-7 with sparse kernels).
- ``float16``: densified weights work; the sparse kernels give NaN, which
  the output comparison of ``"auto"`` (and the finite check of
  ``sparse=True``) catches.
- ``int8``: a ``DENSIFY`` of an int8 weight makes XNNPACK fail the whole
  model at load ("failed to delegate FULLY_CONNECTED node"), so a model
  with a pruned convolution never loads (every TF-MOT pruned CNN of the
  benchmark failed, 50 % to 90 %); only MLPs pruned in 1x4 blocks do, and
  run 1.5x slower than dense. ``"auto"`` does not try int8 (it would cost
  one more int8 conversion, 1 s for the reference CNN, for nothing);
  ``sparse=True`` does.
- ``dynamic`` (hybrid): never loads under XNNPACK, whatever the sparsity
  pattern, so it is not tried (`SPARSE_UNSUPPORTED_MODES`). Without the
  delegate (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) every mode loads and is
  densified, at the dense file's speed.

TensorFlow Lite Micro and Arm Vela have no sparse tensors at all.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as _schema

from keras_autoopt._backend import keras, tfmot
from keras_autoopt.measure import TFLiteRunner

SPARSE_VALUES = (False, True, "auto")
"""The values of `export_tflite`'s ``sparse``."""

SPARSE_MIN_ZEROS = 0.3
"""Share of zeros from which the converter stores a weight tensor sparse (its own threshold)."""

SPARSE_UNSUPPORTED_MODES = {
    "dynamic": "a dynamic-range (hybrid) model with sparse weights does not load under "
               "LiteRT's XNNPACK delegate",
}
"""Export modes refused with ``sparse=True`` and never tried by ``"auto"``, and why."""

_AUTO_SKIPS = {
    **SPARSE_UNSUPPORTED_MODES,
    "int8": "LiteRT's XNNPACK delegate refuses int8 models whose sparse weights are densified "
            "at load, as every pruned convolution's are (sparse=True tries anyway)",
}
# Export modes that ``"auto"`` does not try, and why: int8 sparse files load only when every
# sparse weight is a fully connected kernel pruned in 1x4 blocks (TF-MOT's magnitude pruning of
# any convolution rules it out), and those run slower than XNNPACK's dense int8 kernels.

SPARSE_MIN_SPEEDUP = 0.10
"""A sparse file no smaller than the dense one is kept only if its median latency is this much
lower (10 %) in each of the 5 interleaved timing rounds. Measured on a shared 2-core machine
(load average 3.2), the reference CNN (20 us) timed against itself 200 times: the ratio of the
two medians ranged 0.94 to 1.01, the slowest round's never went below 0.995; two equivalent
files (a densified sparse file and its dense one) once gave 0.84 overall
(benchmarks/sparse_export.py): one overall median is not enough."""

SPARSE_PROBE_SAMPLES = 16
"""Samples on which ``"auto"`` compares the sparse file's outputs with the dense file's."""

SPARSE_LATENCY_RUNS = 200
"""Timed ``invoke()`` calls per file behind each median (in 5 interleaved rounds of 40)."""

_LATENCY_ROUNDS = 5
_WARMUP_RUNS = 20


def _check_sparse(sparse: object) -> bool | str:
    if sparse is True or sparse is False or (isinstance(sparse, str) and sparse == "auto"):
        return sparse
    raise ValueError(
        f"Received: sparse={sparse!r}; expected False (dense weights), True (sparse-encoded "
        "weights) or 'auto' (both converted, the sparse file kept only if smaller or faster).")


def _strip_pruning(model: keras.Model) -> keras.Model:
    """The model without TF-MOT pruning wrappers (the same model if it has none).

    A wrapped model converts to a graph that reads its weights and masks from
    variables (``VAR_HANDLE``, ``READ_VARIABLE``, ...): the masks double the
    file and no weight is sparse for the converter.
    """
    def wrapped(layer) -> bool:
        # TF-MOT's public API does not export the wrapper class; its name is stable.
        return any(cls.__name__ == "PruneLowMagnitude" for cls in type(layer).__mro__) or any(
            wrapped(inner) for inner in getattr(layer, "layers", ()))

    if not any(wrapped(layer) for layer in getattr(model, "layers", ())):
        return model
    return tfmot.sparsity.keras.strip_pruning(model)


def _max_weight_sparsity(model: keras.Model) -> float:
    """The largest share of zeros among the model's floating weight matrices / kernels."""
    best = 0.0
    for weight in model.weights:
        if len(weight.shape) < 2 or not weight.dtype.is_floating:
            continue
        values = np.asarray(weight.numpy())
        if values.size:
            best = max(best, float(np.mean(values == 0)))
    return best


def _sparse_tensor_count(data: bytes) -> int:
    """How many tensors of a ``.tflite`` flatbuffer are stored sparse."""
    model = _schema.Model.GetRootAs(data, 0)
    count = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        count += sum(graph.Tensors(t).Sparsity() is not None for t in range(graph.TensorsLength()))
    return count


def _load(data: bytes) -> TFLiteRunner | str:
    """A runner of ``data``, or why LiteRT cannot load it."""
    try:
        return TFLiteRunner(data)
    except ValueError as error:
        cause = error.__cause__ or error
        return str(cause).splitlines()[0] if str(cause) else type(cause).__name__


def _median_latencies_us(runners: list[TFLiteRunner],
                         sample: np.ndarray) -> tuple[list[float], list[list[float]]]:
    """Each runner's median single-sample ``invoke()`` time, and its median in each round.

    Rounds alternate between the files so that a change in the machine's
    load (a shared CPU) slows both alike instead of one.
    """
    for runner in runners:
        runner.set_input(sample)
        for _ in range(_WARMUP_RUNS):
            runner.invoke()
    timings: list[list[int]] = [[] for _ in runners]
    per_round = SPARSE_LATENCY_RUNS // _LATENCY_ROUNDS
    clock = time.perf_counter_ns
    for _ in range(_LATENCY_ROUNDS):
        for runner, times in zip(runners, timings, strict=True):
            invoke = runner.interpreter.invoke
            for _ in range(per_round):
                start = clock()
                invoke()
                times.append(clock() - start)
    rounds = [[statistics.median(times[i:i + per_round]) / 1000.0
               for i in range(0, len(times), per_round)] for times in timings]
    return [statistics.median(times) / 1000.0 for times in timings], rounds


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"


def _outputs(runner: TFLiteRunner, probe: np.ndarray) -> np.ndarray:
    return runner.predict(probe, batch_size=1)


def _choose(dense: bytes, sparse: bytes, probe: np.ndarray | None,
            tolerance: float) -> tuple[bool, str]:
    """Whether to keep the sparse file rather than the dense one, and why (one line).

    Rejected when LiteRT cannot load it, or when its outputs on ``probe``
    are not finite or differ from the dense file's by more than
    ``tolerance`` (the mode's export tolerance). Otherwise kept when it is
    smaller, or when its median latency under LiteRT is at least
    `SPARSE_MIN_SPEEDUP` lower in every timing round (timed on
    ``probe[:1]``), so that noise cannot pass for a speed-up. Without a ``probe``
    (a model with several inputs) only sizes count.
    """
    runner = _load(sparse)
    if isinstance(runner, str):
        return False, f"rejected: LiteRT cannot load the sparse file ({runner})"
    sizes = f"{len(sparse):,} vs {len(dense):,} bytes"
    ratio, slowest, latency = None, None, "outputs and latency not measured (several inputs)"
    if probe is not None:
        dense_runner = TFLiteRunner(dense)
        got, expected = _outputs(runner, probe), _outputs(dense_runner, probe)
        if not np.isfinite(got).all():
            return False, (f"rejected: the sparse file's outputs are NaN or infinite on "
                           f"{len(probe)} samples (the dense file's are not)")
        diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if diff > tolerance:
            return False, (f"rejected: the sparse file's outputs differ from the dense file's "
                           f"by up to {diff:.3g} on {len(probe)} samples (tolerance "
                           f"{tolerance:g})")
        (dense_us, sparse_us), (dense_rounds, sparse_rounds) = _median_latencies_us(
            [dense_runner, runner], probe[:1])
        ratio = sparse_us / dense_us if dense_us > 0 else 1.0
        slowest = max(s / d if d > 0 else 1.0 for s, d in zip(sparse_rounds, dense_rounds,
                                                              strict=True))
        latency = (f"latency {ratio:.2f}x the dense file's ({sparse_us:,.1f} vs "
                   f"{dense_us:,.1f} us, medians of {SPARSE_LATENCY_RUNS} runs each)")
    if len(sparse) < len(dense):
        return True, f"kept: {_percent(1 - len(sparse) / len(dense))} smaller ({sizes}); {latency}"
    if slowest is not None and slowest <= 1 - SPARSE_MIN_SPEEDUP:
        return True, f"kept: {_percent(1 - ratio)} faster, {latency}; not smaller ({sizes})"
    return False, (f"rejected: not smaller ({sizes}) and not {_percent(SPARSE_MIN_SPEEDUP)} "
                   f"faster in every timing round ({latency})")
