"""`PruningStep`: TF-MOT magnitude pruning with schedules, per-layer targets and M:N sparsity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from keras_autoopt._backend import keras, prune_registry, tfmot
from keras_autoopt._checks import check_positive_int
from keras_autoopt.compress._steps import (
    SCHEDULES,
    CompressionStep,
    _check_fraction,
    _check_layer_map,
)


class PruningStep(CompressionStep):
    """Magnitude pruning (``tfmot.sparsity.keras.prune_low_magnitude``).

    Args:
        target_sparsity: Fraction of each wrapped kernel set to zero, in (0, 1).
        schedule: ``"polynomial"`` (``PolynomialDecay`` from
            ``initial_sparsity`` to the target) or ``"constant"``
            (``ConstantSparsity``).
        initial_sparsity: Start of the polynomial schedule, below the target.
        begin_step: Training step at which pruning starts.
        end_step: Step at which the target is reached; None means the end of
            this stage's fine-tuning (set by `resolve`).
        frequency: Steps between mask updates; None means about 20 updates
            over the stage (set by `resolve`).
        layer_sparsity: Per-layer targets overriding ``target_sparsity``; 0
            leaves a layer dense.
        m_by_n: ``(m, n)`` structured sparsity, e.g. ``(2, 4)``: m zeros in
            every block of n weights (TF-MOT's ``sparsity_m_by_n``).
        epochs: Fine-tuning epochs of the stage.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Layers never pruned.
        skip_unsupported: Leave layers TF-MOT cannot prune dense instead of
            raising.

    Raises:
        ValueError: For any argument outside its documented range.
    """

    kind: ClassVar[str] = "prune"
    per_layer_attr: ClassVar[str] = "layer_sparsity"

    def __init__(
        self,
        target_sparsity: float = 0.8,
        *,
        schedule: str = "polynomial",
        initial_sparsity: float = 0.0,
        begin_step: int = 0,
        end_step: int | None = None,
        frequency: int | None = None,
        layer_sparsity: Mapping[str, float] | None = None,
        m_by_n: Sequence[int] | None = None,
        epochs: int = 2,
        learning_rate: float | None = None,
        skip_layers: Sequence[str] = (),
        skip_unsupported: bool = False,
    ):
        super().__init__(epochs=epochs, learning_rate=learning_rate, skip_layers=skip_layers,
                         skip_unsupported=skip_unsupported)
        self.target_sparsity = _check_fraction("target_sparsity", target_sparsity,
                                               allow_zero=False)
        if schedule not in SCHEDULES:
            raise ValueError(f"Received: schedule={schedule!r}; expected one of {SCHEDULES}.")
        self.schedule = schedule
        self.initial_sparsity = _check_fraction("initial_sparsity", initial_sparsity)
        if schedule == "polynomial" and self.initial_sparsity >= self.target_sparsity:
            raise ValueError(
                f"Received: initial_sparsity={initial_sparsity!r}; expected it below "
                f"target_sparsity={target_sparsity!r} for a polynomial schedule."
            )
        self.begin_step = check_positive_int("begin_step", begin_step, minimum=0)
        if end_step is not None:
            check_positive_int("end_step", end_step, minimum=0)
            if end_step <= begin_step:
                raise ValueError(
                    f"Received: begin_step={begin_step!r}, end_step={end_step!r}; expected "
                    "begin_step < end_step."
                )
        self.end_step = end_step
        self.frequency = None if frequency is None else check_positive_int("frequency", frequency)
        self.layer_sparsity = _check_layer_map("layer_sparsity", layer_sparsity,
                                               _check_fraction, "sparsities")
        if m_by_n is not None:
            ok = (
                isinstance(m_by_n, Sequence) and len(m_by_n) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in m_by_n)
                and 0 < m_by_n[0] < m_by_n[1]
            )
            if not ok:
                shown = tuple(m_by_n) if isinstance(m_by_n, Sequence) else m_by_n
                raise ValueError(
                    f"Received: m_by_n={shown!r}; "
                    "expected a pair (m, n) of integers with 0 < m < n, e.g. (2, 4)."
                )
            m_by_n = (int(m_by_n[0]), int(m_by_n[1]))
        self.m_by_n = m_by_n

    def sparsity_of(self, layer_name: str) -> float:
        """The target sparsity of one layer (its override, or the global target)."""
        if self.m_by_n is not None:
            return self.m_by_n[0] / self.m_by_n[1]
        return self.layer_sparsity.get(layer_name, self.target_sparsity)

    def selects(self, layer: keras.layers.Layer) -> bool:
        """Whether ``layer`` is pruned (has weights, not skipped, target > 0)."""
        return super().selects(layer) and self.sparsity_of(layer.name) > 0

    def supports(self, layer: keras.layers.Layer) -> bool:
        """Whether TF-MOT can prune ``layer``."""
        return isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or (
            prune_registry.PruneRegistry.supports(layer)
        )

    def resolve(self, steps_per_epoch: int) -> PruningStep:
        """Return a copy whose unset ``end_step`` / ``frequency`` fit this stage.

        Args:
            steps_per_epoch: Optimizer steps per fine-tuning epoch.

        Returns:
            The resolved step.
        """
        total = max(1, self.epochs * check_positive_int("steps_per_epoch", steps_per_epoch))
        config = self.get_config()
        if config["end_step"] is None:
            # Reach the target after 3/4 of the stage; the rest recovers accuracy.
            config["end_step"] = max(self.begin_step + 1, self.begin_step + (3 * total) // 4)
        if config["frequency"] is None:
            config["frequency"] = max(1, (config["end_step"] - self.begin_step) // 20)
        return PruningStep.from_config(config)

    def _schedule(self, sparsity: float):
        end_step = -1 if self.end_step is None else self.end_step
        frequency = self.frequency or 100
        if self.schedule == "constant":
            return tfmot.sparsity.keras.ConstantSparsity(
                sparsity, begin_step=self.begin_step, end_step=end_step, frequency=frequency)
        if self.end_step is None:
            raise ValueError(
                "Received: end_step=None with schedule='polynomial'; expected an end step "
                "(or use CompressionPlan.run, which sets it from the fine-tuning length)."
            )
        initial = min(self.initial_sparsity, sparsity / 2)
        return tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=initial, final_sparsity=sparsity, begin_step=self.begin_step,
            end_step=self.end_step, frequency=frequency)

    def wrap(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Wrap ``layer`` in ``PruneLowMagnitude`` with its own schedule."""
        kwargs: dict[str, Any] = {"pruning_schedule": self._schedule(self.sparsity_of(layer.name))}
        if self.m_by_n is not None:
            kwargs["sparsity_m_by_n"] = self.m_by_n
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """``UpdatePruningStep``: advances the schedules every batch."""
        return [tfmot.sparsity.keras.UpdatePruningStep()]

    def strip(self, model: keras.Model) -> keras.Model:
        """Remove the pruning wrappers (the zeros stay)."""
        return tfmot.sparsity.keras.strip_pruning(model)

    def target(self) -> dict[str, Any]:
        """The promised sparsity (global, per layer, or M:N)."""
        return {"sparsity": self.target_sparsity, "layer_sparsity": dict(self.layer_sparsity),
                "m_by_n": self.m_by_n}

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values."""
        return {
            "target_sparsity": self.target_sparsity,
            "schedule": self.schedule,
            "initial_sparsity": self.initial_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
            "layer_sparsity": dict(self.layer_sparsity),
            "m_by_n": None if self.m_by_n is None else list(self.m_by_n),
            **self.base_config(),
        }
