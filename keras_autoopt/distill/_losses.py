"""Distillation losses: response (softened outputs) and feature (intermediate layers)."""

from __future__ import annotations

from typing import Any

from keras_autoopt._backend import keras, tf

OUTPUT_KINDS = ("auto", "logits", "probabilities")
_EPS = 1e-7


def _check_output_kind(name: str, value: Any) -> str:
    if value not in OUTPUT_KINDS:
        raise ValueError(f"Received: {name}={value!r}; expected one of {OUTPUT_KINDS}.")
    return value


def check_temperature(value: Any) -> float:
    """Return ``value`` as a float if it is a positive number, else raise.

    Raises:
        ValueError: For a temperature <= 0 or not a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Received: temperature={value!r}; expected a positive number.")
    return float(value)


def as_logits(outputs: tf.Tensor, kind: str) -> tf.Tensor:
    """Logits from model outputs: as they are, or ``log(p)`` for probabilities.

    ``softmax(log(p) / T)`` equals the probabilities softened by ``T``, so
    models ending in a softmax distil exactly like models ending in logits.

    Args:
        outputs: The outputs.
        kind: ``"logits"`` or ``"probabilities"``.

    Returns:
        Logits.
    """
    if kind == "probabilities":
        # log(p + eps), not log(clip(p)): clipping would cut the gradient of a
        # student that gives the teacher's class almost no probability.
        return tf.math.log(tf.cast(outputs, tf.float32) + _EPS)
    return tf.cast(outputs, tf.float32)


class LogitsDistillation:
    """Response distillation: KL(teacher || student) on temperature-softened outputs, x T².

    The T² factor (Hinton et al.) keeps the gradient scale of the soft term
    independent of the temperature.

    Args:
        temperature: Softening temperature (> 0).
        loss: ``"kl_divergence"`` or ``"categorical_crossentropy"`` on the
            softened distributions.
    """

    kind = "logits"
    LOSSES = ("kl_divergence", "categorical_crossentropy")

    def __init__(self, temperature: float = 3.0, loss: str = "kl_divergence"):
        self.temperature = check_temperature(temperature)
        if loss not in self.LOSSES:
            raise ValueError(f"Received: loss={loss!r}; expected one of {self.LOSSES}.")
        self.loss = loss

    def compute(self, teacher_logits: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
        """The batch-mean loss between teacher and student logits.

        Args:
            teacher_logits: Teacher logits ``(batch, classes)``.
            student_logits: Student logits ``(batch, classes)``.

        Returns:
            A scalar tensor.
        """
        t = self.temperature
        p_teacher = tf.nn.softmax(teacher_logits / t, axis=-1)
        log_p_student = tf.nn.log_softmax(student_logits / t, axis=-1)
        cross = -tf.reduce_sum(p_teacher * log_p_student, axis=-1)
        if self.loss == "kl_divergence":
            entropy = -tf.reduce_sum(
                p_teacher * tf.math.log(tf.clip_by_value(p_teacher, _EPS, 1.0)), axis=-1)
            cross = cross - entropy
        return tf.reduce_mean(cross) * t * t

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"temperature": self.temperature, "loss": self.loss}


class FeatureDistillation:
    """Feature distillation: match a student layer's output to a teacher layer's output.

    When the shapes differ, a learned projection maps the student features to
    the teacher's shape: a Dense layer for flat features, a 1x1 convolution
    for feature maps of the same spatial size. The projection trains with
    the student and is not part of the exported student.

    Args:
        teacher_layer: Name of the teacher layer.
        student_layer: Name of the student layer.
        loss: ``"mse"`` or ``"cosine"``.
    """

    kind = "feature"
    LOSSES = ("mse", "cosine")

    def __init__(self, teacher_layer: str, student_layer: str, loss: str = "mse"):
        for name, value in (("teacher_layer", teacher_layer), ("student_layer", student_layer)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"Received: {name}={value!r}; expected a layer name.")
        if loss not in self.LOSSES:
            raise ValueError(f"Received: loss={loss!r}; expected one of {self.LOSSES}.")
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer
        self.loss = loss

    def compute(self, teacher_features: tf.Tensor, student_features: tf.Tensor) -> tf.Tensor:
        """The batch-mean loss between (projected) student and teacher features."""
        t = tf.reshape(tf.cast(teacher_features, tf.float32), [tf.shape(teacher_features)[0], -1])
        s = tf.reshape(tf.cast(student_features, tf.float32), [tf.shape(student_features)[0], -1])
        if self.loss == "mse":
            return tf.reduce_mean(tf.square(t - s))
        t = tf.math.l2_normalize(t, axis=-1)
        s = tf.math.l2_normalize(s, axis=-1)
        return tf.reduce_mean(1.0 - tf.reduce_sum(t * s, axis=-1))

    def make_projection(self, student_shape: tuple, teacher_shape: tuple
                        ) -> keras.layers.Layer | None:
        """A projection from the student's feature shape to the teacher's, or None.

        Raises:
            ValueError: If no projection can map the shapes.
        """
        student_shape, teacher_shape = tuple(student_shape[1:]), tuple(teacher_shape[1:])
        if student_shape == teacher_shape:
            return None
        if len(student_shape) == 1 and len(teacher_shape) == 1:
            return keras.layers.Dense(teacher_shape[0], name=f"projection_{self.student_layer}")
        if len(student_shape) == 3 and len(teacher_shape) == 3 and \
                student_shape[:2] == teacher_shape[:2]:
            return keras.layers.Conv2D(teacher_shape[2], 1,
                                       name=f"projection_{self.student_layer}")
        raise ValueError(
            f"Received: student layer '{self.student_layer}' with output shape "
            f"{student_shape} and teacher layer '{self.teacher_layer}' with {teacher_shape}; "
            "expected equal shapes, flat features, or feature maps of the same spatial size "
            "(a Dense or 1x1 Conv projection maps those)."
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"teacher_layer": self.teacher_layer, "student_layer": self.student_layer,
                "loss": self.loss}


LOSS_TYPES = {"logits": LogitsDistillation, "feature": FeatureDistillation}


def serialize_loss(loss) -> dict[str, Any]:
    """``{"type": ..., "config": ...}`` of a distillation loss."""
    return {"type": loss.kind, "config": loss.get_config()}


def deserialize_loss(config: dict[str, Any]):
    """Rebuild a distillation loss from `serialize_loss` output.

    Raises:
        ValueError: For an unknown type.
    """
    kind = config.get("type")
    if kind not in LOSS_TYPES:
        raise ValueError(f"Received: loss type {kind!r}; expected one of {tuple(LOSS_TYPES)}.")
    return LOSS_TYPES[kind](**config.get("config", {}))
