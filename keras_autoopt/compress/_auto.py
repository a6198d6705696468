"""`auto_compress`: find per-model compression settings within an accuracy budget.

Procedure (every decision on the validation split; the test split is only
measured):

1. **Sensitivity**: prune each kernel layer alone at each candidate sparsity
   (constant schedule, a short fine-tune) and record the validation accuracy
   drop.
2. **Allocation**: give each layer the highest candidate sparsity whose solo
   drop is within its share of the budget, proportional to its number of
   weights (scaled by `sensitivity_share`).
3. **Prune** all layers together to their allocations (polynomial schedule,
   fine-tuned). Over budget: every layer steps back to its next lower
   candidate and pruning is redone from the float model, up to `max_backoffs`
   times. Within budget: the largest layer is pushed one candidate higher,
   kept while the result stays within budget, up to `max_pushes` times.
4. **Cluster** (sparsity-preserving) with each cluster count in turn, fewest
   first; the first within budget is kept. Batch norms are folded into the
   preceding Conv / Dense first, so the clusters survive QAT's fold.
5. **QAT** with the collaborative scheme that preserves what came before
   (PQAT / CQAT / PCQAT), exported as int8. The model is rewritten for TF-MOT
   first (batch norms folded, unsupported activations given a quantize
   config of their own, see `QATStep`); a layer that still cannot be quantized
   stays float (a note), and a QAT stage that fails (a TF-MOT error, an int8
   export that fails verification) is skipped with a one-line note.

Every stage is exported and measured under LiteRT; the recommended stage is the
one with the fewest gzip bytes whose validation drop is within the budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras
from keras_autoopt._rules import (
    DEFAULT_CLUSTER_COUNTS,
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_SPARSITIES,
    check_cluster_counts,
    check_max_accuracy_drop,
    check_sparsities,
)
from keras_autoopt.compress._clustering import ClusteringStep
from keras_autoopt.compress._plan import CompressionPlan, Stage
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._qat import QATStep
from keras_autoopt.compress._stats import kernel_stats
from keras_autoopt.compress._steps import clone_with_weights
from keras_autoopt.export import ExportVerificationError
from keras_autoopt.report import CompressionReportPaths, environment_info, write_compression_report

#: Learning rate of the sensitivity probes, relative to the fine-tuning rate.
PROBE_LR_FACTOR = 1.0


@dataclass
class AutoCompressResult:
    """What `auto_compress` found.

    Attributes:
        stages: Every measured stage, in order (retries included, named
            ``prune_try2``, ...).
        chosen: The recommended stage (fewest gzip bytes within budget on
            validation).
        sensitivity: ``{layer: {sparsity: validation drop}}``.
        allocation: The per-layer sparsity finally used.
        baseline_val_accuracy: Validation accuracy of the input model.
        wall_time_s: Total time.
        notes: What the procedure could not do.
        report: The compression report dict (``compression.json``).
        paths: Where the report files are.
    """

    stages: list[Stage]
    chosen: Stage
    sensitivity: dict[str, dict[float, float]]
    allocation: dict[str, float]
    baseline_val_accuracy: float
    wall_time_s: float
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    paths: CompressionReportPaths | None = None


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


def auto_compress(
    model: keras.Model,
    dataset,
    output_dir: str | Path,
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    sensitivity_share: float = 1.0,
    sensitivity_epochs: int = 3,
    prune_epochs: int = 40,
    cluster_counts: Sequence[int] = DEFAULT_CLUSTER_COUNTS,
    cluster_epochs: int = 10,
    qat_epochs: int = 10,
    max_backoffs: int = 2,
    max_pushes: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    export_mode: str = "int8",
    seed: int = 0,
    stream: TextIO | None = None,
) -> AutoCompressResult:
    """Compress ``model`` as far as the accuracy budget allows, measuring every stage.

    Args:
        model: The trained float model (Sequential or functional; not modified).
        dataset: A ``keras_autoopt.data.Dataset`` (train: fine-tuning,
            validation: decisions, test: reported figures).
        output_dir: Folder for the stages' ``.tflite`` files.
        max_accuracy_drop: Largest validation accuracy drop allowed, as a
            fraction (0.01 = one point).
        sparsities: Candidate per-layer sparsities.
        sensitivity_share: Share of the budget the layers split by size.
        sensitivity_epochs: Fine-tuning epochs of each sensitivity probe.
        prune_epochs: Fine-tuning epochs of the joint pruning.
        cluster_counts: Cluster counts tried, fewest first; empty skips
            clustering.
        cluster_epochs: Fine-tuning epochs of clustering.
        qat_epochs: Fine-tuning epochs of QAT; 0 skips QAT.
        max_backoffs: How often pruning may step back to lower sparsities.
        max_pushes: How often pruning may raise the largest layer's sparsity
            one candidate further while the result stays within budget.
        batch_size: Fine-tuning batch size.
        learning_rate: Pruning fine-tuning learning rate (Adam); clustering
            uses 0.3x, QAT 0.1x of it (they start from a converged model).
        export_mode: TFLite mode of the non-QAT stages.
        seed: Seed of every fine-tuning.
        stream: Progress lines go here; None prints nothing.

    Returns:
        An `AutoCompressResult`.

    Raises:
        ValueError: For bad arguments, before any work.
    """
    budget = check_max_accuracy_drop("max_accuracy_drop", max_accuracy_drop)
    sparsities = _check_sparsities(sparsities)
    cluster_counts = tuple(sorted(check_cluster_counts("cluster_counts", cluster_counts,
                                                       allow_zero=False)))
    if not 0 < sensitivity_share <= 1:
        raise ValueError(
            f"Received: sensitivity_share={sensitivity_share!r}; expected a fraction in (0, 1].")
    for name, value in (("prune_epochs", prune_epochs), ("sensitivity_epochs",
                                                        sensitivity_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Received: {name}={value!r}; expected a positive integer.")
    for name, value in (("cluster_epochs", cluster_epochs), ("qat_epochs", qat_epochs),
                        ("max_backoffs", max_backoffs), ("max_pushes", max_pushes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"Received: {name}={value!r}; expected an integer >= 0.")
    plan = CompressionPlan([], export_mode=export_mode, batch_size=batch_size,
                           learning_rate=learning_rate)
    output_dir = Path(output_dir)

    def say(text: str) -> None:
        if stream is not None:
            print(text, file=stream, flush=True)

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    stages = plan.baseline(model, dataset, output_dir)
    float_model = stages[0].model
    say(f"[compress] sensitivity of {len(kernel_stats(float_model))} layers at "
        f"{list(sparsities)}")
    baseline, sensitivity = layer_sensitivity(
        float_model, dataset, sparsities=sparsities, epochs=sensitivity_epochs,
        batch_size=batch_size, learning_rate=learning_rate * PROBE_LR_FACTOR)
    sizes = {name: entry["size"] for name, entry in kernel_stats(float_model).items()}
    allocation = allocate(sensitivity, budget * sensitivity_share, sizes,
                          resolution=1.0 / len(dataset.x_val))
    notes: list[str] = []

    def within(stage: Stage) -> bool:
        return stage.val_accuracy is not None and baseline - stage.val_accuracy <= budget + 1e-9

    def report(stage: Stage) -> None:
        say(f"[compress] {stage.name}: val {stage.val_accuracy:.4f} (baseline {baseline:.4f}), "
            f"test {stage.metrics['accuracy']:.4f}, {stage.metrics['gzip_bytes']:,} gzip bytes"
            + ("" if within(stage) else " - over budget"))

    current, kinds = float_model, []
    pruned = None
    for attempt in range(max_backoffs + 1):
        if not any(allocation.values()):
            notes.append("no layer could be pruned within the budget")
            break
        keras.utils.set_random_seed(seed)
        step = PruningStep(max(allocation.values()), layer_sparsity=allocation,
                           epochs=prune_epochs)
        stage = plan.run_step(float_model, step, dataset, output_dir,
                              name="prune" if attempt == 0 else f"prune_try{attempt + 1}")
        stage.history["allocation"] = [dict(allocation)]  # type: ignore[list-item]
        stages.append(stage)
        report(stage)
        if within(stage):
            pruned = stage
            break
        allocation = _back_off(allocation, sparsities)
    # Push: the probes are noisy; while the joint result is within budget, raise
    # the largest layers (most bytes) one candidate further and keep what holds.
    pushes = 0
    while pruned is not None and pushes < max_pushes:
        order = sorted(allocation, key=lambda n: -sizes[n])
        name = next((n for n in order if allocation[n] < sparsities[-1]), None)
        if name is None:
            break
        higher = min(s for s in sparsities if s > allocation[name])
        trial = {**allocation, name: higher}
        pushes += 1
        keras.utils.set_random_seed(seed)
        stage = plan.run_step(float_model, PruningStep(max(trial.values()), layer_sparsity=trial,
                                                       epochs=prune_epochs),
                              dataset, output_dir, name=f"prune_push{pushes}")
        stages.append(stage)
        report(stage)
        if within(stage) and stage.metrics["gzip_bytes"] < pruned.metrics["gzip_bytes"]:
            pruned, allocation = stage, trial
        else:
            break
    if pruned is not None:
        current, kinds = pruned.model, ["prune"]

    for count in cluster_counts:
        if not cluster_epochs:
            break
        keras.utils.set_random_seed(seed)
        stage = plan.run_step(current, ClusteringStep(count, epochs=cluster_epochs,
                                                      learning_rate=learning_rate * 0.3,
                                                      preserve_sparsity="prune" in kinds),
                              dataset, output_dir, name=f"cluster{count}")
        stages.append(stage)
        report(stage)
        if within(stage):
            current, kinds = stage.model, [*kinds, "cluster"]
            break

    if qat_epochs:
        keras.utils.set_random_seed(seed)
        try:
            # skip_unsupported: a layer QAT cannot quantize stays float (a note), so
            # the stage is still measured.
            stage = plan.run_step(current, QATStep(epochs=qat_epochs,
                                                   learning_rate=learning_rate * 0.1,
                                                   skip_unsupported=True),
                                  dataset, output_dir,
                                  name="qat", earlier_kinds=kinds)
        except ExportVerificationError as exc:
            # The converted QAT model disagrees with its Keras model: that stage fails
            # alone; the earlier stages (already measured) stay the candidates.
            note = f"qat: skipped, its int8 export failed verification ({exc})"
            notes.append(note)
            say(f"[compress] {note}")
        except Exception as exc:  # noqa: BLE001 - TF-MOT / converter errors vary in type
            # Whatever TF-MOT or the converter refuses fails the QAT stage alone: the
            # stages measured so far are the result, with a one-line note.
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            note = f"qat: skipped, {type(exc).__name__}: {first}"
            notes.append(note)
            say(f"[compress] {note}")
        else:
            stages.append(stage)
            notes.extend(f"qat: {note}" for note in stage.notes)
            report(stage)

    candidates = [s for s in stages if within(s)] or stages[:1]
    chosen = min(candidates, key=lambda s: s.metrics["gzip_bytes"])
    say(f"[compress] chosen: {chosen.name} ({chosen.metrics['gzip_bytes']:,} gzip bytes, "
        f"test accuracy {chosen.metrics['accuracy']:.4f})")
    result = AutoCompressResult(
        stages=stages, chosen=chosen, sensitivity=sensitivity, allocation=allocation,
        baseline_val_accuracy=baseline, wall_time_s=time.perf_counter() - started, notes=notes,
    )
    float32_size = stages[0].metrics["size_bytes"]
    rows = []
    for stage in stages:
        row = stage.record(output_dir, float32_size)
        row["within_budget"] = within(stage)
        rows.append(row)
    result.report = {
        "model": {"name": model.name, "params": int(model.count_params())},
        "dataset": dataset.summary(),
        "budget": {
            "max_accuracy_drop": budget,
            "baseline_accuracy": stages[0].metrics["accuracy"],
            "baseline_val_accuracy": baseline,
            "decided_on": "validation split (Keras); test figures are LiteRT",
        },
        "chosen": chosen.name,
        "stages": rows,
        "sensitivity": {layer: {f"{k:g}": v for k, v in drops.items()}
                        for layer, drops in sensitivity.items()},
        "allocation": allocation,
        "settings": {
            "sparsities": list(sparsities), "sensitivity_share": sensitivity_share,
            "sensitivity_epochs": sensitivity_epochs, "prune_epochs": prune_epochs,
            "cluster_counts": list(cluster_counts), "cluster_epochs": cluster_epochs,
            "qat_epochs": qat_epochs, "max_backoffs": max_backoffs,
            "max_pushes": max_pushes, "batch_size": batch_size,
            "learning_rate": learning_rate, "export_mode": export_mode, "seed": seed,
        },
        "notes": notes,
        "wall_time_s": round(result.wall_time_s, 2),
        "environment": environment_info(),
    }
    result.paths = write_compression_report(result.report, output_dir)
    return result
