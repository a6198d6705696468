import dataclasses
import json
import re

import numpy as np
import pytest

from keras_autoopt.search._constraints import TFLITE_FLOOR_BYTES, Constraints, estimate_int8_bytes
from keras_autoopt.search._objectives import BUILTIN_OBJECTIVES, Objective, parse_objectives


def _flops(model, tflite_path, dataset):
    return 1.0


def _raises(message):
    return pytest.raises(ValueError, match=re.escape(message))


# Objective


def test_builtin_objectives():
    assert BUILTIN_OBJECTIVES == {
        "val_accuracy": "max",
        "val_f1": "max",
        "gzip_bytes": "min",
        "size_bytes": "min",
        "latency_us": "min",
        "params": "min",
        "flash_bytes": "min",
        "ram_bytes": "min",
        "macs": "min",
        "npu_latency_ms": "min",
    }


@pytest.mark.parametrize(("name", "direction"), sorted(BUILTIN_OBJECTIVES.items()))
def test_builtin_objective_default_direction(name, direction):
    objective = Objective(name)
    assert objective.direction == direction
    assert objective.is_builtin
    assert objective.fn is None
    assert Objective(name, direction) == objective


def test_builtin_objective_wrong_direction():
    with _raises(
        "Received: name='gzip_bytes', direction='max'; expected direction 'min' for "
        "objective 'gzip_bytes' (gzip_bytes is minimized), got 'max'."
    ):
        Objective("gzip_bytes", "max")
    with _raises("(val_accuracy is maximized), got 'min'."):
        Objective("val_accuracy", "min")


def test_objective_bad_direction():
    with _raises(
        "Received: name='params', direction='down'; expected direction 'min' or 'max' "
        "for objective 'params', got 'down'."
    ):
        Objective("params", "down")


def test_unknown_objective_lists_builtins():
    with _raises(
        "Received: name='acc', direction=None; expected a built-in objective name "
        "(one of ['flash_bytes', 'gzip_bytes', 'latency_us', 'macs', 'npu_latency_ms', "
        "'params', 'ram_bytes', 'size_bytes', 'val_accuracy', 'val_f1']) "
        "or a custom Objective with fn and direction; 'acc' is neither."
    ):
        Objective("acc")
    with _raises("'flops' is neither."):
        Objective("flops", "min")  # a direction without fn is not enough


@pytest.mark.parametrize("name", [None, "", 3])
def test_objective_bad_name(name):
    with _raises(f"Received: name={name!r}, direction=None; expected an objective name"):
        Objective(name)


def test_custom_objective():
    objective = Objective("flops", "min", fn=_flops)
    assert objective.direction == "min"
    assert not objective.is_builtin
    assert objective.fn(None, "model.tflite", None) == 1.0


def test_custom_objective_messages():
    with pytest.raises(ValueError) as info:
        Objective("flops", fn=_flops)
    message = str(info.value)
    assert message.startswith("Received: name='flops', direction=None, fn=<function _flops")
    assert message.endswith(
        "; expected a direction ('min' or 'max') for the custom objective 'flops'."
    )
    with _raises(
        "Received: name='flops', direction='min', fn=3; expected fn to be a callable "
        "fn(model, tflite_path, dataset) -> float for objective 'flops', got 3."
    ):
        Objective("flops", "min", fn=3)


def test_builtin_objective_rejects_fn():
    with _raises(
        "expected fn=None for the built-in objective 'params' (keras_autoopt measures it); "
        "give a custom objective another name."
    ):
        Objective("params", "min", fn=_flops)


def test_objective_is_frozen_and_hashable():
    objective = Objective("params")
    with pytest.raises(dataclasses.FrozenInstanceError):
        objective.name = "size_bytes"
    assert len({Objective("params"), Objective("params", "min")}) == 1


def test_objective_config_round_trip():
    for name in BUILTIN_OBJECTIVES:
        objective = Objective(name)
        config = objective.get_config()
        assert config == {"name": name, "direction": BUILTIN_OBJECTIVES[name]}
        assert Objective.from_config(json.loads(json.dumps(config))) == objective


def test_custom_objective_config_round_trip_through_custom_objects():
    objective = Objective("flops", "max", fn=_flops)
    config = objective.get_config()
    assert config == {"name": "flops", "direction": "max"}
    assert Objective.from_config(config, custom_objects={"flops": _flops}) == objective
    with _raises(
        "Received: config={'name': 'flops', 'direction': 'max'}, custom_objects=None; "
        "expected custom_objects={'flops': fn} for the custom objective 'flops'"
    ):
        Objective.from_config(config)


