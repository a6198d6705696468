"""`DistillationHyperModel`: search the student, the temperature and alpha with keras-tuner."""

from __future__ import annotations

from collections.abc import Sequence

from keras_autoopt._backend import keras, kt
from keras_autoopt._checks import check_float_range
from keras_autoopt.distill._distiller import Distiller


class DistillationHyperModel(kt.HyperModel):
    """Every trial distils a frozen teacher into a student sampled from another HyperModel.

    Hyperparameters: the student's (from ``student_hypermodel``, including its
    optimizer space), ``temperature`` (log-uniform) and ``alpha``. ``fit``
    trains with the student HyperModel's ``fit`` (batch size, epochs,
    schedule), so the search objective (``val_accuracy``) is the student's.

    Args:
        teacher: The trained teacher.
        student_hypermodel: A HyperModel whose ``build`` returns a compiled
            student (its optimizer is reused).
        temperature: ``(low, high)`` of the temperature, > 0.
        alpha: ``(low, high)`` of the student-loss weight in [0, 1].
        cache_teacher: Cache the teacher's outputs (NumPy inputs, no
            augmentation); None means cache unless ``augmentation`` is set.
        augmentation: None, or a tf_keras Layer applied to each training
            batch before teacher and student (see `Distiller`); it requires
            ``cache_teacher=False``.

    Raises:
        ValueError: For bad ranges or types.
    """

    def __init__(self, teacher: keras.Model, student_hypermodel: kt.HyperModel, *,
                 temperature: Sequence[float] = (1.0, 10.0),
                 alpha: Sequence[float] = (0.0, 0.5), cache_teacher: bool | None = None,
                 augmentation: keras.layers.Layer | None = None):
        super().__init__(name="distillation", tunable=True)
        if not isinstance(teacher, keras.Model):
            raise ValueError(
                f"Received: teacher of type {type(teacher).__name__}; expected a tf_keras Model.")
        if not isinstance(student_hypermodel, kt.HyperModel):
            raise ValueError(
                f"Received: student_hypermodel={student_hypermodel!r}; expected a "
                "keras_tuner.HyperModel.")
        self.teacher = teacher
        self.student_hypermodel = student_hypermodel
        self.temperature = check_float_range("temperature", temperature, low=0.0, high=100.0,
                                            open_low=True)
        self.alpha = check_float_range("alpha", alpha, low=0.0, high=1.0)
        if cache_teacher is None:
            cache_teacher = augmentation is None
        if augmentation is not None and cache_teacher:
            raise ValueError(
                "Received: cache_teacher=True with an augmentation; expected "
                "cache_teacher=False (augmented inputs change every step).")
        self.cache_teacher = bool(cache_teacher)
        self.augmentation = augmentation

    def build(self, hp) -> Distiller:
        """Build the student for ``hp`` and wrap it in a compiled `Distiller`."""
        student = self.student_hypermodel.build(hp)
        low, high = self.temperature
        temperature = hp.Float("temperature", low, high, sampling="log") if low < high \
            else hp.Fixed("temperature", low)
        low, high = self.alpha
        alpha = hp.Float("alpha", low, high) if low < high else hp.Fixed("alpha", low)
        distiller = Distiller(self.teacher, student, augmentation=self.augmentation)
        distiller.cache_teacher = self.cache_teacher
        optimizer = student.optimizer
        distiller.compile(
            optimizer=optimizer.__class__.from_config(optimizer.get_config())
            if optimizer is not None else "adam",
            metrics=["accuracy"], alpha=alpha, temperature=temperature)
        return distiller

    def fit(self, hp, model, *args, **kwargs):
        """Train with the student HyperModel's ``fit`` (batch size, epochs, schedule)."""
        return self.student_hypermodel.fit(hp, model, *args, **kwargs)
