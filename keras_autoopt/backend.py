"""The tf_keras / keras-tuner / TF-MOT bridge, public.

``from keras_autoopt.backend import keras, kt, tf, tfmot`` gives the modules
the package runs on: ``keras`` is ``tf_keras`` (Keras 2), ``kt`` is keras-tuner
in its ``tf_keras`` mode, ``tfmot`` is TF Model Optimization. See
``keras_autoopt._backend`` (the implementation; this is its public name).
"""

from keras_autoopt._backend import LEGACY_KERAS_ENV, keras, kt, tf, tfmot

__all__ = ["LEGACY_KERAS_ENV", "keras", "kt", "tf", "tfmot"]