@pytest.mark.parametrize(
    "config", [{"direction": "min"}, {"name": "params", "fn": None}, ["params"], None]
)
def test_objective_from_bad_config(config):
    with _raises(
        f"Received: config={config!r}; expected a dict with 'name' and optionally 'direction'."
    ):
        Objective.from_config(config)


def test_objective_from_config_checks_direction():
    with _raises("(size_bytes is minimized), got 'max'."):
        Objective.from_config({"name": "size_bytes", "direction": "max"})


# parse_objectives


def test_parse_string():
    assert parse_objectives("val_accuracy") == [Objective("val_accuracy", "max")]


def test_parse_list_of_names():
    objectives = parse_objectives(["val_accuracy", "gzip_bytes", "latency_us"])
    assert [(o.name, o.direction) for o in objectives] == [
        ("val_accuracy", "max"),
        ("gzip_bytes", "min"),
        ("latency_us", "min"),
    ]


def test_parse_pairs_and_dict():
    expected = [Objective("val_accuracy"), Objective("params")]
    assert parse_objectives([("val_accuracy", "max"), ["params", "min"]]) == expected
    assert parse_objectives({"val_accuracy": "max", "params": None}) == expected
    assert parse_objectives((("val_accuracy", "max"), "params")) == expected


def test_parse_objective_instances_and_mix():
    custom = Objective("flops", "min", fn=_flops)
    assert parse_objectives(custom) == [custom]
    objectives = parse_objectives(["val_accuracy", ("size_bytes", "min"), custom])
    assert objectives == [Objective("val_accuracy"), Objective("size_bytes"), custom]
    assert objectives[2].fn is _flops


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "Received: objectives=[]; expected at least one objective."),
        ({}, "Received: objectives={}; expected at least one objective."),
        ("", "Received: objectives=''; expected an objective name as a non-empty string"),
        (
            ["params", "params"],
            "Received: objectives=['params', 'params']; expected each objective once, "
            "got 'params' more than once.",
        ),
        (
            ["params", ("params", "min")],
            "Received: objectives=['params', ('params', 'min')]; expected each objective once",
        ),
        (
            ["val_accuracy", "acc"],
            "Received: objectives=['val_accuracy', 'acc']; expected a built-in objective "
            "name (one of ['flash_bytes', 'gzip_bytes', 'latency_us', 'macs', "
            "'npu_latency_ms', 'params', 'ram_bytes', 'size_bytes', "
            "'val_accuracy', 'val_f1']) or a custom Objective with fn and direction; "
            "'acc' is neither.",
        ),
        (
            {"gzip_bytes": "max"},
            "Received: objectives={'gzip_bytes': 'max'}; expected direction 'min' for "
            "objective 'gzip_bytes' (gzip_bytes is minimized), got 'max'.",
        ),
        (
            [("params", "smaller")],
            "Received: objectives=[('params', 'smaller')]; expected direction 'min' or "
            "'max' for objective 'params', got 'smaller'.",
        ),
        (
            ("flops", "min"),
            "Received: objectives=('flops', 'min'); expected a built-in objective name",
        ),
        (
            ("params", "min"),
            "'min' is neither. Write (name, direction) pairs inside a list: "
            "[('params', 'min')].",
        ),
        (
            ["params", 3],
            "Received: objectives=['params', 3]; expected every item to be a name, a "
            "(name, direction) pair or an Objective, got 3.",
        ),
        (
            [("params", "min", "x")],
            "Received: objectives=[('params', 'min', 'x')]; expected every item to be a name",
        ),
        (
            [{"params": "min"}],
            "Received: objectives=[{'params': 'min'}]; expected every item to be a name",
        ),
        (
            3,
            "Received: objectives=3; expected a name, a list of names, (name, direction) "
            "pairs or Objective instances, or a {name: direction} dict.",
        ),
        (None, "Received: objectives=None; expected a name"),
        ({3: "min"}, "Received: objectives={3: 'min'}; expected an objective name"),
    ],
)
def test_parse_errors_name_objectives(spec, message):
    with _raises(message):
        parse_objectives(spec)


# estimate_int8_bytes


def test_estimate_int8_bytes():
    assert TFLITE_FLOOR_BYTES == 800
    assert estimate_int8_bytes(0) == TFLITE_FLOOR_BYTES
    assert estimate_int8_bytes(120_394) == 120_394 + TFLITE_FLOOR_BYTES
    assert estimate_int8_bytes(np.int64(5)) == 805
    for params in (-1, 1.5, True, "3"):
        with _raises(f"Received: params={params!r}; expected an integer >= 0."):
            estimate_int8_bytes(params)


