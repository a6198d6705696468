"""A failed trial prints one FAILED line, not keras-tuner's traceback, unless debugging."""

import json
import re

import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.search import (
    DEBUG_ENV,
    TrialLogger,
    debug_enabled,
    make_tuner,
    set_debug,
)


@pytest.fixture(autouse=True)
def _debug_off(monkeypatch):
    """No debug mode from the environment or an earlier test; none left behind."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    set_debug(None)
    yield
    set_debug(None)


def _not_fittable():
    raise ValueError("this model cannot fit (on purpose)")


class ThirdsHyperModel(kt.HyperModel):
    """Its 1st trial raises in fit, its 2nd trains, its 3rd diverges (NaN loss)."""

    def __init__(self):
        super().__init__()
        self.fits = 0

    def build(self, hp):
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.Dense(hp.Int("units", 2, 64), activation="relu"),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        return model

    def fit(self, hp, model, x, y, **kwargs):
        self.fits += 1
        if self.fits == 1:
            _not_fittable()
        if self.fits == 3:
            # A NaN sample weight: the loss is NaN on any CPU. (A NaN input is not enough:
            # on an AVX-512 host the fused Dense + ReLU of the compiled train step maps NaN to
            # 0, and the loss stays finite; eager ReLU keeps NaN.)
            weights = np.ones(len(x), "float32")
            weights[0] = np.nan
            kwargs = {**kwargs, "sample_weight": weights}
        return model.fit(x, y, epochs=1, batch_size=16, verbose=0, **kwargs)


def _search(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 4)).astype("float32"), np.arange(48) % 3
    tuner = make_tuner("random", ThirdsHyperModel(), directory=tmp_path, max_trials=3, seed=0,
                       logger=TrialLogger(total=3))
    tuner.search(x, y, validation_data=(x[:12], y[:12]))
    return [tuner.oracle.trials[i] for i in sorted(tuner.oracle.trials)]


def test_failed_trials_print_their_reason_and_no_traceback(tmp_path, capfd):
    trials = _search(tmp_path)
    out, err = capfd.readouterr()
    assert [t.status for t in trials] == ["FAILED", "COMPLETED", "FAILED"]
    assert "[trial 1/3] FAILED: ValueError: this model cannot fit (on purpose) | " in out
    assert "[trial 2/3] val_accuracy=" in out
    assert re.search(r"\[trial 3/3\] FAILED: NonFiniteLossError: Training loss became nan at "
                     r"epoch 1, batch \d+; the trial is stopped", out)
    assert "Traceback" not in out + err
    # The traceback is still kept, in the trial's message (and its trial.json).
    assert trials[0].message.startswith("Traceback (most recent call last):")
    assert "in _not_fittable" in trials[0].message
    stored = json.loads((tmp_path / "search" / "trial_0" / "trial.json").read_text())
    assert stored["message"] == trials[0].message


def test_debug_mode_prints_each_traceback_on_stderr(tmp_path, capfd):
    set_debug(True)
    trials = _search(tmp_path)
    out, err = capfd.readouterr()
    assert "[trial 1/3] FAILED: ValueError: this model cannot fit (on purpose)" in out
    assert "Traceback" not in out
    assert err.count("Traceback (most recent call last):") == 2
    assert f"Trial {trials[0].trial_id} raised (debug mode):\nTraceback" in err
    assert "in _not_fittable" in err and "NonFiniteLossError: Training loss" in err


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), ("", False), ("0", False), ("off", False), ("1", True), ("TRUE", True),
    (" yes ", True),
])
def test_debug_follows_the_environment_until_set(monkeypatch, value, expected):
    if value is not None:
        monkeypatch.setenv(DEBUG_ENV, value)
    assert debug_enabled() is expected
    set_debug(not expected)
    assert debug_enabled() is (not expected)
    set_debug(None)
    assert debug_enabled() is expected


def test_bad_debug_values_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"^Received: enabled='yes'; expected True, False or "
                                         r"None\.$"):
        set_debug("yes")
    monkeypatch.setenv(DEBUG_ENV, "maybe")
    with pytest.raises(ValueError, match=r"^Received: KERAS_AUTOOPT_DEBUG='maybe'; expected one "
                                         r"of 1, true, yes, on \(debug on\), or unset, empty, "
                                         r"0, false, no, off \(debug off\)\.$"):
        debug_enabled()
    # A search refuses it before its first trial.
    hypermodel = ThirdsHyperModel()
    tuner = make_tuner("random", hypermodel, directory=tmp_path, max_trials=1)
    with pytest.raises(ValueError, match=r"Received: KERAS_AUTOOPT_DEBUG='maybe'"):
        tuner.search(np.zeros((8, 4), "float32"), np.zeros(8, "int64"))
    assert hypermodel.fits == 0 and tuner.oracle.trials == {}
