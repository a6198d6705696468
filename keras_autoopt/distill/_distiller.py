"""`Distiller`: a tf_keras Model that trains a student from a frozen teacher."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_autoopt._backend import keras, tf
from keras_autoopt._graph import check_graph_model
from keras_autoopt.distill._losses import (
    FeatureDistillation,
    LogitsDistillation,
    _check_output_kind,
    as_logits,
    check_temperature,
    deserialize_loss,
    serialize_loss,
)
from keras_autoopt.load import as_tf_keras

#: Teacher accuracy on the first training samples at or below this multiple of
#: chance makes `Distiller.fit` warn that the teacher looks untrained.
UNTRAINED_TEACHER_FACTOR = 1.5


def _output_kind(model: keras.Model, declared: str, role: str) -> str:
    """Resolve ``auto`` and check a declared kind against the model's outputs.

    Raises:
        ValueError: When the declared kind contradicts the outputs.
    """
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    sample = model(np.zeros((4, *model.input_shape[1:]), "float32"), training=False).numpy()
    sums_to_one = bool(np.all(sample >= 0) and np.allclose(sample.sum(axis=-1), 1.0, atol=1e-3))
    looks_like = "probabilities" if activation == "softmax" or sums_to_one else "logits"
    if declared == "auto":
        return looks_like
    if declared != looks_like:
        raise ValueError(
            f"Received: {role}_outputs={declared!r}; expected {looks_like!r}: the {role}'s "
            f"last layer '{last.name}' has activation {activation!r} and its outputs "
            f"{'sum' if sums_to_one else 'do not sum'} to 1.")
    return declared


class Distiller(keras.Model):
    """Knowledge distillation from a frozen teacher into a student, as a tf_keras Model.

    ``fit`` trains the student on ``alpha * student_loss + (1 - alpha) *
    sum(weight_i * distillation_loss_i)``; ``evaluate`` and ``predict`` use the
    student alone; the teacher never trains. The trained student is
    ``distiller.student``: save and export it on its own.

    Distillation losses (several at once, weighted): `LogitsDistillation`
    (KL on temperature-softened outputs, x T²) and `FeatureDistillation`
    (named intermediate layers, with a learned projection when shapes
    differ). Outputs may be logits or probabilities (``teacher_outputs`` /
    ``student_outputs``, checked against the models; ``"auto"`` detects).

    Caching: ``fit(..., cache_teacher=True)`` computes the teacher's outputs
    once for NumPy inputs and reuses them every epoch, so distillation costs
    about as much as training the student alone. It is only valid when the
    inputs are the same every epoch: not with random augmentation inside the
    input pipeline (the teacher would see other images than the student).

    Consistent augmentation ("function matching", Beyer et al. 2022):
    ``augmentation`` is a tf_keras layer (``GaussianNoise``,
    ``RandomTranslation``, a ``Sequential`` of them, or a ``Lambda``) applied
    with ``training=True`` to every training batch before *both* teacher and
    student see it, so the student matches the teacher on inputs the labels
    never covered. It draws new inputs every step, so it cannot be combined
    with ``cache_teacher``.

    Compression composes: wrap the student with a `CompressionPlan` first and
    pass ``plan.callbacks()`` to ``Distiller.fit``.

    Keras 3 models: a Keras 3 teacher or student is converted to tf_keras
    exactly (`keras_autoopt.load.convert_keras3_model`); the student that
    trains is then the converted one, ``distiller.student``, and
    `keras_autoopt.load.copy_weights_to_keras3` gives its weights back to the
    Keras 3 model.

    Args:
        teacher: The trained teacher (frozen here).
        student: The student (Sequential or functional).
        distillation_losses: A loss or a list of losses; None means one
            `LogitsDistillation` set by `compile` (its ``temperature``).
        distillation_loss_weights: One non-negative weight per loss; None
            means 1 each.
        teacher_outputs: ``"auto"``, ``"logits"`` or ``"probabilities"``.
        student_outputs: Likewise for the student.
        augmentation: None, or a tf_keras Layer applied to each training
            batch (``training=True``) before teacher and student.
        name: The model's name.

    Raises:
        ValueError: Teacher and student with different input or output
            shapes, unknown layer names, bad weights or flags.
    """

    def __init__(self, teacher: keras.Model, student: keras.Model,
                 distillation_losses=None, distillation_loss_weights: Sequence[float] | None = None,
                 teacher_outputs: str = "auto", student_outputs: str = "auto",
                 augmentation: keras.layers.Layer | None = None,
                 name: str = "distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        # Keras 3 models are converted exactly; the student trained is ``self.student``.
        teacher, _ = as_tf_keras(teacher, arg="teacher")
        student, _ = as_tf_keras(student, arg="student")
        why = "its layers' outputs are needed for distillation"
        check_graph_model("teacher", teacher, why)
        check_graph_model("student", student, why)
        if tuple(teacher.output_shape[1:]) != tuple(student.output_shape[1:]):
            raise ValueError(
                f"Received: teacher output shape {tuple(teacher.output_shape[1:])} and student "
                f"output shape {tuple(student.output_shape[1:])}; expected the same shape.")
        if tuple(teacher.input_shape[1:]) != tuple(student.input_shape[1:]):
            raise ValueError(
                f"Received: teacher input shape {tuple(teacher.input_shape[1:])} and student "
                f"input shape {tuple(student.input_shape[1:])}; expected the same shape.")
        if augmentation is not None and not isinstance(augmentation, keras.layers.Layer):
            raise ValueError(
                f"Received: augmentation of type {type(augmentation).__name__}; expected None "
                "or a tf_keras Layer (wrap a function in keras.layers.Lambda).")
        self.augmentation = augmentation
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.teacher_outputs = _output_kind(
            teacher, _check_output_kind("teacher_outputs", teacher_outputs), "teacher")
        self.student_outputs = _output_kind(
            student, _check_output_kind("student_outputs", student_outputs), "student")
        self._explicit_losses = distillation_losses is not None
        self._set_losses(distillation_losses, distillation_loss_weights)
        self.alpha = 0.1
        self.student_loss_fn = None
        self.student_loss_name = None
        self._cached = False
        #: Default of ``fit(cache_teacher=...)`` (set by `DistillationHyperModel`).
        self.cache_teacher = False
        self._loss_tracker = keras.metrics.Mean(name="loss")
        self._student_tracker = keras.metrics.Mean(name="student_loss")
        self._distill_tracker = keras.metrics.Mean(name="distillation_loss")

    # -- configuration ------------------------------------------------------------------
    def _set_losses(self, losses, weights) -> None:
        if losses is None:
            losses = []
        elif not isinstance(losses, (list, tuple)):
            losses = [losses]
        for loss in losses:
            if not isinstance(loss, (LogitsDistillation, FeatureDistillation)):
                raise ValueError(
                    f"Received: distillation loss {loss!r}; expected LogitsDistillation or "
                    "FeatureDistillation.")
        if weights is None:
            weights = [1.0] * len(losses)
        weights = list(weights)
        if len(weights) != len(losses) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
                and math.isfinite(w) for w in weights):
            raise ValueError(
                f"Received: distillation_loss_weights={weights!r}; expected {len(losses)} "
                "non-negative numbers, one per distillation loss.")
        self.distillation_losses = list(losses)
        self.distillation_loss_weights = [float(w) for w in weights]
        self._build_extractors()

    def _build_extractors(self) -> None:
        features = [loss for loss in self.distillation_losses
                    if isinstance(loss, FeatureDistillation)]
        for loss in features:
            for role, model, layer in (("teacher", self.teacher, loss.teacher_layer),
                                       ("student", self.student, loss.student_layer)):
                names = [lyr.name for lyr in model.layers]
                if layer not in names:
                    raise ValueError(
                        f"Received: {role}_layer={layer!r}; expected one of the {role}'s "
                        f"layers: {names}.")
        self._teacher_multi = keras.Model(
            self.teacher.inputs,
            [self.teacher.output, *[self.teacher.get_layer(f.teacher_layer).output
                                    for f in features]])
        self._student_multi = keras.Model(
            self.student.inputs,
            [self.student.output, *[self.student.get_layer(f.student_layer).output
                                    for f in features]])
        self._projections = []
        for loss in features:
            projection = loss.make_projection(
                self.student.get_layer(loss.student_layer).output.shape,
                self.teacher.get_layer(loss.teacher_layer).output.shape)
            self._projections.append(projection)

    def compile(self, optimizer="adam", metrics=None,
                student_loss="sparse_categorical_crossentropy", distillation_loss=None,
                alpha: float = 0.1, temperature: float | None = None, **kwargs):
        """Configure training.

        Args:
            optimizer: The optimizer (of the student and any projections).
            metrics: Metrics of the student's outputs (e.g. ``["accuracy"]``).
            student_loss: The supervised loss on the labels.
            distillation_loss: A loss (or list) replacing the constructor's.
            alpha: Weight of the student loss in [0, 1]; ``1 - alpha`` weighs
                the distillation losses.
            temperature: Temperature of the default `LogitsDistillation`, or
                of the given one(s) when set; None keeps theirs (default 3).
            **kwargs: Further ``Model.compile`` arguments.

        Raises:
            ValueError: For alpha outside [0, 1] or a temperature <= 0.
        """
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"Received: alpha={alpha!r}; expected a float in [0, 1].")
        if temperature is not None:
            temperature = check_temperature(temperature)
        if distillation_loss is not None:
            self._set_losses(distillation_loss, None)
        elif not self.distillation_losses:
            self._set_losses([LogitsDistillation(temperature or 3.0)], None)
        if temperature is not None:
            for loss in self.distillation_losses:
                if isinstance(loss, LogitsDistillation):
                    loss.temperature = temperature
        self.alpha = float(alpha)
        self.student_loss_name = student_loss if isinstance(student_loss, str) else None
        self.student_loss_fn = keras.losses.get(student_loss)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    @property
    def temperature(self) -> float | None:
        """The temperature of the first `LogitsDistillation`, if any."""
        return next((loss.temperature for loss in self.distillation_losses
                     if isinstance(loss, LogitsDistillation)), None)

    @property
    def metrics(self):
        """Total, student and distillation losses, then the compiled metrics."""
        own = [self._loss_tracker, self._student_tracker, self._distill_tracker]
        return [*own, *(m for m in super().metrics if all(m is not o for o in own))]

    # -- forward ------------------------------------------------------------------------
    def call(self, inputs, training=False):
        """The student's outputs: ``predict`` and ``evaluate`` use the student alone."""
        return self.student(inputs, training=training)

    def _distillation_loss(self, teacher_list, student_list):
        total = tf.constant(0.0)
        feature_index = 0
        for loss, weight in zip(self.distillation_losses, self.distillation_loss_weights,
                                strict=True):
            if isinstance(loss, LogitsDistillation):
                value = loss.compute(as_logits(teacher_list[0], self.teacher_outputs),
                                     as_logits(student_list[0], self.student_outputs))
            else:
                feature_index += 1
                student_features = student_list[feature_index]
                projection = self._projections[feature_index - 1]
                if projection is not None:
                    student_features = projection(student_features)
                value = loss.compute(tf.stop_gradient(teacher_list[feature_index]),
                                     student_features)
            total = total + weight * value
        return total

    def _student_variables(self):
        variables = list(self.student.trainable_variables)
        for projection in self._projections:
            if projection is not None:
                variables += projection.trainable_variables
        return variables

    def train_step(self, data):
        """One step: student loss and distillation losses, gradients to the student."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self._cached:
            x, teacher_list = x[0], list(x[1:])
        else:
            if self.augmentation is not None:
                x = self.augmentation(x, training=True)
            teacher_list = self._teacher_multi(x, training=False)
            teacher_list = teacher_list if isinstance(teacher_list, list) else [teacher_list]
        with tf.GradientTape() as tape:
            student_list = self._student_multi(x, training=True)
            student_list = student_list if isinstance(student_list, list) else [student_list]
            student_loss = self.student_loss_fn(y, student_list[0])
            if sample_weight is not None:
                student_loss = student_loss * tf.cast(sample_weight, student_loss.dtype)
            student_loss = tf.reduce_mean(student_loss) + tf.add_n(
                [tf.constant(0.0), *self.student.losses])
            distill = self._distillation_loss(teacher_list, student_list)
            total = self.alpha * student_loss + (1.0 - self.alpha) * distill
            scaled = self.optimizer.get_scaled_loss(total) if hasattr(
                self.optimizer, "get_scaled_loss") else total
        variables = self._student_variables()
        gradients = tape.gradient(scaled, variables)
        if hasattr(self.optimizer, "get_unscaled_gradients"):
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self._loss_tracker.update_state(total)
        self._student_tracker.update_state(student_loss)
        self._distill_tracker.update_state(distill)
        self.compiled_metrics.update_state(y, student_list[0], sample_weight)
        return {metric.name: metric.result() for metric in self.metrics}

    def test_step(self, data):
        """Evaluate the student alone: ``loss`` is its supervised loss."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self.student(x, training=False)
        student_loss = tf.reduce_mean(self.student_loss_fn(y, outputs))
        self._loss_tracker.update_state(student_loss)
        self._student_tracker.update_state(student_loss)
        self.compiled_metrics.update_state(y, outputs, sample_weight)
        return {metric.name: metric.result() for metric in self.metrics
                if metric is not self._distill_tracker}

    # -- fit with caching and the teacher check -------------------------------------------
    def teacher_outputs_for(self, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
        """The teacher's outputs (and distilled features) for ``x``, computed once."""
        outputs = self._teacher_multi.predict(x, batch_size=batch_size, verbose=0)
        return outputs if isinstance(outputs, list) else [outputs]

    def fit(self, x=None, y=None, *args, cache_teacher: bool | None = None, **kwargs):
        """``Model.fit``, with optional caching of the teacher's outputs.

        Args:
            x: Inputs (NumPy when ``cache_teacher``).
            y: Labels.
            *args: Further positional ``Model.fit`` arguments.
            cache_teacher: Compute the teacher's outputs once for ``x`` and
                reuse them every epoch (valid only without augmentation); None
                means the ``cache_teacher`` attribute (False by default).
            **kwargs: Further ``Model.fit`` arguments.

        Returns:
            The ``History``.

        Raises:
            ValueError: Before training, if not compiled, or caching is asked
                for inputs that are not a NumPy array.
        """
        if self.student_loss_fn is None:
            raise ValueError("Received: fit() before compile(); expected compile() first.")
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            self._warn_if_teacher_untrained(x, y)
        if cache_teacher is None:
            cache_teacher = self.cache_teacher
        if not cache_teacher:
            return super().fit(x, y, *args, **kwargs)
        if self.augmentation is not None:
            raise ValueError(
                f"Received: cache_teacher=True with augmentation={self.augmentation.name!r}; "
                "expected cache_teacher=False: augmented inputs change every step, so cached "
                "teacher outputs would describe other images than the student sees.")
        if not isinstance(x, np.ndarray):
            raise ValueError(
                f"Received: cache_teacher=True with x of type {type(x).__name__}; expected a "
                "NumPy array (a fixed data set: caching is wrong with augmentation).")
        packed = [x, *self.teacher_outputs_for(x)]
        self._cached = True
        self.train_function = None
        try:
            return super().fit(packed, y, *args, **kwargs)
        finally:
            self._cached = False
            self.train_function = None

    def _warn_if_teacher_untrained(self, x: np.ndarray, y: np.ndarray) -> None:
        n = min(len(x), 512)
        outputs = self.teacher.predict(x[:n], batch_size=256, verbose=0)
        labels = y[:n].argmax(-1) if y.ndim > 1 else y[:n]
        accuracy = float(np.mean(outputs.argmax(-1) == labels.reshape(-1)))
        chance = 1.0 / outputs.shape[-1]
        if accuracy <= UNTRAINED_TEACHER_FACTOR * chance:
            warnings.warn(
                f"The teacher classifies {accuracy:.1%} of the first {n} training samples "
                f"(chance: {chance:.1%}); is it trained? Distilling an untrained teacher "
                "teaches noise.", stacklevel=2)

    # -- serialization ------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Teacher and student architectures, losses, weights and flags (no weights)."""
        return {
            "teacher": keras.layers.serialize(self.teacher),
            "student": keras.layers.serialize(self.student),
            "distillation_losses": [serialize_loss(loss) for loss in self.distillation_losses],
            "distillation_loss_weights": list(self.distillation_loss_weights),
            "teacher_outputs": self.teacher_outputs,
            "student_outputs": self.student_outputs,
            "augmentation": None if self.augmentation is None
            else keras.layers.serialize(self.augmentation),
            "alpha": self.alpha,
            "student_loss": self.student_loss_name,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> Distiller:
        """Rebuild a distiller (architectures only: load weights separately)."""
        config = dict(config)
        teacher = keras.layers.deserialize(config.pop("teacher"), custom_objects=custom_objects)
        student = keras.layers.deserialize(config.pop("student"), custom_objects=custom_objects)
        losses = [deserialize_loss(c) for c in config.pop("distillation_losses")]
        augmentation = config.pop("augmentation", None)
        if augmentation is not None:
            config["augmentation"] = keras.layers.deserialize(
                augmentation, custom_objects=custom_objects)
        alpha = config.pop("alpha", 0.1)
        student_loss = config.pop("student_loss", None)
        distiller = cls(teacher, student, distillation_losses=losses or None, **config)
        distiller.alpha = alpha
        if student_loss is not None:
            distiller.student_loss_name = student_loss
        return distiller
