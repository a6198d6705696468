"""`DistillationHyperModel`: search the student, the temperature and alpha with keras-tuner."""

from __future__ import annotations

from collections.abc import Sequence

from keras_autoopt._backend import keras, kt
from keras_autoopt.distill._distiller import Distiller
from keras_autoopt.distill._space import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DistillationSpace
from keras_autoopt.load import as_tf_keras


class DistillationHyperModel(kt.HyperModel):
    """Every trial distils a frozen teacher into a student sampled from another HyperModel.

    Hyperparameters: the student's (from ``student_hypermodel``, including its
    optimizer space), ``temperature`` (log-uniform) and ``alpha`` (a
    `DistillationSpace`, shared with `DeployableTuner`). ``fit``
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
                 temperature: Sequence[float] = DEFAULT_TEMPERATURE,
                 alpha: Sequence[float] = DEFAULT_ALPHA, cache_teacher: bool | None = None,
                 augmentation: keras.layers.Layer | None = None):
        super().__init__(name="distillation", tunable=True)
        teacher, _ = as_tf_keras(teacher, arg="teacher")  # a Keras 3 model is converted exactly
        if not isinstance(teacher, keras.Model):
            raise ValueError(
                f"Received: teacher of type {type(teacher).__name__}; expected a tf_keras or "
                "Keras 3 Model.")
        if not isinstance(student_hypermodel, kt.HyperModel):
            raise ValueError(
                f"Received: student_hypermodel={student_hypermodel!r}; expected a "
                "keras_tuner.HyperModel.")
        self.teacher = teacher
        self.student_hypermodel = student_hypermodel
        self.space = DistillationSpace(temperature, alpha)
        self.temperature = self.space.temperature
        self.alpha = self.space.alpha
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
        return self.space.build(hp, self.teacher, student, cache_teacher=self.cache_teacher,
                                augmentation=self.augmentation)

    def fit(self, hp, model, *args, **kwargs):
        """Train with the student HyperModel's ``fit`` (batch size, epochs, schedule)."""
        return self.student_hypermodel.fit(hp, model, *args, **kwargs)
