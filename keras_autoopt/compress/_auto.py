"""`auto_compress`: find per-model compression settings within an accuracy budget.

Procedure (every decision on the validation split; the test split is only
measured):

0. **Structured pruning** (`channel_ratios`, see `StructuredSearch`): the
   channel groups' sensitivity is probed; one ratio for every group is
   raised through the candidates, each fine-tuned `structured_epochs`, while
   the result stays within budget; then the least sensitive groups are
   pushed one candidate further, one at a time. The smaller model is what
   the later stages start from.
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

**Decisions are paired and conservative.** Every stage is exported and its
``.tflite`` run under LiteRT on the validation split; its per-sample results
are compared with the float32 model's on the same samples (`paired_drop`),
and a stage is *within budget* only when the one-sided upper bound of its
drop at ``confidence`` is (0.5: the point estimate alone, the old rule). The
recommended stage minimizes ``minimize`` (flash bytes by default: what the
device stores) among the stages within budget; stages within 2 % of the
smallest are near-ties, settled by the smaller validation drop. Test figures
are reported with their paired 95 % interval against the float32 model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from keras_autoopt._backend import keras
from keras_autoopt._rules import (
    DEFAULT_CHANNEL_RATIOS,
    DEFAULT_CLUSTER_COUNTS,
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_SPARSITIES,
    MINIMIZE,
    check_channel_ratios,
    check_cluster_counts,
    check_max_accuracy_drop,
)
from keras_autoopt.compress._auto_structured import StructuredSearch
from keras_autoopt.compress._clustering import ClusteringStep
from keras_autoopt.compress._decide import (
    check_confidence,
    choose_stage,
    paired_drop,
    stage_figure,
    tflite_correct,
)
from keras_autoopt.compress._importance import _check_criterion
from keras_autoopt.compress._plan import CompressionPlan, Stage
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._qat import QATStep
from keras_autoopt.compress._sensitivity import (
    _back_off,
    _check_sparsities,
    allocate,
    layer_sensitivity,
)
from keras_autoopt.compress._stats import kernel_stats
from keras_autoopt.export import ExportVerificationError
from keras_autoopt.load import as_tf_keras
from keras_autoopt.measure import count_macs, measure_on_target
from keras_autoopt.report import CompressionReportPaths, environment_info, write_compression_report
from keras_autoopt.targets import get_target

#: Learning rate of the sensitivity probes, relative to the fine-tuning rate.
PROBE_LR_FACTOR = 1.0


@dataclass
class AutoCompressResult:
    """What `auto_compress` found.

    Attributes:
        stages: Every measured stage, in order (retries included, named
            ``prune_try2``, ...).
        chosen: The recommended stage (least ``minimize`` among the stages
            within budget on validation).
        sensitivity: ``{layer: {sparsity: validation drop}}`` (magnitude pruning).
        allocation: The per-layer sparsity finally used.
        baseline_val_accuracy: Validation accuracy of the input model.
        wall_time_s: Total time.
        notes: What the procedure could not do.
        report: The compression report dict (``compression.json``).
        paths: Where the report files are.
        channel_sensitivity: ``{group leader: {ratio: validation drop}}``
            (structured pruning; empty when skipped).
        channel_allocation: The share of each group's channels finally removed.
        decisions: ``{stage: paired validation and test drops against the
            float32 model, the upper bound and whether it is within budget}``.
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
    channel_sensitivity: dict[str, dict[float, float]] = field(default_factory=dict)
    channel_allocation: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)


