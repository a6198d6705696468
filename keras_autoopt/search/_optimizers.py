"""The optimizer search space: optimizer, learning rate, schedule, clipping, batch, epochs.

`OptimizerSpace` is shared by every HyperModel of the package and usable alone
inside a user's own HyperModel::

    space = OptimizerSpace()

    class MyHyperModel(kt.HyperModel):
        def build(self, hp):
            model = ...
            space.compile(hp, model)
            return model

        def fit(self, hp, model, *args, **kwargs):
            return space.fit(hp, model, *args, **kwargs)

The learning-rate schedule runs per epoch (a ``LearningRateScheduler``
callback added in `fit`), because only `fit` knows how many epochs a trial
trains -- keras-tuner's Hyperband decides that per bracket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from keras_autoopt._backend import keras
from keras_autoopt._checks import (
    check_choices,
    check_float_range,
    check_int_choices,
    check_int_range,
    check_positive_int,
)

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
LR_SCHEDULES = ("constant", "cosine", "exponential", "step")
CLIPPING = ("none", "clipnorm", "clipvalue")

#: Exponential decay ends at this fraction of the initial learning rate.
EXPONENTIAL_FINAL_FRACTION = 0.01


def schedule_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Return the multiplier of the initial learning rate at ``epoch``.

    ``cosine``: half a cosine from 1 to 0 over ``epochs``; ``exponential``: a
    geometric decay that reaches `EXPONENTIAL_FINAL_FRACTION` at the last
    epoch; ``step``: 1, then 0.1 from 50 % and 0.01 from 75 % of the epochs;
    ``constant``: 1.

    Args:
        schedule: One of `LR_SCHEDULES`.
        epoch: Zero-based epoch index.
        epochs: Total number of epochs of the run (>= 1).

    Returns:
        The multiplier.

    Raises:
        ValueError: For an unknown schedule.

    """
    progress = min(max(epoch / max(epochs, 1), 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "exponential":
        return EXPONENTIAL_FINAL_FRACTION**progress
    if schedule == "step":
        return 1.0 if progress < 0.5 else (0.1 if progress < 0.75 else 0.01)
    raise ValueError(f"Received: schedule={schedule!r}; expected one of {LR_SCHEDULES}.")


class OptimizerSpace:
    """Searchable optimizer strategy for keras-tuner HyperModels.

    Hyperparameters it defines (names are stable, so results can be compared
    across runs): ``optimizer``, ``learning_rate`` (log-uniform),
    ``momentum`` and ``nesterov`` (only for SGD), ``lr_schedule``,
    ``clipping``, and in `fit`: ``batch_size`` and ``epochs``.

    Args:
        optimizers: Optimizers to choose from, among `OPTIMIZERS`.
        learning_rate: ``(low, high)`` bounds of the log-uniform learning rate.
        learning_rate_step: Multiplicative step of the learning rate grid, or
            None for a continuous log-uniform range. GridSearch needs a step.
        momentum: ``(low, high)`` bounds of SGD momentum in [0, 1).
        nesterov: Whether SGD uses Nesterov momentum: choices among
            ``(False, True)``.
        lr_schedules: Learning-rate schedules to choose from, among
            `LR_SCHEDULES`.
        clipping: Gradient clipping strategies, among `CLIPPING`.
        clipnorm: The norm used when ``clipping="clipnorm"``.
        clipvalue: The value used when ``clipping="clipvalue"``.
        batch_sizes: Batch sizes to choose from.
        epochs: ``(low, high)`` bounds of the number of epochs.
        epochs_step: Step of the epochs range.

    Raises:
        ValueError: For any argument outside its documented range.

    """

    def __init__(
        self,
        optimizers: Sequence[str] = OPTIMIZERS,
        learning_rate: Sequence[float] = (3e-4, 1e-2),
        learning_rate_step: float | None = None,
        momentum: Sequence[float] = (0.8, 0.95),
        nesterov: Sequence[bool] = (False, True),
        lr_schedules: Sequence[str] = LR_SCHEDULES,
        clipping: Sequence[str] = CLIPPING,
        clipnorm: float = 1.0,
        clipvalue: float = 0.5,
        batch_sizes: Sequence[int] = (32, 64, 128),
        epochs: Sequence[int] = (10, 30),
        epochs_step: int = 5,
    ):
        self.optimizers = check_choices("optimizers", optimizers, allowed=OPTIMIZERS)
        self.learning_rate = check_float_range(
            "learning_rate", learning_rate, low=0.0, high=10.0, open_low=True
        )
        if learning_rate_step is not None and (
            isinstance(learning_rate_step, bool)
            or not isinstance(learning_rate_step, (int, float))
            or not learning_rate_step > 1.0
        ):
            raise ValueError(
                f"Received: learning_rate_step={learning_rate_step!r}; expected None or a "
                "multiplicative step > 1 (e.g. 3.16 for two values a decade)."
            )
        self.learning_rate_step = None if learning_rate_step is None else float(learning_rate_step)
        self.momentum = check_float_range("momentum", momentum, low=0.0, high=0.999)
        self.nesterov = check_choices("nesterov", nesterov, allowed=(False, True))
        self.lr_schedules = check_choices("lr_schedules", lr_schedules, allowed=LR_SCHEDULES)
        self.clipping = check_choices("clipping", clipping, allowed=CLIPPING)
        for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Received: {name}={value!r}; expected a positive number.")
        self.clipnorm = float(clipnorm)
        self.clipvalue = float(clipvalue)
        self.batch_sizes = check_int_choices("batch_sizes", batch_sizes)
        self.epochs = check_int_range("epochs", epochs, minimum=1)
        self.epochs_step = check_positive_int("epochs_step", epochs_step)

    # -- build time -------------------------------------------------------------------------
    def learning_rate_hp(self, hp) -> float:
        """Define (or read) the ``learning_rate`` hyperparameter.

        Args:
            hp: A keras-tuner ``HyperParameters``.

        Returns:
            The sampled learning rate.

        """
        low, high = self.learning_rate
        if low == high:
            return hp.Fixed("learning_rate", low)
        return hp.Float(
            "learning_rate", low, high, sampling="log", step=self.learning_rate_step
        )

    def build_optimizer(self, hp) -> keras.optimizers.Optimizer:
        """Sample an optimizer (with clipping) from ``hp``.

        Args:
            hp: A keras-tuner ``HyperParameters``.

        Returns:
            A tf_keras optimizer instance.

        """
        name = hp.Choice("optimizer", list(self.optimizers))
        learning_rate = self.learning_rate_hp(hp)
        with hp.conditional_scope("optimizer", ["sgd"]):
            momentum = hp.Float("momentum", *self.momentum)
            nesterov = hp.Choice("nesterov", list(self.nesterov))
        clipping = hp.Choice("clipping", list(self.clipping))
        kwargs: dict[str, Any] = {"learning_rate": learning_rate}
        if clipping == "clipnorm":
            kwargs["clipnorm"] = self.clipnorm
        elif clipping == "clipvalue":
            kwargs["clipvalue"] = self.clipvalue
        if name == "adam":
            return keras.optimizers.Adam(**kwargs)
        if name == "sgd":
            return keras.optimizers.SGD(momentum=momentum, nesterov=bool(nesterov), **kwargs)
        if name == "rmsprop":
            return keras.optimizers.RMSprop(**kwargs)
        return keras.optimizers.Adagrad(**kwargs)

    def compile(
        self,
        hp,
        model: keras.Model,
        *,
        loss: str = "sparse_categorical_crossentropy",
        metrics: Sequence[str] = ("accuracy",),
    ) -> keras.Model:
        """Compile ``model`` with an optimizer sampled from ``hp``.

        Args:
            hp: A keras-tuner ``HyperParameters``.
            model: The model to compile.
            loss: The loss.
            metrics: Metric names.

        Returns:
            The same model, compiled.

        """
        hp.Choice("lr_schedule", list(self.lr_schedules))
        model.compile(optimizer=self.build_optimizer(hp), loss=loss, metrics=list(metrics))
        return model

    # -- fit time ---------------------------------------------------------------------------
    def lr_schedule(self, hp, epochs: int) -> Callable[[int, float], float]:
        """Return the per-epoch schedule function for ``LearningRateScheduler``.

        Args:
            hp: The trial's ``HyperParameters`` (after `compile`).
            epochs: Total epochs of the run.

        Returns:
            ``f(epoch, lr) -> lr``.

        """
        schedule = hp.Choice("lr_schedule", list(self.lr_schedules))
        initial = self.learning_rate_hp(hp)

        def fn(epoch: int, lr: float) -> float:
            del lr  # the schedule depends on the epoch only
            return float(initial * schedule_factor(schedule, epoch, epochs))

        return fn

    def fit(self, hp, model: keras.Model, *args, **kwargs) -> keras.callbacks.History:
        """Train ``model`` with the batch size, epochs and schedule of ``hp``.

        ``batch_size`` and ``epochs`` given in ``kwargs`` win over the searched
        ones (Hyperband passes ``epochs``); ``callbacks`` in ``kwargs`` are kept
        and the schedule callback runs before them.

        Args:
            hp: The trial's ``HyperParameters``.
            model: A model compiled by `compile`.
            *args: Positional arguments of ``model.fit``.
            **kwargs: Keyword arguments of ``model.fit``.

        Returns:
            The ``History`` returned by ``model.fit``.

        """
        if "batch_size" not in kwargs:
            kwargs["batch_size"] = hp.Choice("batch_size", list(self.batch_sizes))
        if "epochs" not in kwargs:
            low, high = self.epochs
            kwargs["epochs"] = (
                hp.Fixed("epochs", low)
                if low == high
                else hp.Int("epochs", low, high, step=self.epochs_step)
            )
        # The schedule goes first, so the user's callbacks see this epoch's rate.
        callbacks = [
            keras.callbacks.LearningRateScheduler(self.lr_schedule(hp, kwargs["epochs"])),
            *(kwargs.pop("callbacks", None) or []),
        ]
        return model.fit(*args, callbacks=callbacks, **kwargs)

    # -- serialization ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-friendly values.

        Returns:
            A dict that `from_config` turns back into an equal space.

        """
        return {
            "optimizers": list(self.optimizers),
            "learning_rate": list(self.learning_rate),
            "learning_rate_step": self.learning_rate_step,
            "momentum": list(self.momentum),
            "nesterov": list(self.nesterov),
            "lr_schedules": list(self.lr_schedules),
            "clipping": list(self.clipping),
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "batch_sizes": list(self.batch_sizes),
            "epochs": list(self.epochs),
            "epochs_step": self.epochs_step,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OptimizerSpace:
        """Rebuild a space from `get_config` output.

        Args:
            config: The dict returned by `get_config`.

        Returns:
            A new `OptimizerSpace`.

        """
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OptimizerSpace) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        return f"OptimizerSpace({self.get_config()!r})"
