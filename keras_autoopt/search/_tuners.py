"""keras-tuner tuners chosen by name, each printing one line per trial."""

from __future__ import annotations

import os
from typing import Any

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.search._progress import TrialLogger, trial_number
from keras_autoopt.search._reliability import ReliableTunerMixin


class _ProgressMixin:
    """Adds a `TrialLogger` to a keras-tuner tuner; the search itself is unchanged.

    `load_model` also marks the optimizer slots of a trial checkpoint as not
    needed (``expect_partial``): a reloaded best model is for inference and
    export, and TensorFlow otherwise warns about every unrestored slot.
    """

    trial_logger: TrialLogger | None = None

    def on_trial_begin(self, trial):
        if self.trial_logger is not None:
            self.trial_logger.trial_begin(trial)
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.trial_logger is not None:
            best = self.oracle.get_best_trials(1)
            self.trial_logger.trial_end(
                trial,
                number=trial_number(trial, self.oracle),
                objective_name=self.oracle.objective.name,
                best=best[0].score if best else None,
            )


    def load_model(self, trial):
        model = self._try_build(trial.hyperparameters)
        status = model.load_weights(self._get_checkpoint_fname(trial.trial_id))
        if hasattr(status, "expect_partial"):
            status.expect_partial()
        return model


class RandomSearch(ReliableTunerMixin, _ProgressMixin, kt.RandomSearch):
    """keras-tuner ``RandomSearch`` with per-trial progress lines."""


class GridSearch(ReliableTunerMixin, _ProgressMixin, kt.GridSearch):
    """keras-tuner ``GridSearch`` with per-trial progress lines."""


class BayesianOptimization(ReliableTunerMixin, _ProgressMixin, kt.BayesianOptimization):
    """keras-tuner ``BayesianOptimization`` with per-trial progress lines."""


class Hyperband(ReliableTunerMixin, _ProgressMixin, kt.Hyperband):
    """keras-tuner ``Hyperband`` with per-trial progress lines."""


#: Tuner names accepted by `make_tuner`, the CLI and the config.
TUNERS = {
    "random": RandomSearch,
    "grid": GridSearch,
    "bayesian": BayesianOptimization,
    "hyperband": Hyperband,
}


def make_tuner(
    name: str,
    hypermodel: kt.HyperModel,
    *,
    directory: str | os.PathLike,
    project_name: str = "search",
    objective: str = "val_accuracy",
    max_trials: int = 10,
    max_epochs: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    executions_per_trial: int = 1,
    max_consecutive_failed_trials: int = 3,
    max_retries_per_trial: int = 0,
    logger: TrialLogger | None = None,
    **kwargs: Any,
) -> kt.Tuner:
    """Create a keras-tuner tuner by name.

    The tuner resumes from ``directory/project_name`` when it holds an earlier
    search of the same project and ``overwrite`` is False: completed trials
    are not run again.

    Args:
        name: One of `TUNERS`: ``random``, ``grid``, ``bayesian``, ``hyperband``.
        hypermodel: The HyperModel to search.
        directory: Folder for keras-tuner's trial files.
        project_name: Sub-folder of ``directory``.
        objective: Metric to maximize (names ending in ``loss`` or ``error``
            are minimized, as keras-tuner infers).
        max_trials: Number of trials (not used by Hyperband, whose brackets
            are set by ``max_epochs``).
        max_epochs: Hyperband's largest number of epochs for one model; None
            means the HyperModel's upper epochs bound.
        seed: Random seed of the oracle.
        overwrite: Start over instead of resuming.
        executions_per_trial: Models trained per trial (scores averaged).
        max_consecutive_failed_trials: Consecutive failed trials that stop
            the search (a broken setup, not one bad architecture).
        max_retries_per_trial: Times a trial that raised is run again before
            it counts as failed (a diverging loss is never retried).
        logger: Prints a line per trial; None prints nothing.
        **kwargs: Further keyword arguments of the keras-tuner tuner.

    Returns:
        The tuner.

    Raises:
        ValueError: For an unknown name or bad counts, before anything is
            written.

    """
    if name not in TUNERS:
        raise ValueError(f"Received: tuner={name!r}; expected one of {tuple(TUNERS)}.")
    if not isinstance(hypermodel, kt.HyperModel):
        raise ValueError(
            f"Received: hypermodel={hypermodel!r}; expected a keras_tuner.HyperModel."
        )
    check_positive_int("max_trials", max_trials)
    check_positive_int("executions_per_trial", executions_per_trial)
    check_positive_int("max_consecutive_failed_trials", max_consecutive_failed_trials)
    check_positive_int("max_retries_per_trial", max_retries_per_trial, minimum=0)
    common = {
        "hypermodel": hypermodel,
        "objective": objective,
        "seed": seed,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        "executions_per_trial": executions_per_trial,
        "max_consecutive_failed_trials": max_consecutive_failed_trials,
        "max_retries_per_trial": max_retries_per_trial,
        **kwargs,
    }
    if name == "hyperband":
        if max_epochs is None:
            space = getattr(hypermodel, "optimizer_space", None)
            max_epochs = space.epochs[1] if space is not None else 30
        check_positive_int("max_epochs", max_epochs)
        tuner = Hyperband(max_epochs=max_epochs, **common)
    else:
        tuner = TUNERS[name](max_trials=max_trials, **common)
    tuner.trial_logger = logger
    if logger is not None and name == "hyperband":
        logger.total = None
    return tuner
