"""The structured stage of `auto_compress`: channel ratios searched, guided by sensitivity.

Each prunable group of a model (the producers whose channels must stay
aligned, see `prune_channels`) is first pruned alone at each candidate ratio,
fine-tuned briefly and measured on the validation split (`group_sensitivity`),
as `layer_sensitivity` does for magnitude pruning.

Short probes are pessimistic and noisy for whole channels: on the reference
CNN of the benchmarks (seed 0), 3-epoch probes of one group at 25-87.5 % lost
0.4 to 2.6 pt of validation accuracy, while all groups at 75 % together,
fine-tuned 60 epochs, changed test accuracy by -0.7 to +1.1 pt over 3 seeds.
So the probes do not split the budget; they *order* the groups.
`StructuredSearch` raises one ratio for every group through the candidates,
each level pruned from the float model and fine-tuned in full, while the
result stays within budget (the caller's paired decision); from the last
level that held, it pushes one group at a time one candidate further, least
sensitive first (the probes' drop at the next ratio; ties: the group removing
the most parameters), keeping each push that holds and is no larger by the
caller's objective; a group whose push fails stays where it is while the
others may go on, and an allocation already measured is not trained again.
A removal can be split into several fine-tuned cuts (`gradual_ratios`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from keras_autoopt._backend import keras
from keras_autoopt.compress._channel_graph import _analyze
from keras_autoopt.compress._plan import CompressionPlan, Stage
from keras_autoopt.compress._sensitivity import _val_accuracy
from keras_autoopt.compress._steps import UnsupportedLayerError
from keras_autoopt.compress._structured import StructuredPruningStep, prune_by_ratio


def _channels(model: keras.Model) -> dict[str, int]:
    """``{group leader: number of output channels}`` of the prunable groups."""
    groups = _analyze(model).prunable()
    layers = {layer.name: layer for layer in model.layers}
    out = {}
    for leader in groups:
        layer = layers[leader]
        out[leader] = int(layer.units if hasattr(layer, "units") else layer.filters)
    return out


def group_sizes(model: keras.Model, ratio: float) -> dict[str, int]:
    """Parameters each prunable group removes at ``ratio`` (its own and its readers')."""
    total = model.count_params()
    return {leader: total - prune_by_ratio(model, {leader: ratio}).count_params()
            for leader in _channels(model)}


def group_sensitivity(model: keras.Model, dataset, *, ratios: Sequence[float],
                      criterion: str = "l1", epochs: int = 3, batch_size: int = 32,
                      learning_rate: float = 1e-3, loss: str = "sparse_categorical_crossentropy",
                      ) -> tuple[float, dict[str, dict[float, float]]]:
    """Prune each prunable group alone at each ratio, fine-tune, and measure the validation drop.

    Args:
        model: The trained float model (not modified).
        dataset: A ``keras_autoopt.data.Dataset``.
        ratios: Candidate shares of the group's channels to remove.
        criterion: Channel importance criterion (see `channel_importance`).
        epochs: Fine-tuning epochs of each probe.
        batch_size: Fine-tuning batch size.
        learning_rate: Fine-tuning learning rate (Adam).
        loss: Training loss.

    Returns:
        ``(baseline validation accuracy, {group leader: {ratio: drop}})``.
    """
    model.compile(keras.optimizers.Adam(learning_rate), loss, ["accuracy"])
    baseline = _val_accuracy(model, dataset)
    data = (dataset.x_train[:256], dataset.y_train[:256]) if criterion == "taylor" else None
    result: dict[str, dict[float, float]] = {}
    for leader in _channels(model):
        result[leader] = {}
        for ratio in ratios:
            probe = prune_by_ratio(model, {leader: ratio}, criterion=criterion, data=data)
            probe.compile(keras.optimizers.Adam(learning_rate), loss, ["accuracy"])
            probe.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch_size,
                      verbose=0)
            result[leader][ratio] = baseline - _val_accuracy(probe, dataset)
    return baseline, result


def gradual_ratios(model: keras.Model, allocation: Mapping[str, float], steps: int
                   ) -> list[dict[str, float]]:
    """Split a removal into ``steps`` cuts, each a ratio of the channels left by the previous.

    Group ``g`` with ``n`` channels ends with ``n - floor(allocation[g] * n)``
    (what one `prune_by_ratio` call would keep); after cut ``k`` it keeps
    ``round(n * (kept / n) ** (k / steps))`` channels, a geometric schedule.

    Args:
        model: The model the first cut applies to.
        allocation: ``{group leader: share of its channels to remove}``.
        steps: Number of cuts (>= 1).

    Returns:
        One ``{group leader: ratio}`` dict per cut, for `prune_by_ratio` on the
        model the previous cut produced.
    """
    channels = _channels(model)
    final = {g: channels[g] - math.floor(r * channels[g] + 1e-9)
             for g, r in allocation.items() if r > 0}
    cuts: list[dict[str, float]] = []
    current = {g: channels[g] for g in final}
    for k in range(1, steps + 1):
        cut = {}
        for group, keep in final.items():
            n = channels[group]
            target = keep if k == steps else max(keep, round(n * (keep / n) ** (k / steps)))
            target = max(1, min(target, current[group]))
            cut[group] = (current[group] - target) / current[group]
            current[group] = target
        cuts.append({g: r for g, r in cut.items() if r > 0})
    return [cut for cut in cuts if cut]


