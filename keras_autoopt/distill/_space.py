"""`DistillationSpace`: the distillation temperature and alpha as hyperparameters of a trial."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keras_autoopt._backend import keras
from keras_autoopt._checks import check_float_range
from keras_autoopt.distill._distiller import Distiller

#: Default ``(low, high)`` of the searched temperature (log-uniform).
DEFAULT_TEMPERATURE = (1.0, 10.0)
#: Default ``(low, high)`` of the searched student-loss weight alpha.
DEFAULT_ALPHA = (0.0, 0.5)
#: Hyperparameter names of run folders written before the names were shared
#: (`DeployableTuner` called them ``distill_*``) -> today's names.
LEGACY_HYPERPARAMETERS = {"distill_temperature": "temperature", "distill_alpha": "alpha"}


@dataclass(frozen=True)
class DistillationSpace:
    """How a search distils: the ranges of ``temperature`` and ``alpha``.

    Shared by `DistillationHyperModel` and the ``teacher`` of
    `DeployableTuner`, so both search the same hyperparameters under the same
    names. A range whose low equals its high is a fixed value.

    Args:
        temperature: ``(low, high)`` of the temperature, > 0, sampled
            log-uniformly.
        alpha: ``(low, high)`` of the student-loss weight in [0, 1].

    Raises:
        ValueError: For a bad range.
    """

    temperature: Sequence[float] = DEFAULT_TEMPERATURE
    alpha: Sequence[float] = DEFAULT_ALPHA

    def __post_init__(self):
        object.__setattr__(self, "temperature", check_float_range(
            "temperature", self.temperature, low=0.0, high=100.0, open_low=True))
        object.__setattr__(self, "alpha",
                           check_float_range("alpha", self.alpha, low=0.0, high=1.0))

    def sample(self, hp) -> tuple[float, float]:
        """Declare ``temperature`` and ``alpha`` on ``hp``; return this trial's values."""
        low, high = self.temperature
        temperature = hp.Float("temperature", low, high, sampling="log") if low < high \
            else hp.Fixed("temperature", low)
        low, high = self.alpha
        alpha = hp.Float("alpha", low, high) if low < high else hp.Fixed("alpha", low)
        return float(temperature), float(alpha)

    def build(self, hp, teacher: keras.Model, student: keras.Model, *,
              cache_teacher: bool = True,
              augmentation: keras.layers.Layer | None = None) -> Distiller:
        """A compiled `Distiller` of ``teacher`` into ``student`` with ``hp``'s values.

        The distiller's optimizer is a fresh copy of the student's (Adam when
        the student is not compiled).
        """
        temperature, alpha = self.sample(hp)
        distiller = Distiller(teacher, student, augmentation=augmentation)
        distiller.cache_teacher = cache_teacher
        optimizer = student.optimizer
        distiller.compile(
            optimizer=optimizer.__class__.from_config(optimizer.get_config())
            if optimizer is not None else "adam",
            metrics=["accuracy"], alpha=alpha, temperature=temperature)
        return distiller
