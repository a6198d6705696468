import math

import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.search import LR_SCHEDULES, OptimizerSpace, schedule_factor


def _hp(**values):
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.values[name] = value
    return hp


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop"), ("adagrad", "Adagrad")],
)
def test_build_optimizer_each_kind(name, cls):
    space = OptimizerSpace()
    optimizer = space.build_optimizer(_hp(optimizer=name, learning_rate=0.005, clipping="none"))
    assert type(optimizer).__name__ == cls
    assert float(optimizer.learning_rate) == pytest.approx(0.005)


def test_sgd_momentum_and_nesterov_only_for_sgd():
    space = OptimizerSpace()
    hp = _hp(optimizer="sgd", momentum=0.9, nesterov=True, clipping="none")
    optimizer = space.build_optimizer(hp)
    assert optimizer.nesterov is True
    assert float(optimizer.momentum) == pytest.approx(0.9)
    hp = _hp(optimizer="adam")
    space.build_optimizer(hp)
    assert not hp.is_active("momentum")


def test_clipping_options():
    space = OptimizerSpace(clipnorm=2.0, clipvalue=0.25)
    opt = space.build_optimizer(_hp(optimizer="adam", clipping="clipnorm"))
    assert opt.clipnorm == 2.0 and opt.clipvalue is None
    opt = space.build_optimizer(_hp(optimizer="adam", clipping="clipvalue"))
    assert opt.clipvalue == 0.25 and opt.clipnorm is None


def test_learning_rate_is_log_uniform_and_in_bounds():
    space = OptimizerSpace(learning_rate=(1e-4, 1e-1))
    hp = kt.HyperParameters()
    space.learning_rate_hp(hp)
    lr_hp = hp.space[0]
    assert lr_hp.sampling == "log"
    samples = np.array([lr_hp.random_sample(seed) for seed in range(2000)])
    assert samples.min() >= 1e-4 and samples.max() <= 1e-1
    # log-uniform: about a third of the samples in each decade
    share = np.mean((samples >= 1e-3) & (samples < 1e-2))
    assert 0.28 < share < 0.39


def test_learning_rate_step_makes_a_grid():
    space = OptimizerSpace(learning_rate=(1e-4, 1e-2), learning_rate_step=10.0)
    hp = kt.HyperParameters()
    space.learning_rate_hp(hp)
    values = list(hp.space[0].values)
    assert values == pytest.approx([1e-4, 1e-3, 1e-2])


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_schedule_factor_starts_at_one_and_never_grows(schedule):
    factors = [schedule_factor(schedule, epoch, 10) for epoch in range(10)]
    assert factors[0] == pytest.approx(1.0)
    assert all(b <= a + 1e-12 for a, b in zip(factors, factors[1:], strict=False))


def test_schedule_factor_values():
    assert schedule_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert schedule_factor("exponential", 10, 10) == pytest.approx(0.01)
    assert schedule_factor("step", 4, 10) == 1.0
    assert schedule_factor("step", 5, 10) == pytest.approx(0.1)
    assert schedule_factor("step", 8, 10) == pytest.approx(0.01)
    assert schedule_factor("cosine", 0, 1) == 1.0
    with pytest.raises(ValueError, match="Received: schedule='linear'"):
        schedule_factor("linear", 0, 10)


def test_fit_uses_searched_batch_size_epochs_and_schedule(tiny_images, make_tiny_classifier):
    x, y, _, _ = tiny_images
    space = OptimizerSpace(batch_sizes=(30,), epochs=(4, 4), lr_schedules=("cosine",))
    model = make_tiny_classifier()
    hp = _hp(optimizer="adam", learning_rate=0.01, clipping="none")
    space.compile(hp, model)
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(float(model.optimizer.learning_rate))
    )
    history = space.fit(hp, model, x, y, verbose=0, callbacks=[recorder])
    assert hp.values["batch_size"] == 30 and hp.values["epochs"] == 4
    assert len(history.history["loss"]) == 4
    # the user's callback ran, and the cosine schedule set the rate of every epoch
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert seen == pytest.approx(expected, rel=1e-5)
    assert history.params["steps"] == 3  # 90 samples / batch 30


def test_fit_kwargs_win_over_search(tiny_images, make_tiny_classifier):
    x, y, _, _ = tiny_images
    space = OptimizerSpace()
    model = make_tiny_classifier()
    hp = kt.HyperParameters()
    space.compile(hp, model)
    history = space.fit(hp, model, x, y, epochs=2, batch_size=45, verbose=0)
    assert len(history.history["loss"]) == 2
    assert "epochs" not in hp.values and "batch_size" not in hp.values


def test_config_round_trip():
    space = OptimizerSpace(optimizers=("adam", "sgd"), learning_rate=(1e-3, 1e-2),
                           learning_rate_step=3.0, epochs=(2, 6), epochs_step=2)
    again = OptimizerSpace.from_config(space.get_config())
    assert again == space
    assert again.get_config()["epochs"] == [2, 6]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizers": ("adam", "lion")}, r"Received: optimizers=\('adam', 'lion'\); expected"),
        ({"optimizers": ()}, r"Received: optimizers=\(\); expected a non-empty list"),
        ({"learning_rate": (0.0, 0.1)}, r"Received: learning_rate=\(0.0, 0.1\)"),
        ({"learning_rate": (0.1, 0.01)}, r"Received: learning_rate=\(0.1, 0.01\)"),
        ({"learning_rate_step": 0.5}, r"Received: learning_rate_step=0.5; expected None or"),
        ({"momentum": (0.5, 1.5)}, r"Received: momentum=\(0.5, 1.5\)"),
        ({"lr_schedules": ("linear",)}, r"Received: lr_schedules=\('linear',\)"),
        ({"clipping": ("clipall",)}, r"Received: clipping=\('clipall',\)"),
        ({"clipnorm": 0}, r"Received: clipnorm=0; expected a positive number"),
        ({"batch_sizes": (32, 0)}, r"Received: batch_sizes=0; expected a positive integer"),
        ({"batch_sizes": (32, 32)}, r"expected choices without duplicates"),
        ({"epochs": (0, 5)}, r"Received: epochs=\(0, 5\); expected a pair"),
        ({"epochs_step": 0}, r"Received: epochs_step=0; expected a positive integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OptimizerSpace(**kwargs)
