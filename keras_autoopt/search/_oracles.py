"""Oracles by name: keras-tuner's, Optuna's samplers behind `OptunaOracle`, and `GreedyOracle`."""

from __future__ import annotations

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.search._greedy_oracle import GreedyOracle
from keras_autoopt.search._optuna_oracle import OptunaOracle
from keras_autoopt.search._optuna_study import SAMPLERS

#: Oracle names accepted by `make_oracle`, the config's ``oracle:`` and the CLI. Optuna's
#: ``gp`` sampler needs PyTorch, which the package does not install: pass
#: ``OptunaOracle(sampler="gp")`` yourself where PyTorch is available.
ORACLES = ("random", "bayesian", "grid", "greedy", *(s for s in SAMPLERS if s != "gp"))
_KERAS_TUNER = {
    "random": kt.oracles.RandomSearchOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
    "grid": kt.oracles.GridSearchOracle,
}


def make_oracle(name: str, objective, *, max_trials: int = 10, seed: int | None = None,
                max_consecutive_failed_trials: int = 3) -> kt.Oracle:
    """Create an oracle by name.

    ``random``, ``bayesian`` and ``grid`` are keras-tuner's own (they see a
    multi-objective as the signed sum keras-tuner computes); ``greedy`` is
    `GreedyOracle`; every Optuna sampler name (``tpe``, ``nsga2``, ...) is an
    `OptunaOracle`, multi-objective when several objectives are given.

    Args:
        name: One of `ORACLES`.
        objective: A keras-tuner objective or a list of them.
        max_trials: Trials to propose.
        seed: Seed of the oracle.
        max_consecutive_failed_trials: Failed trials in a row that stop the
            search.

    Returns:
        The oracle.

    Raises:
        ValueError: For an unknown name or a bad ``max_trials``.
    """
    if name not in ORACLES:
        raise ValueError(f"Received: oracle={name!r}; expected one of {ORACLES}.")
    max_trials = check_positive_int("max_trials", max_trials)
    kwargs = {"objective": objective, "max_trials": max_trials, "seed": seed,
              "max_consecutive_failed_trials": max_consecutive_failed_trials}
    if name in _KERAS_TUNER:
        return _KERAS_TUNER[name](**kwargs)
    if name == "greedy":
        return GreedyOracle(**kwargs)
    return OptunaOracle(sampler=name, **kwargs)