# Constraints


def test_empty_constraints():
    constraints = Constraints()
    assert constraints.is_empty
    assert constraints.check_before_training(10**9) is None
    assert constraints.check_measured({}) is None
    assert not Constraints(min_accuracy=0.5).is_empty


def test_constraints_normalize_types():
    constraints = Constraints(
        max_params=np.int64(1000), max_size_bytes=5000, max_latency_ms=2, min_accuracy=1
    )
    assert type(constraints.max_params) is int
    assert constraints.max_latency_ms == 2.0 and isinstance(constraints.max_latency_ms, float)
    assert constraints.min_accuracy == 1.0 and isinstance(constraints.min_accuracy, float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_params": 0}, "Received: max_params=0; expected a positive integer."),
        ({"max_params": -5}, "Received: max_params=-5; expected a positive integer."),
        ({"max_params": 1e5}, "Received: max_params=100000.0; expected a positive integer."),
        ({"max_params": True}, "Received: max_params=True; expected a positive integer."),
        ({"max_size_bytes": "1MB"}, "Received: max_size_bytes='1MB'; expected a positive"),
        (
            {"max_latency_ms": 0},
            "Received: max_latency_ms=0; expected None or a positive finite number.",
        ),
        (
            {"max_latency_ms": float("inf")},
            "Received: max_latency_ms=inf; expected None or a positive finite number.",
        ),
        ({"max_latency_ms": "5"}, "Received: max_latency_ms='5'; expected None or a positive"),
        ({"min_accuracy": 0}, "Received: min_accuracy=0; expected None or a number in (0, 1.0]."),
        ({"min_accuracy": 90}, "Received: min_accuracy=90; expected None or a number in (0, 1.0]."),
        (
            {"min_accuracy": float("nan")},
            "Received: min_accuracy=nan; expected None or a number in (0, 1.0].",
        ),
    ],
)
def test_bad_constraint_values(kwargs, message):
    with _raises(message):
        Constraints(**kwargs)


def test_size_limit_below_tflite_floor_is_unsatisfiable():
    with _raises(
        "Received: max_size_bytes=500; expected at least 801 bytes: every .tflite file "
        "takes at least TFLITE_FLOOR_BYTES=800 bytes beyond its weights, so no model can "
        "meet this limit."
    ):
        Constraints(max_size_bytes=500)
    with _raises("Received: max_size_bytes=800; expected at least 801 bytes"):
        Constraints(max_params=10, max_size_bytes=800)
    assert Constraints(max_size_bytes=801).max_size_bytes == 801


def test_max_params_and_max_size_bytes_do_not_contradict():
    # Both are upper bounds: a small enough model meets both.
    constraints = Constraints(max_params=1_000_000, max_size_bytes=2_000)
    assert constraints.check_before_training(1_000) is None


def test_check_before_training_max_params():
    constraints = Constraints(max_params=100_000)
    assert constraints.check_before_training(120_394) == "params 120,394 > max_params 100,000"
    assert constraints.check_before_training(100_000) is None
    assert constraints.check_before_training(np.int64(5)) is None


def test_check_before_training_size_estimate():
    constraints = Constraints(max_size_bytes=100_000)
    assert constraints.check_before_training(99_200) is None  # 99,200 + 800 = 100,000
    assert constraints.check_before_training(99_201) == (
        "size_bytes >= 100,001 (params 99,201 + TFLITE_FLOOR_BYTES 800) > "
        "max_size_bytes 100,000"
    )


def test_check_before_training_both_reasons():
    constraints = Constraints(max_params=50_000, max_size_bytes=40_000)
    assert constraints.check_before_training(60_000) == (
        "params 60,000 > max_params 50,000; size_bytes >= 60,800 (params 60,000 + "
        "TFLITE_FLOOR_BYTES 800) > max_size_bytes 40,000"
    )


@pytest.mark.parametrize("params", [-1, 2.5, None, "10"])
def test_check_before_training_bad_params(params):
    with _raises(f"Received: params={params!r}; expected an integer >= 0."):
        Constraints(max_params=10).check_before_training(params)


