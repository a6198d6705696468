"""The built-in targets (`TARGETS`) and `get_target` (a name, a mapping or a `Target`)."""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from typing import Any

from keras_autoopt.targets._target import Target

__all__ = ["DEFAULT_TARGET", "TARGETS", "get_target"]

#: TFLite Micro's default budgets: a Cortex-M class board (1 MB flash, 256 KB RAM).
TFLM_FLASH_BYTES = 1_048_576
TFLM_RAM_BYTES = 262_144

_BUILT_IN = (
    Target(
        name="host",
        runtime="litert",
        fixed_batch=False,
        description="LiteRT on this computer's CPU: every mode, dynamic batch, no budgets.",
    ),
    Target(
        name="mobile-cpu",
        runtime="xnnpack",
        fixed_batch=True,
        description="LiteRT with the XNNPACK delegate on a phone CPU: every mode, batch 1.",
    ),
    Target(
        name="tflm",
        runtime="tflm",
        quantizations=("int8",),
        int8_io=True,
        fixed_batch=True,
        flash_bytes=TFLM_FLASH_BYTES,
        ram_bytes=TFLM_RAM_BYTES,
        c_source=True,
        description="TFLite Micro on a Cortex-M class microcontroller (1 MB flash, 256 KB RAM): "
                    "full int8, batch 1, C array.",
    ),
    Target(
        name="ethos-u55-128",
        runtime="vela",  # int8 only, batch 1, the family's system config (Target derives them)
        accelerator="ethos-u55-128",
        description="Arm Ethos-U55 NPU, 128 MACs/cycle, compiled by Vela: full int8, batch 1.",
    ),
    Target(
        name="ethos-u65-256",
        runtime="vela",  # int8 only, batch 1, the family's system config (Target derives them)
        accelerator="ethos-u65-256",
        description="Arm Ethos-U65 NPU, 256 MACs/cycle, compiled by Vela: full int8, batch 1.",
    ),
)

#: The built-in targets by name (read-only), in the order they are listed.
TARGETS: Mapping[str, Target] = types.MappingProxyType({t.name: t for t in _BUILT_IN})

#: The target a run uses when none is given: today's behaviour.
DEFAULT_TARGET = "host"


def _unknown(value: str) -> ValueError:
    close = difflib.get_close_matches(value, list(TARGETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"Received: target={value!r}; expected one of {', '.join(TARGETS)} or a mapping (a "
        f"built-in target to start from, e.g. {{'base': 'tflm', 'ram_bytes': 131072}}, or a "
        f"full definition with 'name' and 'runtime').{hint}")


def get_target(value: str | Target | Mapping[str, Any]) -> Target:
    """The `Target` that ``value`` names or describes.

    Args:
        value: One of:

            - a `Target`, returned as is;
            - the name of a built-in target (`TARGETS`), e.g. ``"tflm"``;
            - a mapping with ``base``, a built-in name, and the fields to
              change, e.g. ``{"base": "tflm", "ram_bytes": 131072}`` (YAML
              ``target: {base: tflm, ram_bytes: 131072}``); the name stays
              the base's unless ``name`` is given;
            - a mapping of every field to set (`Target.get_config`), with at
              least ``name``.

    Returns:
        The target, its fields checked.

    Raises:
        ValueError: For an unknown name (the message lists the known ones),
            an unknown field or an invalid value.
    """
    if isinstance(value, Target):
        return value
    if isinstance(value, str):
        if value not in TARGETS:
            raise _unknown(value)
        return TARGETS[value]
    if isinstance(value, Mapping):
        if "base" not in value:
            return Target.from_config(value)
        changes = {key: item for key, item in value.items() if key != "base"}
        base = value["base"]
        if not isinstance(base, str):
            raise ValueError(
                f"Received: base={base!r}; expected the name of a built-in target, one of "
                f"{', '.join(TARGETS)}.")
        if base not in TARGETS:
            raise _unknown(base)
        return TARGETS[base].replace(**changes)
    raise ValueError(
        f"Received: target={value!r} of type {type(value).__name__}; expected the name of a "
        f"target ({', '.join(TARGETS)}), a mapping or a Target.")
