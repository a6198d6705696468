"""Device targets (issue 13): the built-ins' rules, field checks, get_target, config round trips."""

from __future__ import annotations

import configparser
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_autoopt._defaults import EXPORT_MODES
from keras_autoopt.targets import (
    DEFAULT_TARGET,
    RUNTIME_MODES,
    TARGETS,
    VELA_ACCELERATORS,
    VELA_DEFAULTS,
    Target,
    get_target,
)

NAMES = ("host", "mobile-cpu", "tflm", "ethos-u55-128", "ethos-u65-256")


def test_the_built_in_targets_and_their_order():
    assert tuple(TARGETS) == NAMES
    assert DEFAULT_TARGET == "host"
    assert all(TARGETS[name].name == name for name in NAMES)
    with pytest.raises(TypeError):
        TARGETS["mine"] = TARGETS["host"]  # read-only


def test_host_is_todays_behaviour():
    host = TARGETS["host"]
    assert (host.runtime, host.quantizations) == ("litert", EXPORT_MODES)
    assert not host.fixed_batch and not host.c_source
    assert host.flash_bytes is None and host.ram_bytes is None
    assert host.default_mode == "int8"
    assert all(host.check_mode(mode) == mode for mode in EXPORT_MODES)


def test_mobile_cpu_runs_every_mode_with_batch_one():
    mobile = TARGETS["mobile-cpu"]
    assert (mobile.runtime, mobile.quantizations, mobile.fixed_batch) == (
        "xnnpack", EXPORT_MODES, True)
    assert mobile.ram_bytes is None and mobile.accelerator is None


def test_tflm_is_int8_only_with_cortex_m_budgets():
    tflm = TARGETS["tflm"]
    assert (tflm.runtime, tflm.quantizations) == ("tflm", ("int8",))
    assert tflm.int8_io and tflm.fixed_batch and tflm.c_source
    assert (tflm.flash_bytes, tflm.ram_bytes) == (1024 * 1024, 256 * 1024)
    assert tflm.default_mode == "int8" and tflm.allows("int8") and not tflm.allows("dynamic")
    with pytest.raises(ValueError) as error:
        tflm.check_mode("dynamic")
    assert str(error.value) == (
        "Received: mode='dynamic' for target 'tflm'; expected one of ('int8',): TFLite Micro "
        "runs no hybrid (dynamic-range) models ('Hybrid models are not supported on TFLite "
        "Micro').")
    with pytest.raises(ValueError, match=r"mode='float32' for target 'tflm'; expected one of "
                                         r"\('int8',\): target 'tflm' does not list 'float32'"):
        tflm.check_mode("float32")
    with pytest.raises(ValueError, match="TFLite Micro has no float16 kernels"):
        tflm.check_mode("float16")
    with pytest.raises(ValueError, match=r"mode='int4' .*\(the export modes are"):
        tflm.check_mode("int4")