def test_check_measured():
    constraints = Constraints(max_size_bytes=200_000, max_latency_ms=1.5, min_accuracy=0.9)
    good = {"size_bytes": 200_000, "latency_us": 1500.0, "val_accuracy": 0.9, "params": 10}
    assert constraints.check_measured(good) is None
    assert constraints.check_measured({**good, "size_bytes": 210_000}) == (
        "size_bytes 210,000 > max_size_bytes 200,000"
    )
    assert constraints.check_measured({**good, "latency_us": 1523.4}) == (
        "latency_us 1,523.4 > max_latency_ms 1.5 (1,500.0 us)"
    )
    assert constraints.check_measured({**good, "val_accuracy": np.float32(0.8123)}) == (
        "val_accuracy 0.8123 < min_accuracy 0.9"
    )
    bad = {"size_bytes": 300_000, "latency_us": 2000, "val_accuracy": 0.5}
    assert constraints.check_measured(bad) == (
        "size_bytes 300,000 > max_size_bytes 200,000; latency_us 2,000.0 > max_latency_ms "
        "1.5 (1,500.0 us); val_accuracy 0.5000 < min_accuracy 0.9"
    )


def test_device_budgets_before_training_and_after_export():
    from types import SimpleNamespace

    constraints = Constraints(max_flash_bytes=10_000, max_ram_bytes=2_048, max_macs=50_000,
                              max_npu_latency_ms=0.5)
    fits = SimpleNamespace(mode="int8", flash_bytes=10_000, ram_bytes=2_048, macs=50_000)
    assert constraints.check_before_training(100, fits) is None
    assert constraints.check_before_training(100) is None  # no estimate: after export only
    big = SimpleNamespace(mode="int8", flash_bytes=12_345, ram_bytes=4_096, macs=60_000)
    assert constraints.check_before_training(100, big) == (
        "flash_bytes >= 12,345 (estimated from the built model, int8) > max_flash_bytes 10,000; "
        "ram_bytes >= 4,096 (estimated from the built model, int8) > max_ram_bytes 2,048; "
        "macs = 60,000 (estimated from the built model, int8) > max_macs 50,000")
    measured = {"flash_bytes": 10_000, "ram_bytes": 2_048, "macs": 50_000,
                "npu_latency_ms": 0.5}
    assert constraints.check_measured(measured) is None
    assert constraints.check_measured({**measured, "ram_bytes": 2_049,
                                       "npu_latency_ms": 0.75}) == (
        "ram_bytes 2,049 > max_ram_bytes 2,048; npu_latency_ms 0.75 > max_npu_latency_ms 0.5")


@pytest.mark.parametrize("name", ["max_flash_bytes", "max_ram_bytes", "max_macs"])
def test_device_budgets_are_positive_integers(name):
    with _raises(f"Received: {name}=0; expected"):
        Constraints(**{name: 0})


def test_check_measured_failed_measurement_breaks_the_limit():
    constraints = Constraints(min_accuracy=0.5)
    assert constraints.check_measured({"val_accuracy": float("nan")}) == (
        "val_accuracy is nan (measurement failed)"
    )


def test_check_measured_reads_only_limited_metrics():
    assert Constraints(max_latency_ms=1.0).check_measured({"latency_us": 10.0}) is None


def test_check_measured_missing_metric_is_a_setup_error():
    constraints = Constraints(max_latency_ms=1.0)
    with _raises(
        "Received: metrics={'size_bytes': 10}; expected a number under 'latency_us' to "
        "check the constraints."
    ):
        constraints.check_measured({"size_bytes": 10})
    with _raises("Received: metrics={'latency_us': '3'}; expected a number under 'latency_us'"):
        constraints.check_measured({"latency_us": "3"})
    with _raises("Received: metrics=[1.0]; expected a dict with keys among"):
        constraints.check_measured([1.0])


def test_constraints_config_round_trip():
    for constraints in (
        Constraints(),
        Constraints(max_params=100_000),
        Constraints(max_params=10, max_size_bytes=2_000, max_latency_ms=0.5, min_accuracy=0.75),
    ):
        config = constraints.get_config()
        assert set(config) == {"max_params", "max_size_bytes", "max_latency_ms", "min_accuracy",
                               "max_flash_bytes", "max_ram_bytes", "max_macs",
                               "max_npu_latency_ms"}
        assert Constraints.from_config(json.loads(json.dumps(config))) == constraints
    assert Constraints.from_config({"min_accuracy": 0.5}) == Constraints(min_accuracy=0.5)


def test_constraints_from_bad_config():
    with _raises(
        "Received: config={'max_flops': 3}; expected a dict with keys among "
        "['max_params', 'max_size_bytes', 'max_latency_ms', 'min_accuracy', 'max_flash_bytes', "
        "'max_ram_bytes', 'max_macs', 'max_npu_latency_ms']."
    ):
        Constraints.from_config({"max_flops": 3})
    with _raises("Received: min_accuracy=2; expected None or a number in (0, 1.0]."):
        Constraints.from_config({"min_accuracy": 2})