def auto_compress(
    model: keras.Model,
    dataset,
    output_dir: str | Path,
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    channel_ratios: Sequence[float] = DEFAULT_CHANNEL_RATIOS,
    structured_criterion: str = "l1",
    structured_epochs: int = 60,
    structured_steps: int = 1,
    structured_pushes: int | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    sensitivity_share: float = 1.0,
    sensitivity_epochs: int = 3,
    prune_epochs: int = 40,
    cluster_counts: Sequence[int] = DEFAULT_CLUSTER_COUNTS,
    cluster_epochs: int = 10,
    qat_epochs: int = 10,
    max_backoffs: int = 2,
    max_pushes: int = 3,
    minimize: str = "flash",
    target: Any = None,
    confidence: float = 0.8,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    export_mode: str = "int8",
    seed: int = 0,
    stream: TextIO | None = None,
) -> AutoCompressResult:
    """Compress ``model`` as far as the accuracy budget allows, measuring every stage.

    Args:
        model: The trained float model (Sequential or functional, tf_keras
            or Keras 3, converted exactly; not modified).
        dataset: A ``keras_autoopt.data.Dataset`` (train: fine-tuning,
            validation: decisions, test: reported figures).
        output_dir: Folder for the stages' ``.tflite`` files.
        max_accuracy_drop: Largest validation accuracy drop allowed, as a
            fraction (0.01 = one point).
        channel_ratios: Candidate shares of each group's channels that
            structured pruning removes; empty skips structured pruning.
        structured_criterion: Channel importance criterion (see
            `channel_importance`).
        structured_epochs: Fine-tuning epochs of the structured stage.
        structured_steps: Cuts the structured removal is split into (the
            epochs shared between them).
        structured_pushes: Most single-group pushes after the uniform
            levels (each a fine-tuned candidate); None means two per channel
            group. A group whose push is refused is not pushed again.
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
        minimize: What the chosen stage has least of among those within
            budget: one of `MINIMIZE` (``"flash"``: file bytes, or the
            target's flash figure; ``"ram"`` needs a ``target`` that reports
            RAM).
        target: A device target (see `get_target`), or None: each stage is
            also measured as the target runs it (`measure_on_target`), and a
            stage the target cannot run is never chosen.
        confidence: One-sided confidence that a stage's validation drop is
            within the budget (paired test against the float32 model's
            per-sample results); 0.5 uses the point estimate alone.
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
    channel_ratios = check_channel_ratios("channel_ratios", channel_ratios)
    structured_criterion = _check_criterion(structured_criterion)
    sparsities = _check_sparsities(sparsities)
    cluster_counts = tuple(sorted(check_cluster_counts("cluster_counts", cluster_counts,
                                                       allow_zero=False)))
    if not 0 < sensitivity_share <= 1:
        raise ValueError(
            f"Received: sensitivity_share={sensitivity_share!r}; expected a fraction in (0, 1].")
    for name, value in (("prune_epochs", prune_epochs), ("sensitivity_epochs",
                                                        sensitivity_epochs),
                        ("structured_epochs", structured_epochs),
                        ("structured_steps", structured_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Received: {name}={value!r}; expected a positive integer.")
    for name, value in (("cluster_epochs", cluster_epochs), ("qat_epochs", qat_epochs),
                        ("max_backoffs", max_backoffs), ("max_pushes", max_pushes),
                        ("structured_pushes", 0 if structured_pushes is None
                         else structured_pushes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"Received: {name}={value!r}; expected an integer >= 0.")
    if minimize not in MINIMIZE:
        raise ValueError(f"Received: minimize={minimize!r}; expected one of {list(MINIMIZE)}.")
    confidence = check_confidence("confidence", confidence)
    device_target = None if target is None else get_target(target)
    if minimize == "ram" and (device_target is None or device_target.runtime == "litert"):
        raise ValueError(
            f"Received: minimize='ram' with target={target!r}; expected a target that "
            "reports RAM (a TFLite Micro or Ethos-U target, e.g. target='tflm').")
    model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
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
    notes: list[str] = []
    decisions: dict[str, dict[str, Any]] = {}
    devices: dict[str, dict[str, Any]] = {}
    correct: dict[str, tuple[Any, Any]] = {}

    def measure(stage: Stage) -> None:
        """Per-sample results (validation, test), MACs and device figures of a stage."""
        correct[stage.name] = (tflite_correct(stage.path, dataset.x_val, dataset.y_val),
                               tflite_correct(stage.path, dataset.x_test, dataset.y_test))
        if device_target is not None:  # its figures include the MACs
            devices[stage.name] = measure_on_target(stage.path, device_target,
                                                    dataset.x_val).to_dict()
        stage.metrics["macs"] = devices[stage.name]["macs"] if stage.name in devices \
            else count_macs(stage.path)
        base_val, base_test = correct[stages[0].name]
        val = paired_drop(base_val, correct[stage.name][0])
        test = paired_drop(base_test, correct[stage.name][1])
        decisions[stage.name] = {
            "val": val.to_dict(), "val_drop_upper": val.upper(confidence),
            "test": test.to_dict(),
            "within_budget": val.upper(confidence) <= budget + 1e-9,
        }

    def within(stage: Stage | None) -> bool:
        return stage is not None and bool(decisions[stage.name]["within_budget"])

    def objective(stage: Stage) -> float:
        return stage_figure(minimize, stage, devices.get(stage.name))

    def add(name: str, make: Callable[[], Stage], *, any_error: bool = False) -> Stage | None:
        """Run one stage (``make``), measure and decide it; None when it fails alone.

        An export that fails verification fails that stage alone (a note): the
        stages measured so far stay the candidates. With ``any_error`` (QAT),
        whatever TF-MOT or the converter raises does too.
        """
        try:
            stage = make()
        except Exception as exc:
            if not (any_error or isinstance(exc, ExportVerificationError)):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            note = (f"{name}: skipped, its {getattr(exc, 'mode', '')} export failed "
                    f"verification ({first})"
                    if isinstance(exc, ExportVerificationError)
                    else f"{name}: skipped, {type(exc).__name__}: {first}")
            notes.append(note)
            say(f"[compress] {note}")
            return None
        stages.append(stage)
        measure(stage)
        decision = decisions[stage.name]
        test_ci = decision["test"]["ci95"]
        say(f"[compress] {stage.name}: val drop {100 * decision['val']['drop']:+.2f} pt "
            f"(upper {100 * decision['val_drop_upper']:+.2f} at {confidence:.0%}), "
            f"test drop {100 * decision['test']['drop']:+.2f} pt "
            f"[{100 * test_ci[0]:+.2f}, {100 * test_ci[1]:+.2f}], "
            f"{stage.metrics['size_bytes']:,} bytes, {stage.metrics['gzip_bytes']:,} gzip"
            + ("" if within(stage) else " - over budget"))
        return stage

    for stage in stages:
        measure(stage)

    # -- structured pruning: a smaller model the later stages start from ---------------------
    current, kinds = float_model, []
    found = StructuredSearch(
        plan, dataset, output_dir, ratios=channel_ratios, criterion=structured_criterion,
        epochs=structured_epochs, steps=structured_steps, probe_epochs=sensitivity_epochs,
        probe_learning_rate=learning_rate * PROBE_LR_FACTOR, max_pushes=structured_pushes,
        seed=seed,
        add=add, within=within, objective=objective, say=say,
    ).run(float_model) if channel_ratios else None
    if found is not None:
        notes.extend(found.notes)
        if found.best is not None:
            current, kinds = found.best.model, ["structured"]
    channel_sensitivity = found.sensitivity if found else {}
    channel_allocation = found.allocation if found else {}
    groups = found.channels if found else {}

    # -- magnitude pruning, clustering, QAT on what structured pruning left -----------------
    start_model = current
    say(f"[compress] sensitivity of {len(kernel_stats(start_model))} layers at "
        f"{list(sparsities)}")
    _, sensitivity = layer_sensitivity(
        start_model, dataset, sparsities=sparsities, epochs=sensitivity_epochs,
        batch_size=batch_size, learning_rate=learning_rate * PROBE_LR_FACTOR)
    sizes = {name: entry["size"] for name, entry in kernel_stats(start_model).items()}
    allocation = allocate(sensitivity, budget * sensitivity_share, sizes,
                          resolution=1.0 / len(dataset.x_val))

    pruned = None
    for attempt in range(max_backoffs + 1):
        if not any(allocation.values()):
            notes.append("no layer could be pruned within the budget")
            break
        keras.utils.set_random_seed(seed)
        step = PruningStep(max(allocation.values()), layer_sparsity=allocation,
                           epochs=prune_epochs)
        name = "prune" if attempt == 0 else f"prune_try{attempt + 1}"
        stage = add(name, lambda step=step, name=name: plan.run_step(
            start_model, step, dataset, output_dir, name=name, earlier_kinds=kinds))
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
        step = PruningStep(max(trial.values()), layer_sparsity=trial, epochs=prune_epochs)
        name = f"prune_push{pushes}"
        stage = add(name, lambda step=step, name=name: plan.run_step(
            start_model, step, dataset, output_dir, name=name, earlier_kinds=kinds))
        if within(stage) and stage.metrics["gzip_bytes"] < pruned.metrics["gzip_bytes"]:
            pruned, allocation = stage, trial
        else:
            break
    if pruned is not None:
        current, kinds = pruned.model, [*kinds, "prune"]

    for count in cluster_counts:
        if not cluster_epochs:
            break
        keras.utils.set_random_seed(seed)
        step = ClusteringStep(count, epochs=cluster_epochs, learning_rate=learning_rate * 0.3,
                              preserve_sparsity="prune" in kinds)
        stage = add(f"cluster{count}", lambda step=step, model=current, done=kinds,
                    count=count: plan.run_step(model, step, dataset, output_dir,
                                               name=f"cluster{count}", earlier_kinds=done))
        if within(stage):
            current, kinds = stage.model, [*kinds, "cluster"]
            break

    if qat_epochs:
        keras.utils.set_random_seed(seed)
        # skip_unsupported: a layer QAT cannot quantize stays float (a note), so the stage
        # is still measured; whatever TF-MOT or the converter refuses fails it alone.
        step = QATStep(epochs=qat_epochs, learning_rate=learning_rate * 0.1,
                       skip_unsupported=True)
        stage = add("qat", lambda: plan.run_step(
            current, step, dataset, output_dir, name="qat",
            earlier_kinds=[k for k in kinds if k != "structured"]), any_error=True)
        if stage is not None:
            notes.extend(f"qat: {note}" for note in stage.notes)

    chosen = choose_stage(stages, within, objective, decisions, devices)
    figure = {"flash": "flash bytes", "gzip": "gzip bytes", "latency": "µs",
              "ram": "RAM bytes", "macs": "MACs"}[minimize]
    digits = 2 if minimize == "latency" else 0  # microseconds: 2.43, not 2
    say(f"[compress] chosen: {chosen.name} ({objective(chosen):,.{digits}f} {figure}, "
        f"{chosen.metrics['size_bytes']:,} bytes, test accuracy "
        f"{chosen.metrics['accuracy']:.4f})")
    result = AutoCompressResult(
        stages=stages, chosen=chosen, sensitivity=sensitivity, allocation=allocation,
        baseline_val_accuracy=stages[0].val_accuracy, wall_time_s=time.perf_counter() - started,
        notes=notes, channel_sensitivity=channel_sensitivity,
        channel_allocation=channel_allocation, decisions=decisions,
    )
    float32_size = stages[0].metrics["size_bytes"]
    rows = []
    for stage in stages:
        row = stage.record(output_dir, float32_size)
        decision = decisions[stage.name]
        row.update(within_budget=within(stage), val_drop=decision["val"]["drop"],
                   val_drop_upper=decision["val_drop_upper"],
                   test_drop=decision["test"]["drop"], test_drop_ci95=decision["test"]["ci95"],
                   params=int(stage.model.count_params()))
        if stage.name in devices:
            row["device"] = devices[stage.name]
        rows.append(row)
    result.report = {
        "model": {"name": model.name, "params": int(model.count_params())},
        "dataset": dataset.summary(),
        "budget": {
            "max_accuracy_drop": budget,
            "baseline_accuracy": stages[0].metrics["accuracy"],
            "baseline_val_accuracy": stages[0].val_accuracy,
            "decided_on": (f"validation split: the .tflite's per-sample results against the "
                           f"float32 model's, paired upper bound at {confidence:.0%}; test "
                           "figures are LiteRT, with a paired 95 % interval"),
            "confidence": confidence,
            "minimize": minimize,
            "target": None if device_target is None else device_target.name,
        },
        "chosen": chosen.name,
        "stages": rows,
        "sensitivity": {layer: {f"{k:g}": v for k, v in drops.items()}
                        for layer, drops in sensitivity.items()},
        "allocation": allocation,
        "structured": {
            "sensitivity": {group: {f"{k:g}": v for k, v in drops.items()}
                            for group, drops in channel_sensitivity.items()},
            "allocation": channel_allocation,
            "channels_before": groups,
        },
        "settings": {
            "channel_ratios": list(channel_ratios), "structured_criterion": structured_criterion,
            "structured_epochs": structured_epochs, "structured_steps": structured_steps,
            "structured_pushes": structured_pushes,
            "sparsities": list(sparsities), "sensitivity_share": sensitivity_share,
            "sensitivity_epochs": sensitivity_epochs, "prune_epochs": prune_epochs,
            "cluster_counts": list(cluster_counts), "cluster_epochs": cluster_epochs,
            "qat_epochs": qat_epochs, "max_backoffs": max_backoffs,
            "max_pushes": max_pushes, "minimize": minimize, "confidence": confidence,
            "batch_size": batch_size, "learning_rate": learning_rate,
            "export_mode": export_mode, "seed": seed,
        },
        "notes": notes,
        "wall_time_s": round(result.wall_time_s, 2),
        "environment": environment_info(),
    }
    result.paths = write_compression_report(result.report, output_dir)
    return result

