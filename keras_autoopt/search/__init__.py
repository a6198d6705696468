"""Search: keras-tuner HyperModels, the optimizer space and tuners by name."""

from keras_autoopt.compress import PRUNING_SCHEDULES, CompressionSpace
from keras_autoopt.search._base import ACTIVATIONS, ClassifierHyperModel
from keras_autoopt.search._constraints import TFLITE_FLOOR_BYTES, Constraints, estimate_int8_bytes
from keras_autoopt.search._convnet import POOLINGS, ConvNetHyperModel
from keras_autoopt.search._dense import DenseHyperModel
from keras_autoopt.search._deployable import (
    INFEASIBLE_PREFIX,
    REJECTED_PREFIX,
    TRIAL_EXPORT,
    DeployableTuner,
    ParetoTrial,
    RejectedTrialError,
    is_rejected,
    oracle_objectives,
)
from keras_autoopt.search._distributed import (
    DISTRIBUTED_ENV,
    TrialLeases,
    WorkerHeartbeat,
    distributed_env,
    distributed_role,
)
from keras_autoopt.search._estimates import ModelEstimate, estimate_model, measure_before_training
from keras_autoopt.search._greedy_oracle import GreedyOracle
from keras_autoopt.search._objectives import BUILTIN_OBJECTIVES, Objective, parse_objectives
from keras_autoopt.search._optimizers import (
    CLIPPING,
    LR_SCHEDULES,
    OPTIMIZERS,
    OptimizerSpace,
    schedule_factor,
)
from keras_autoopt.search._optuna_oracle import OptunaOracle
from keras_autoopt.search._optuna_space import from_optuna_distribution, to_optuna_distribution
from keras_autoopt.search._optuna_study import SAMPLERS
from keras_autoopt.search._oracles import ORACLES, make_oracle
from keras_autoopt.search._pareto import (
    DIRECTIONS,
    default_reference,
    dominates,
    hypervolume,
    pareto_front,
)
from keras_autoopt.search._progress import TrialLogger, summarize_hyperparameters
from keras_autoopt.search._reliability import (
    DEBUG_ENV,
    FailOnNonFiniteLoss,
    NonFiniteLossError,
    SearchStopped,
    SetupError,
    check_setup,
    debug_enabled,
    failure_reason,
    failures_stop_cleanly,
    set_debug,
)
from keras_autoopt.search._transfer import TransferHyperModel
from keras_autoopt.search._transfer_base import BASE_LAYER_NAME, STRATEGIES, freeze_for_strategy
from keras_autoopt.search._tuners import TUNERS, make_tuner

__all__ = [
    "TRIAL_EXPORT",
    "DEBUG_ENV",
    "DISTRIBUTED_ENV",
    "TrialLeases",
    "WorkerHeartbeat",
    "distributed_env",
    "distributed_role",
    "FailOnNonFiniteLoss",
    "NonFiniteLossError",
    "SearchStopped",
    "SetupError",
    "check_setup",
    "debug_enabled",
    "estimate_model",
    "measure_before_training",
    "failure_reason",
    "failures_stop_cleanly",
    "set_debug",
    "ACTIVATIONS",
    "BASE_LAYER_NAME",
    "BUILTIN_OBJECTIVES",
    "CLIPPING",
    "DIRECTIONS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "ModelEstimate",
    "ORACLES",
    "POOLINGS",
    "PRUNING_SCHEDULES",
    "INFEASIBLE_PREFIX",
    "REJECTED_PREFIX",
    "SAMPLERS",
    "STRATEGIES",
    "TFLITE_FLOOR_BYTES",
    "TUNERS",
    "ClassifierHyperModel",
    "CompressionSpace",
    "Constraints",
    "ConvNetHyperModel",
    "DenseHyperModel",
    "DeployableTuner",
    "GreedyOracle",
    "Objective",
    "OptimizerSpace",
    "OptunaOracle",
    "ParetoTrial",
    "RejectedTrialError",
    "TransferHyperModel",
    "TrialLogger",
    "default_reference",
    "dominates",
    "estimate_int8_bytes",
    "freeze_for_strategy",
    "from_optuna_distribution",
    "hypervolume",
    "is_rejected",
    "make_oracle",
    "make_tuner",
    "oracle_objectives",
    "pareto_front",
    "parse_objectives",
    "schedule_factor",
    "summarize_hyperparameters",
    "to_optuna_distribution",
]