@dataclass
class StructuredResult:
    """What `StructuredSearch.run` found.

    Attributes:
        best: The largest-ratio stage within budget, or None.
        sensitivity: ``{group leader: {ratio: validation drop}}`` of the probes.
        allocation: ``{group leader: ratio}`` of ``best`` (empty: none).
        channels: ``{group leader: output channels}`` before pruning.
        notes: Why nothing was pruned, when so.
    """

    best: Stage | None
    sensitivity: dict[str, dict[float, float]] = field(default_factory=dict)
    allocation: dict[str, float] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class StructuredSearch:
    """The structured stage of `auto_compress` (see the module docstring).

    Attributes:
        plan: Fine-tunes, exports and measures each candidate.
        dataset: Train (fine-tuning), validation (probes) and test splits.
        output_dir: Folder of the stages' files.
        ratios: Candidate shares of each group's channels, ascending.
        criterion: Channel importance criterion.
        epochs: Fine-tuning epochs of each candidate.
        steps: Cuts each removal is split into.
        probe_epochs: Fine-tuning epochs of each sensitivity probe.
        probe_learning_rate: Learning rate of the probes.
        max_pushes: Most single-group pushes after the uniform levels; None
            means two per channel group.
        seed: Seed of every fine-tuning.
        add: ``add(name, make)`` runs ``make()`` (a stage), measures and records
            it and makes the decision; None when the stage failed alone.
        within: Whether a recorded stage is within budget (False for None).
        objective: The figure the caller minimizes, for a recorded stage.
        say: Progress lines.
    """

    plan: CompressionPlan
    dataset: object
    output_dir: object
    ratios: tuple[float, ...]
    criterion: str
    epochs: int
    steps: int
    probe_epochs: int
    probe_learning_rate: float
    max_pushes: int | None
    seed: int
    add: Callable[..., Stage | None]
    within: Callable[[Stage | None], bool]
    objective: Callable[[Stage], float]
    say: Callable[[str], None]

    def candidate(self, model: keras.Model, allocation: Mapping[str, float], name: str
                  ) -> Stage | None:
        """Prune ``model`` to ``allocation`` in `steps` fine-tuned cuts; measure and record it.

        None when the stage failed alone (``add`` noted why).
        """
        keras.utils.set_random_seed(self.seed)
        cuts = gradual_ratios(model, allocation, self.steps)
        per_cut = max(1, self.epochs // len(cuts))
        pruned = model
        for cut in cuts[:-1]:
            pruned = self.plan.fine_tune(
                pruned, StructuredPruningStep(cut, self.criterion, epochs=per_cut),
                self.dataset.x_train, self.dataset.y_train).model
        step = StructuredPruningStep(cuts[-1], self.criterion,
                                     epochs=max(1, self.epochs - per_cut * (len(cuts) - 1)))
        return self.add(name, lambda: self.plan.run_step(pruned, step, self.dataset,
                                                         self.output_dir, name=name))

    def run(self, model: keras.Model) -> StructuredResult:
        """Search the channel ratios of ``model`` (the float model; not modified)."""
        try:
            channels = _channels(model)
        except (UnsupportedLayerError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self.say(f"[compress] structured: skipped, {first}")
            return StructuredResult(None, notes=[f"structured: skipped, {first}"])
        if not channels:
            return StructuredResult(None, notes=[
                "structured: skipped, no group of channels can be removed (every one reaches "
                "a model output)"])
        self.say(f"[compress] structured sensitivity of {len(channels)} channel groups at "
                 f"{list(self.ratios)}")
        _, sensitivity = group_sensitivity(
            model, self.dataset, ratios=self.ratios, criterion=self.criterion,
            epochs=self.probe_epochs, batch_size=self.plan.batch_size,
            learning_rate=self.probe_learning_rate, loss=self.plan.loss)
        params = group_sizes(model, self.ratios[-1])
        result = StructuredResult(None, sensitivity=sensitivity, channels=channels)
        levels: dict[float, Stage | None] = {}
        for ratio in self.ratios:
            allocation = dict.fromkeys(channels, ratio)
            if not gradual_ratios(model, allocation, 1):  # the groups are too small to cut
                continue
            stage = levels[ratio] = self.candidate(model, allocation,
                                                   f"structured_{round(100 * ratio)}")
            if not self.within(stage):
                break
            result.best, result.allocation = stage, allocation
        if result.best is None:
            result.notes.append("structured: no channel ratio stayed within the budget")
            return result
        # A push that does not hold leaves its group where it is; the other groups may still
        # go further. An allocation already measured (a push that equals a uniform level)
        # is not trained again: its decision stands. At most `max_pushes` are trained.
        measured = {tuple(sorted(dict.fromkeys(channels, r).items())): stage
                    for r, stage in levels.items()}
        held: set[str] = set()
        pushes = 0
        limit = 2 * len(channels) if self.max_pushes is None else self.max_pushes
        while pushes < limit:
            higher = {g: min((r for r in self.ratios if r > result.allocation[g]), default=None)
                      for g in channels}
            ready = [g for g in channels if higher[g] is not None and g not in held]
            if not ready:
                break
            group = min(ready, key=lambda g: (sensitivity[g][higher[g]], -params[g]))
            trial = {**result.allocation, group: higher[group]}
            key = tuple(sorted(trial.items()))
            if key in measured:
                stage = measured[key]
            else:
                pushes += 1
                stage = measured[key] = self.candidate(model, trial, f"structured_push{pushes}")
            if self.within(stage) and self.objective(stage) <= self.objective(result.best):
                result.best, result.allocation = stage, trial
            else:
                held.add(group)
        return result
