"""`CompressionHyperModel`: every trial of a keras-tuner search trains with compression."""

from __future__ import annotations

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.compress._plan import CompressionPlan
from keras_autoopt.compress._pruning import PruningStep


class CompressionHyperModel(kt.HyperModel):
    """Wraps a HyperModel so each trial trains its model compressed by a plan's first stage.

    ``build`` builds the inner model and wraps it with ``plan.apply``
    (stage 0: pruning or QAT during training), compiled with the inner
    model's optimizer, loss and metrics; ``fit`` adds ``plan.callbacks()`` to
    the callbacks of the search. The search objective is then measured on the
    compressed model. Later stages of the plan (clustering after pruning)
    need a stripped trained model: run them with `CompressionPlan.run` on the
    best model.

    Args:
        hypermodel: The HyperModel to wrap.
        plan: The compression plan.
        steps_per_epoch: Optimizer steps per epoch, used to end a
            polynomial pruning schedule without ``end_step``; its
            ``epochs`` is then the number of epochs pruning takes.

    Raises:
        ValueError: For bad arguments.
    """

    def __init__(self, hypermodel: kt.HyperModel, plan: CompressionPlan, *,
                 steps_per_epoch: int | None = None):
        super().__init__(name=hypermodel.name, tunable=True)
        if not isinstance(hypermodel, kt.HyperModel):
            raise ValueError(
                f"Received: hypermodel={hypermodel!r}; expected a keras_tuner.HyperModel.")
        if not isinstance(plan, CompressionPlan) or not plan.steps:
            raise ValueError(
                f"Received: plan={plan!r}; expected a CompressionPlan with at least one step.")
        first = plan.steps[0]
        if isinstance(first, PruningStep) and first.schedule == "polynomial" and \
                first.end_step is None:
            if steps_per_epoch is None:
                raise ValueError(
                    "Received: steps_per_epoch=None with a polynomial PruningStep without "
                    "end_step; expected steps_per_epoch (or set end_step).")
            plan.steps[0] = first.resolve(check_positive_int("steps_per_epoch", steps_per_epoch))
        self.hypermodel = hypermodel
        self.plan = plan

    def build(self, hp) -> keras.Model:
        """Build the inner model and wrap it for the plan's first stage."""
        model = self.hypermodel.build(hp)
        wrapped = self.plan.apply(model, 0)
        optimizer = model.optimizer
        wrapped.compile(
            optimizer=optimizer.__class__.from_config(optimizer.get_config())
            if optimizer is not None else "adam",
            loss=model.loss or self.plan.loss,
            metrics=["accuracy"],
        )
        return wrapped

    def fit(self, hp, model, *args, **kwargs):
        """Train with the inner HyperModel's ``fit`` plus the plan's callbacks."""
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), *self.plan.callbacks(0)]
        return self.hypermodel.fit(hp, model, *args, **kwargs)
