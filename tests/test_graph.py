import pytest

from keras_autoopt._backend import keras
from keras_autoopt.compress import PruningStep, with_policy
from keras_autoopt.distill import Distiller


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.dense = keras.layers.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.dense(inputs)


def _functional():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: PruningStep(0.5, schedule="constant").apply(m),
     r"Received: model='sub' of type _Subclassed, a subclassed model; expected a Sequential or "
     r"functional tf_keras model \(TF-MOT cannot wrap subclassed models\)"),
    (lambda m: with_policy(m, "mixed_float16"),
     r"Received: model='sub' .*\(its layers are rebuilt under the policy\)"),
    (lambda m: Distiller(m, _functional()),
     r"Received: teacher='sub' .*\(its layers' outputs are needed for distillation\)"),
])
def test_subclassed_models_are_refused_with_the_reason(call, message):
    model = _Subclassed()
    model(keras.Input((4,)))
    with pytest.raises(ValueError, match=message):
        call(model)


def test_non_models_are_refused():
    with pytest.raises(ValueError, match=r"Received: model of type str; expected a Sequential"):
        PruningStep(0.5, schedule="constant").apply("model.h5")