@pytest.mark.parametrize("name, accelerator, system_config, memory_mode", [
    ("ethos-u55-128", "ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    ("ethos-u65-256", "ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram"),
])
def test_vela_targets(name, accelerator, system_config, memory_mode):
    target = TARGETS[name]
    assert (target.runtime, target.quantizations, target.fixed_batch) == ("vela", ("int8",), True)
    assert (target.accelerator, target.system_config, target.memory_mode) == (
        accelerator, system_config, memory_mode)
    for mode in ("float32", "dynamic", "float16"):
        with pytest.raises(ValueError, match=f"mode='{mode}' for target '{name}'; expected one "
                                             r"of \('int8',\): the Ethos-U NPU runs only "
                                             "integer operators"):
            target.check_mode(mode)


def _vela_ini() -> Path | None:
    spec = importlib.util.find_spec("ethosu")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "config_files/Arm/vela.ini"
    return path if path.is_file() else None


def test_vela_names_exist_in_the_bundled_vela_ini():
    ini = _vela_ini()
    if ini is None:
        pytest.skip("ethos-u-vela is not installed (its vela.ini names the Vela configurations)")
    parser = configparser.ConfigParser()
    parser.read(ini)
    for system_config, memory_mode in VELA_DEFAULTS.values():
        assert f"System_Config.{system_config}" in parser, system_config
        assert f"Memory_Mode.{memory_mode}" in parser, memory_mode
    from ethosu.vela.architecture_features import Accelerator  # ethos-u-vela's own list

    assert set(VELA_ACCELERATORS) == set(Accelerator.member_list())


@pytest.mark.parametrize("runtime, modes, fixed_batch", [
    ("litert", EXPORT_MODES, False),
    ("xnnpack", EXPORT_MODES, False),
    ("tflm", ("float32", "int8"), True),
])
def test_defaults_follow_the_runtime(runtime, modes, fixed_batch):
    target = Target("board", runtime=runtime)
    assert (target.quantizations, target.fixed_batch) == (modes, fixed_batch)
    assert target.int8_io and not target.c_source and target.ram_bytes is None


def test_vela_defaults_follow_the_accelerator():
    target = Target("npu", runtime="vela", accelerator="ethos-u55-64")
    assert (target.quantizations, target.fixed_batch) == (("int8",), True)
    assert (target.system_config, target.memory_mode) == (
        "Ethos_U55_High_End_Embedded", "Shared_Sram")
    assert Target("npu", quantizations=["int8"]).quantizations == ("int8",)  # a list: a tuple
    u65 = target.replace(accelerator="ethos-u65-512")
    assert (u65.system_config, u65.memory_mode) == ("Ethos_U65_High_End", "Dedicated_Sram")
    custom = target.replace(system_config="My_Board", memory_mode="Sram_Only")
    assert (custom.accelerator, custom.system_config) == ("ethos-u55-64", "My_Board")


@pytest.mark.parametrize("fields, message", [
    ({"name": ""}, r"Received: name=''; expected a non-empty name"),
    ({"name": "a b"}, r"Received: name='a b'"),
    ({"runtime": "tpu"}, r"Received: runtime='tpu' for target 't'; expected one of 'litert', "
                         r"'xnnpack', 'tflm', 'vela'\."),
    ({"quantizations": []}, r"Received: quantizations=\[\] for target 't'; expected a "
                            r"non-empty list of distinct export modes"),
    ({"quantizations": "int8"}, r"Received: quantizations='int8'"),
    ({"quantizations": ["int8", "int8"]}, r"distinct export modes"),
    ({"quantizations": ["int4"]}, r"Received: quantizations=\['int4'\]"),
    ({"runtime": "tflm", "fixed_batch": True, "quantizations": ["dynamic", "int8"]},
     r"expected modes among \('float32', 'int8'\) for runtime 'tflm': TFLite Micro runs no "
     r"hybrid"),
    ({"runtime": "tflm", "fixed_batch": False},
     r"Received: fixed_batch=False for target 't' \(runtime 'tflm'\); expected True"),
    ({"int8_io": 1}, r"Received: int8_io=1; expected True or False\."),
    ({"c_source": "yes"}, r"Received: c_source='yes'; expected True or False\."),
    ({"flash_bytes": 0}, r"Received: flash_bytes=0; expected a positive integer\."),
    ({"ram_bytes": 1.5}, r"Received: ram_bytes=1.5; expected a positive integer\."),
    ({"accelerator": "ethos-u55-128"}, r"Received: accelerator='ethos-u55-128' for target 't' "
                                       r"with runtime 'litert'; expected accelerator=None"),
    ({"runtime": "vela", "fixed_batch": True, "quantizations": ["int8"]},
     r"Received: accelerator=None for target 't'; expected one of ethos-u55-32, "),
    ({"runtime": "vela", "fixed_batch": True, "quantizations": ["int8"],
      "accelerator": "ethos-u65-256", "system_config": "Ethos_U55_High_End_Embedded"},
     r"expected a system configuration for the ethos-u65 family, e.g. 'Ethos_U65_High_End'"),
    ({"runtime": "vela", "fixed_batch": True, "quantizations": ["int8"],
      "accelerator": "ethos-u55-128", "memory_mode": "Shared Sram"},
     r"Received: memory_mode='Shared Sram'; expected the name of a section of vela.ini"),
    ({"runtime": "vela", "accelerator": "ethos-u55-128", "quantizations": ["float32", "int8"]},
     r"expected modes among \('int8',\) for runtime 'vela'"),
    ({"runtime": "vela", "accelerator": "ethos-u55-128", "memory_mode": "Dedicated_Sram"},
     r"Received: memory_mode='Dedicated_Sram' with system_config='Ethos_U55_High_End_Embedded'; "
     r"expected 'Shared_Sram' or 'Sram_Only'"),
    ({"quantizations": [["int8"]]}, r"Received: quantizations=\[\['int8'\]\]"),
    ({"description": 3}, r"Received: description=3; expected a string\."),
])
def test_bad_fields_are_named_in_the_error(fields, message):
    with pytest.raises(ValueError, match=message):
        Target(**{"name": "t", **fields})


def test_targets_are_frozen_and_replace_checks_again():
    tflm = TARGETS["tflm"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tflm.ram_bytes = 1
    tighter = tflm.replace(ram_bytes=131_072, flash_bytes=512 * 1024)
    assert (tighter.ram_bytes, tighter.flash_bytes, tighter.quantizations) == (
        131_072, 524_288, ("int8",))
    assert TARGETS["tflm"].ram_bytes == 262_144  # the built-in is untouched
    with pytest.raises(ValueError, match=r"Received: ram_bytes=-1; expected a positive integer"):
        tflm.replace(ram_bytes=-1)
    with pytest.raises(ValueError, match=r"unknown target field\(s\) 'ram'; expected fields "
                                         r"among name, runtime, "):
        tflm.replace(ram=1)


@pytest.mark.parametrize("name", NAMES)
def test_get_config_round_trips_through_json(name):
    target = TARGETS[name]
    config = json.loads(json.dumps(target.get_config()))
    assert isinstance(config["quantizations"], list)
    assert Target.from_config(config) == target
    assert get_target(config) == target


def test_get_target_by_name_target_and_base_mapping():
    assert get_target("tflm") is TARGETS["tflm"]
    mine = TARGETS["tflm"].replace(name="my-board")
    assert get_target(mine) is mine
    # YAML `target: {base: tflm, ram_bytes: 131072}`
    tuned = get_target({"base": "tflm", "ram_bytes": 131072})
    assert tuned == dataclasses.replace(TARGETS["tflm"], ram_bytes=131072)
    renamed = get_target({"base": "mobile-cpu", "name": "pixel", "quantizations": ["int8"]})
    assert (renamed.name, renamed.runtime, renamed.quantizations) == (
        "pixel", "xnnpack", ("int8",))


def test_get_target_full_definition():
    target = get_target({"name": "m4", "runtime": "tflm", "quantizations": ["float32", "int8"],
                         "fixed_batch": True, "ram_bytes": 65536})
    assert (target.name, target.runtime, target.default_mode, target.ram_bytes) == (
        "m4", "tflm", "int8", 65536)
    assert target.flash_bytes is None and not target.c_source
    assert get_target({"name": "cpu", "quantizations": ["float32", "float16"]}).default_mode \
        == "float16"


def test_get_target_errors_list_the_known_names():
    with pytest.raises(ValueError) as error:
        get_target("tflmm")
    assert str(error.value).startswith(
        "Received: target='tflmm'; expected one of host, mobile-cpu, tflm, ethos-u55-128, "
        "ethos-u65-256 or a mapping")
    assert str(error.value).endswith("Did you mean 'tflm'?")
    with pytest.raises(ValueError, match=r"Received: target='u55'; expected one of host, "):
        get_target({"base": "u55"})
    with pytest.raises(ValueError, match=r"Received: base=3; expected the name of a built-in"):
        get_target({"base": 3})
    with pytest.raises(ValueError, match=r"a target definition without a name"):
        get_target({"runtime": "tflm"})
    with pytest.raises(ValueError, match=r"unknown target field\(s\) 'ram'"):
        get_target({"base": "tflm", "ram": 1})
    with pytest.raises(ValueError, match=r"Received: target=3 of type int; expected the name"):
        get_target(3)


def test_runtime_modes_are_export_modes():
    assert RUNTIME_MODES["litert"] == EXPORT_MODES
    assert all(set(modes) <= set(EXPORT_MODES) for modes in RUNTIME_MODES.values())


def test_importing_targets_loads_no_tensorflow():
    code = ("import sys\nimport keras_autoopt.targets as t\nt.get_target('tflm')\n"
            "import keras_autoopt\nkeras_autoopt.get_target('host')\n"
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'keras_tuner', "
            "'tensorflow_model_optimization') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
