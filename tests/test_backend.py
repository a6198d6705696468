"""The backend bridge, each case in a fresh interpreter.

What a user may import before keras_autoopt: ``keras`` (Keras 3), ``tensorflow`` (with
``tf.keras`` used or not), in which case everything runs on tf_keras; ``keras_tuner`` in
its Keras 3 mode is refused with the reason and the fix.
"""

import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, *, legacy_env: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    if legacy_env is not None:
        env["TF_USE_LEGACY_KERAS"] = legacy_env
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_raw_keras_tuner_works_after_import(tmp_path):
    result = _run(f"""
        import numpy as np
        import keras_autoopt
        import keras_tuner
        import tensorflow as tf
        import tf_keras

        assert tf.keras.Model is tf_keras.Model

        def build(hp):
            model = tf.keras.Sequential([
                tf.keras.Input((4,)),
                tf.keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
                tf.keras.layers.Dense(2, activation="softmax"),
            ])
            model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
            return model

        x = np.random.rand(32, 4).astype("float32"); y = (x[:, 0] > 0.5).astype("int64")
        tuner = keras_tuner.RandomSearch(build, objective="val_accuracy", max_trials=2,
                                         directory={str(tmp_path)!r}, project_name="raw")
        tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
        best = tuner.get_best_models(1)[0]
        assert isinstance(best, tf_keras.Model), type(best)
        print("OK", type(best).__module__)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK tf_keras" in result.stdout


def test_environment_variable_is_set_by_import():
    result = _run("""
        import os, keras_autoopt
        print(os.environ["TF_USE_LEGACY_KERAS"])
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "1"


# Everything the package does, run after a user's own imports: a tf_keras model is exported
# (and verified under LiteRT), pruned and QAT fine-tuned by TF-MOT, and searched by keras-tuner.
_END_TO_END = """
    import numpy as np
    import tempfile
    from pathlib import Path

    import keras_autoopt as ka
    import tf_keras
    from keras_autoopt import _backend
    from keras_autoopt.backend import keras, kt, tf
    from keras_autoopt.compress import CompressionPlan, PruningStep, QATStep
    from keras_autoopt.search import DenseHyperModel, OptimizerSpace, make_tuner
    from keras_tuner.src.backend import keras as kt_keras
    from tensorflow_model_optimization.python.core.keras import compat

    assert keras is tf_keras and kt_keras.Model is tf_keras.Model
    assert compat.keras.Model is tf_keras.Model
    print("TF_KERAS", tf.keras.Model.__module__.split(".")[0], _backend.TF_KERAS_IS_KERAS_3)

    out = Path(tempfile.mkdtemp())
    digits = ka.load_dataset("digits")
    data = ka.from_arrays(digits.x_train[:240], digits.y_train[:240], seed=0)
    model = keras.Sequential([keras.Input(data.x_train.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(data.num_classes, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=2, verbose=0)

    exported = ka.export_tflite(model, out / "float.tflite", verify_data=data.x_val)
    assert exported.path.stat().st_size > 1000 and exported.verify_samples > 0
    assert exported.max_abs_diff < 1e-4 and exported.top1_agreement == 1.0, exported

    def fine_tune(step):
        plan = CompressionPlan([step])
        wrapped = plan.apply(model)
        wrapped.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        wrapped.fit(data.x_train[:96], data.y_train[:96], batch_size=32, epochs=1, verbose=0,
                    callbacks=plan.callbacks())
        return plan.strip(wrapped)

    pruned = fine_tune(PruningStep(0.5, schedule="constant", frequency=1, epochs=1))
    kernel = pruned.layers[-2].kernel.numpy()
    assert abs(np.mean(kernel == 0) - 0.5) < 0.01, np.mean(kernel == 0)
    qat = fine_tune(QATStep(epochs=1))
    assert type(qat.layers[-1]).__name__ == "QuantizeWrapperV2", qat.layers
    exported = ka.export_tflite(qat, out / "qat.tflite", verify_data=data.x_val,
                                verify="sanity")
    assert exported.verify_samples > 0 and exported.top1_agreement > 0.5, exported

    space = OptimizerSpace(optimizers=("adam",), epochs=(1, 1), batch_sizes=(32,))
    tuner = make_tuner("random", DenseHyperModel(data.x_train.shape[1:], data.num_classes,
                                                  layers=(1, 1), units=(8,),
                                                  optimizer_space=space),
                       directory=out / "search", max_trials=1, seed=0)
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    assert isinstance(tuner.get_best_models(1)[0], tf_keras.Model)
    assert isinstance(tuner.oracle, kt.Oracle)
    print("END TO END OK")
"""


@pytest.mark.parametrize(("first", "tf_keras_module", "keras3"), [
    # (a) Keras 3 imported first: it imports TensorFlow, tf.keras not used yet.
    ("import keras", "tf_keras", False),
    # (b) TensorFlow imported first without the variable, tf.keras not used yet.
    ("import tensorflow as tf", "tf_keras", False),
    # (c) tf.keras used first: bound to Keras 3 for good, left so; the package uses tf_keras.
    ("import tensorflow as tf\nimport keras\nassert tf.keras.layers.Dense is keras.layers.Dense",
     "keras", True),
])
def test_everything_works_after_keras_3_or_tensorflow_was_imported(first, tf_keras_module, keras3):
    result = _run(first + "\n" + textwrap.dedent(_END_TO_END))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"TF_KERAS {tf_keras_module} {keras3}" in result.stdout
    assert "END TO END OK" in result.stdout


@pytest.mark.parametrize("first", ["import keras", "import tensorflow"])
def test_tensorflow_keras_agrees_with_tf_keras_when_not_used_before(first):
    # TensorFlow imported without the variable would find ``tensorflow.keras`` in Keras 3's files.
    result = _run(f"""
        {first}
        import keras_autoopt.backend
        import tensorflow as tf
        import tensorflow.keras
        from tensorflow.keras import layers
        import tf_keras
        assert tensorflow.keras.Model is tf.keras.Model is tf_keras.Model
        assert layers.Dense is tf_keras.layers.Dense
        print("OK")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_tensorflow_imported_first_with_the_variable_works():
    result = _run("""
        import tensorflow as tf
        import keras_autoopt
        import tf_keras
        assert tf.keras.Model is tf_keras.Model
        print("OK")
    """, legacy_env="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


@pytest.mark.parametrize("legacy_env", [None, "1"])
def test_keras_tuner_imported_first_fails_clearly(legacy_env):
    # (d) keras-tuner took its Keras 3 mode when first imported; it cannot switch.
    result = _run("""
        import os
        import keras_tuner
        try:
            import keras_autoopt
        except ImportError:
            print("VARIABLE", os.environ.get("TF_USE_LEGACY_KERAS"))
            raise
    """, legacy_env=legacy_env)
    assert result.returncode != 0
    assert "ImportError: keras_tuner was imported before keras_autoopt, in its Keras 3 " \
           "(multi-backend) mode, so it rejects tf_keras models" in result.stderr
    assert "Import keras_autoopt before keras_tuner (tensorflow and keras may come first)" \
        in result.stderr
    # Refused before anything was changed.
    assert f"VARIABLE {legacy_env}" in result.stdout


def test_keras_tuner_in_legacy_mode_on_keras_3_is_refused():
    # keras-tuner's legacy mode reads ``tensorflow.keras``: here forced to Keras 3 beforehand.
    result = _run("""
        import sys
        import tensorflow as tf
        import tf_keras
        tf.keras.layers  # binds tf.keras to Keras 3
        keras3, sys.modules["keras"] = sys.modules["keras"], tf_keras
        sys.modules["tensorflow.keras"] = tf.keras
        import keras_tuner
        sys.modules["keras"] = keras3
        import keras_autoopt
    """)
    assert result.returncode != 0
    assert "ImportError: keras_autoopt needs its dependencies on tf_keras, but keras_tuner " \
           "uses keras.src.models.model" in result.stderr
    assert "Import keras_autoopt before keras_tuner" in result.stderr


def test_explicitly_disabled_variable_fails_clearly():
    result = _run("import keras_autoopt", legacy_env="0")
    assert result.returncode != 0
    assert "Received: TF_USE_LEGACY_KERAS='0'; expected unset or one of" in result.stderr
