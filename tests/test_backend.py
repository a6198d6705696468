"""The backend bridge, each case in a fresh interpreter."""

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


@pytest.mark.parametrize("first", ["import tensorflow", "import keras"])
def test_tensorflow_imported_first_without_the_variable_fails_clearly(first):
    result = _run(f"""
        {first}
        import keras_autoopt
    """)
    assert result.returncode != 0
    assert "ImportError: TensorFlow was imported before keras_autoopt without " \
           "TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "set the environment variable TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "import keras_autoopt before tensorflow" in result.stderr


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


def test_keras3_bound_tf_keras_fails_clearly():
    result = _run("""
        import os
        import tensorflow as tf
        tf.keras.layers  # binds tf.keras to Keras 3
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import keras_autoopt
    """)
    assert result.returncode != 0
    assert "ImportError: TensorFlow was imported, and tf.keras bound to Keras 3" in result.stderr


def test_keras_tuner_imported_first_fails_clearly():
    result = _run("""
        import keras_tuner
        import keras_autoopt
    """, legacy_env="1")
    assert result.returncode != 0
    assert "ImportError: keras_tuner was imported in Keras 3 mode before keras_autoopt" \
        in result.stderr
    assert "Import keras_autoopt before keras_tuner" in result.stderr


def test_explicitly_disabled_variable_fails_clearly():
    result = _run("import keras_autoopt", legacy_env="0")
    assert result.returncode != 0
    assert "Received: TF_USE_LEGACY_KERAS='0'; expected unset or one of" in result.stderr
