import io

import numpy as np
import pytest

from keras_autoopt._backend import kt
from keras_autoopt.search import (
    TUNERS,
    ConvNetHyperModel,
    OptimizerSpace,
    TrialLogger,
    make_tuner,
)


def _small_hypermodel():
    return ConvNetHyperModel(
        (8, 8, 1), 3, blocks=(1, 2), filters=(4, 8), kernel_sizes=(3,), head_layers=(0, 1),
        head_units=(8,), optimizer_space=OptimizerSpace(
            optimizers=("adam", "sgd"), learning_rate=(1e-3, 1e-2), learning_rate_step=10.0,
            epochs=(1, 2), batch_sizes=(32,)),
    )


# Each tuner name and the keras-tuner search algorithm (oracle) it must run.
ORACLES = {
    "random": kt.oracles.RandomSearchOracle,
    "grid": kt.oracles.GridSearchOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
    "hyperband": kt.oracles.HyperbandOracle,
}


def test_tuner_names():
    assert sorted(TUNERS) == sorted(ORACLES)


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_every_tuner_runs_on_the_hypermodel(name, tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    stream = io.StringIO()
    tuner = make_tuner(name, _small_hypermodel(), directory=tmp_path, max_trials=2,
                       max_epochs=2, seed=1, logger=TrialLogger(2, stream))
    assert type(tuner.oracle) is ORACLES[name]
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) >= 2
    # The best model is the best trial's, at its best epoch: it scores that
    # trial's val_accuracy on the validation data.
    best = tuner.get_best_models(1)[0]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert best_trial.score == max(t.score for t in completed)
    accuracy = float(np.mean(best.predict(xv, verbose=0).argmax(axis=1) == yv))
    assert accuracy == pytest.approx(best_trial.score, abs=1e-6)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(tuner.oracle.trials)
    assert lines[0].startswith("[trial 1/")
    assert "val_accuracy=" in lines[0] and "opt=" in lines[0]


def test_resume_skips_completed_trials(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    first = make_tuner("random", _small_hypermodel(), directory=tmp_path, max_trials=2, seed=3)
    first.search(x, y, validation_data=(xv, yv), verbose=0)
    ids = set(first.oracle.trials)
    again = make_tuner("random", _small_hypermodel(), directory=tmp_path, max_trials=3, seed=3)
    again.search(x, y, validation_data=(xv, yv), verbose=0)
    assert ids < set(again.oracle.trials)
    assert len(again.oracle.trials) == 3


def test_failed_trial_line_gives_the_reason():
    stream = io.StringIO()
    logger = TrialLogger(5, stream)
    trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id="7", status="FAILED")
    trial.message = "Traceback ...\nFailedTrialError: conv_blocks=4 cannot fit"
    logger.trial_begin(trial)
    logger.trial_end(trial, number=2, objective_name="val_accuracy", best=0.5)
    assert stream.getvalue().startswith(
        "[trial 2/5] FAILED: FailedTrialError: conv_blocks=4 cannot fit |")


def test_bad_tuner_arguments(tmp_path):
    hypermodel = _small_hypermodel()
    with pytest.raises(ValueError, match=r"Received: tuner='annealing'; expected one of "
                                         r"\('random', 'grid', 'bayesian', 'hyperband'\)"):
        make_tuner("annealing", hypermodel, directory=tmp_path)
    with pytest.raises(ValueError, match=r"Received: max_trials=0; expected a positive"):
        make_tuner("random", hypermodel, directory=tmp_path, max_trials=0)
    with pytest.raises(ValueError, match=r"Received: hypermodel=42; expected a keras_tuner"):
        make_tuner("random", 42, directory=tmp_path)
    assert not any(tmp_path.iterdir())
