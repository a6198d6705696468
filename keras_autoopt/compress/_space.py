"""`CompressionSpace`: compression and quantization as hyperparameters of a trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_autoopt._checks import check_choices, check_positive_int
from keras_autoopt._rules import (
    DEFAULT_PRUNING_SCHEDULES,
    DEFAULT_QUANTIZATIONS,
    DEFAULT_SPACE_CLUSTERS,
    DEFAULT_SPACE_SPARSITIES,
    PRUNING_SCHEDULES,
    check_cluster_counts,
    check_quantizations,
    check_sparsities,
)
from keras_autoopt.compress._clustering import ClusteringStep
from keras_autoopt.compress._plan import CompressionPlan
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._structured import StructuredPruningStep


@dataclass(frozen=True)
class CompressionSpace:
    """What each trial of a `DeployableTuner` may do to its trained model before export.

    After the trial's model has trained, it keeps the sampled share of
    ``channels`` of every prunable group (structured pruning: a smaller model,
    `StructuredPruningStep` by L1 norm, fine-tuned ``prune_epochs`` epochs;
    1.0 keeps them all), then it is pruned to the sampled
    ``sparsity`` (fine-tuned ``prune_epochs`` epochs with the sampled
    schedule), then clustered to the sampled number of ``clusters`` (sparsity
    preserved, ``cluster_epochs`` epochs), each step fine-tuned by
    `CompressionPlan.fine_tune` (the same code and checks as a staged
    compression run), then exported in the sampled
    ``quantization`` mode and measured under LiteRT. A choice of 0 skips
    pruning or clustering. Hyperparameter names: ``channels`` (only when it has
    several choices), ``sparsity``,
    ``pruning_schedule`` (only active when some sparsity > 0), ``clusters``,
    ``quantization``.

    Args:
        sparsities: Candidate target sparsities in [0, 1) (0: no pruning; see
            `keras_autoopt._rules`).
        pruning_schedules: ``"polynomial"`` and/or ``"constant"``.
        clusters: Candidate cluster counts; 0 means no clustering.
        quantization: Candidate export modes (`EXPORT_MODES`).
        channels: Candidate shares of each group's channels kept, in (0, 1]
            (1.0: no structured pruning, the default).
        prune_epochs: Fine-tuning epochs of the pruning stage.
        cluster_epochs: Fine-tuning epochs of the clustering stage.
        learning_rate: Adam learning rate of both fine-tuning stages.
        batch_size: Batch size of both fine-tuning stages.

    Raises:
        ValueError: For any argument outside its documented range.
    """

    sparsities: Sequence[float] = DEFAULT_SPACE_SPARSITIES
    pruning_schedules: Sequence[str] = DEFAULT_PRUNING_SCHEDULES
    clusters: Sequence[int] = DEFAULT_SPACE_CLUSTERS
    quantization: Sequence[str] = DEFAULT_QUANTIZATIONS
    channels: Sequence[float] = (1.0,)
    prune_epochs: int = 3
    cluster_epochs: int = 2
    learning_rate: float = 1e-3
    batch_size: int = 32

    def __post_init__(self):
        object.__setattr__(self, "sparsities",
                           check_sparsities("sparsities", self.sparsities, allow_zero=True))
        schedules = check_choices("pruning_schedules", self.pruning_schedules,
                                  allowed=PRUNING_SCHEDULES)
        object.__setattr__(self, "pruning_schedules", schedules)
        object.__setattr__(self, "clusters",
                           check_cluster_counts("clusters", self.clusters, allow_zero=True))
        modes = check_quantizations("quantization", self.quantization)
        object.__setattr__(self, "quantization", modes)
        object.__setattr__(self, "channels", _check_channels(self.channels))
        check_positive_int("prune_epochs", self.prune_epochs)
        check_positive_int("cluster_epochs", self.cluster_epochs)
        check_positive_int("batch_size", self.batch_size)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ValueError(f"Received: learning_rate={lr!r}; expected a float in (0, 1).")

    def sample(self, hp) -> dict[str, Any]:
        """Declare the hyperparameters on ``hp`` and return this trial's choices.

        Args:
            hp: The trial's ``HyperParameters``.

        Returns:
            ``{"channels", "sparsity", "pruning_schedule", "clusters", "quantization"}``.
        """
        channels = self.channels[0]
        if len(self.channels) > 1:
            channels = hp.Choice("channels", list(self.channels))
        sparsity = hp.Choice("sparsity", list(self.sparsities))
        schedule = self.pruning_schedules[0]
        if len(self.pruning_schedules) > 1 and any(s > 0 for s in self.sparsities):
            with hp.conditional_scope("sparsity", [s for s in self.sparsities if s > 0]):
                chosen = hp.Choice("pruning_schedule", list(self.pruning_schedules))
            schedule = chosen or schedule
        clusters = hp.Choice("clusters", list(self.clusters))
        quantization = hp.Choice("quantization", list(self.quantization))
        return {"channels": float(channels), "sparsity": float(sparsity),
                "pruning_schedule": schedule,
                "clusters": int(clusters), "quantization": quantization}

    def plan(self, choices: Mapping[str, Any]) -> CompressionPlan | None:
        """The `CompressionPlan` of one trial's choices.

        Args:
            choices: `sample`'s dict.

        Returns:
            A plan of a `StructuredPruningStep` (``channels`` < 1), a
            `PruningStep` (``sparsity`` > 0) and / or a
            `ClusteringStep` (``clusters`` > 0, sparsity preserved), fine-tuned
            with this space's epochs, learning rate and batch size, exported in
            the sampled ``quantization``; None when nothing is pruned or
            clustered (the trained model is exported as it is).
        """
        steps = []
        if choices.get("channels", 1.0) < 1.0:
            steps.append(StructuredPruningStep(1.0 - choices["channels"], epochs=self.prune_epochs))
        if choices["sparsity"] > 0:
            steps.append(PruningStep(choices["sparsity"], schedule=choices["pruning_schedule"],
                                     epochs=self.prune_epochs))
        if choices["clusters"]:
            steps.append(ClusteringStep(choices["clusters"], preserve_sparsity=True,
                                        epochs=self.cluster_epochs))
        if not steps:
            return None
        return CompressionPlan(steps, export_mode=choices["quantization"],
                               batch_size=self.batch_size, learning_rate=self.learning_rate)

    def get_config(self) -> dict[str, Any]:
        """A JSON-serializable dict of the arguments."""
        return {"sparsities": list(self.sparsities),
                "pruning_schedules": list(self.pruning_schedules),
                "clusters": list(self.clusters), "quantization": list(self.quantization),
                "channels": list(self.channels), "prune_epochs": self.prune_epochs,
                "cluster_epochs": self.cluster_epochs,
                "learning_rate": self.learning_rate, "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CompressionSpace:
        """Rebuild a space from `get_config`'s dict."""
        return cls(**dict(config))


def _check_channels(value: Any) -> tuple[float, ...]:
    """Shares of channels kept: distinct fractions in (0, 1], at least one."""
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value)
    if not ok or len(set(value)) != len(value):
        raise ValueError(f"Received: channels={value!r}; expected a non-empty list of distinct "
                         "fractions in (0, 1] (the share of each group's channels kept).")
    return tuple(float(v) for v in value)
