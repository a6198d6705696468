"""`Target`: where a model will run, which decides what is exported, measured and constrained.

TF-free (the standard library and numpy only), so that the command line and
the run configuration can check ``--target`` / ``target:`` without loading
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from keras_autoopt._checks import check_bool, check_positive_int
from keras_autoopt._defaults import EXPORT_MODES

__all__ = ["RUNTIMES", "RUNTIME_MODES", "VELA_ACCELERATORS", "VELA_DEFAULTS", "Target"]

#: The runtimes a target runs on: LiteRT (the TFLite interpreter, reference kernels),
#: LiteRT with its XNNPACK delegate (phones, desktop CPUs), TFLite Micro
#: (microcontrollers), and the Arm Ethos-U NPUs, whose models are compiled by Vela.
RUNTIMES = ("litert", "xnnpack", "tflm", "vela")

#: Vela's ``--accelerator-config`` values (ethos-u-vela 5.2).
VELA_ACCELERATORS = (
    "ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256",
    "ethos-u65-256", "ethos-u65-512",
    "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048",
)

#: Each NPU family's default system configuration and memory mode, as named in
#: the ``vela.ini`` that ethos-u-vela bundles.
VELA_DEFAULTS = {
    "ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65": ("Ethos_U65_High_End", "Dedicated_Sram"),
    "ethos-u85": ("Ethos_U85_SYS_DRAM_High", "Dedicated_Sram"),
}

#: Export modes each runtime can run at all; a target lists a subset.
RUNTIME_MODES = {
    "litert": EXPORT_MODES,
    "xnnpack": EXPORT_MODES,
    "tflm": ("float32", "int8"),
    "vela": ("int8",),
}

# Why a runtime cannot run a mode, for the error of `Target.check_mode`.
_WHY_NOT = {
    ("tflm", "dynamic"): "TFLite Micro runs no hybrid (dynamic-range) models "
                         "('Hybrid models are not supported on TFLite Micro')",
    ("tflm", "float16"): "TFLite Micro has no float16 kernels",
    ("vela", "float32"): "the Ethos-U NPU runs only integer operators (Vela would leave every "
                         "float operator on the CPU)",
    ("vela", "dynamic"): "the Ethos-U NPU runs only integer operators (Vela would leave every "
                         "float operator of a hybrid model on the CPU)",
    ("vela", "float16"): "the Ethos-U NPU runs only integer operators (Vela would leave every "
                         "float operator on the CPU)",
}

# Smallest file first: the mode `Target.default_mode` picks.
_SMALLEST_FIRST = ("int8", "dynamic", "float16", "float32")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_CONFIG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_name(name: str, value: Any, pattern: re.Pattern, expected: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.")
    return value


def _check_budget(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(name, value)


@dataclasses.dataclass(frozen=True)
class Target:
    """A device a model is made for: its runtime, the modes it runs, its budgets.

    Every field is checked when the target is made (also by `replace` and
    `from_config`); an invalid combination raises a ``ValueError`` that names
    the field, the value received and what was expected.

    Attributes:
        name: A short name (letters, digits, ``.``, ``_``, ``-``), e.g. ``"tflm"``.
        runtime: One of `RUNTIMES`.
        quantizations: The export modes the target runs, a non-empty subset
            of `EXPORT_MODES` (order kept) that its runtime supports
            (`RUNTIME_MODES`): TFLite Micro runs float32 and int8, Vela int8.
            None (the default) stands for every mode of the runtime.
        int8_io: For int8 exports, int8 input and output tensors (True) or
            float32 ones around the integer graph (False).
        fixed_batch: Export with a batch of 1 instead of a dynamic batch;
            required by TFLite Micro and Vela. None (the default) stands for
            True on those runtimes, False on the others.
        flash_bytes: Most bytes the model file may take (flash / storage), or None.
        ram_bytes: Most bytes of working memory the model may use at run time
            (TFLite Micro's tensor arena, the NPU's SRAM), or None.
        accelerator: For Vela, one of `VELA_ACCELERATORS`; None otherwise.
        system_config: For Vela, the ``vela.ini`` system configuration;
            defaults to the accelerator family's (`VELA_DEFAULTS`).
        memory_mode: For Vela, the ``vela.ini`` memory mode; defaults to the
            accelerator family's.
        c_source: Also write the model as a C array (``model_data.cc`` / ``.h``).
        description: One line for people.

    """

    name: str
    runtime: str = "litert"
    quantizations: tuple[str, ...] | None = None
    int8_io: bool = True
    fixed_batch: bool | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    accelerator: str | None = None
    system_config: str | None = None
    memory_mode: str | None = None
    c_source: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        def put(field: str, value: Any) -> None:
            object.__setattr__(self, field, value)

        _check_name("name", self.name, _NAME,
                    "a non-empty name of letters, digits, '.', '_' and '-', e.g. 'tflm'")
        if self.runtime not in RUNTIMES:
            raise ValueError(
                f"Received: runtime={self.runtime!r} for target {self.name!r}; expected one of "
                f"{', '.join(map(repr, RUNTIMES))}.")
        modes = RUNTIME_MODES[self.runtime] if self.quantizations is None else self.quantizations
        if isinstance(modes, list):
            modes = tuple(modes)
        if not isinstance(modes, tuple) or not modes \
                or any(not isinstance(m, str) or m not in EXPORT_MODES for m in modes) \
                or len(set(modes)) != len(modes):
            raise ValueError(
                f"Received: quantizations={self.quantizations!r} for target {self.name!r}; "
                f"expected a non-empty list of distinct export modes among {EXPORT_MODES!r}.")
        supported = RUNTIME_MODES[self.runtime]
        for mode in modes:
            if mode not in supported:
                raise ValueError(
                    f"Received: quantizations={modes!r} for target {self.name!r}; expected "
                    f"modes among {supported!r} for runtime {self.runtime!r}: "
                    f"{_WHY_NOT[(self.runtime, mode)]}.")
        put("quantizations", modes)
        if self.fixed_batch is None:
            put("fixed_batch", self.runtime in ("tflm", "vela"))
        for field in ("int8_io", "fixed_batch", "c_source"):
            check_bool(field, getattr(self, field))
        if self.runtime in ("tflm", "vela") and not self.fixed_batch:
            raise ValueError(
                f"Received: fixed_batch=False for target {self.name!r} (runtime "
                f"{self.runtime!r}); expected True: TFLite Micro and Vela need static shapes, "
                "so the model is exported with a batch of 1.")
        put("flash_bytes", _check_budget("flash_bytes", self.flash_bytes))
        put("ram_bytes", _check_budget("ram_bytes", self.ram_bytes))
        if not isinstance(self.description, str):
            raise ValueError(f"Received: description={self.description!r}; expected a string.")
        self._check_vela(put)

    def _check_vela(self, put) -> None:
        fields = ("accelerator", "system_config", "memory_mode")
        if self.runtime != "vela":
            for field in fields:
                if getattr(self, field) is not None:
                    raise ValueError(
                        f"Received: {field}={getattr(self, field)!r} for target {self.name!r} "
                        f"with runtime {self.runtime!r}; expected {field}=None ({field} is for "
                        "runtime 'vela').")
            return
        if self.accelerator not in VELA_ACCELERATORS:
            raise ValueError(
                f"Received: accelerator={self.accelerator!r} for target {self.name!r}; expected "
                f"one of {', '.join(VELA_ACCELERATORS)} (Vela's --accelerator-config).")
        family = self.accelerator.rsplit("-", 1)[0]
        system_config, memory_mode = VELA_DEFAULTS[family]
        if self.system_config is None:
            put("system_config", system_config)
        if self.memory_mode is None:
            put("memory_mode", memory_mode)
        for field, example in (("system_config", system_config), ("memory_mode", memory_mode)):
            _check_name(field, getattr(self, field), _CONFIG_NAME,
                        f"the name of a section of vela.ini, e.g. {example!r}")
        known_family = re.match(r"Ethos_(U\d\d)_", self.system_config)
        if known_family and known_family.group(1).lower() != family[-3:]:
            raise ValueError(
                f"Received: system_config={self.system_config!r} with "
                f"accelerator={self.accelerator!r}; expected a system configuration for the "
                f"{family} family, e.g. {system_config!r}.")
        if known_family and family == "ethos-u55" \
                and self.memory_mode.startswith("Dedicated_Sram"):
            raise ValueError(
                f"Received: memory_mode={self.memory_mode!r} with "
                f"system_config={self.system_config!r}; expected 'Shared_Sram' or 'Sram_Only': "
                "the Ethos-U55 configurations of vela.ini put the second AXI port on read-only "
                "flash, where Vela cannot place the arena.")

    @property
    def default_mode(self) -> str:
        """The mode of the smallest file the target runs: int8 if it is allowed."""
        return next(mode for mode in _SMALLEST_FIRST if mode in self.quantizations)

    def allows(self, mode: str) -> bool:
        """Whether the target runs ``mode`` exports."""
        return mode in self.quantizations

    def check_mode(self, mode: Any) -> str:
        """Return ``mode`` if the target runs it, else raise a ``ValueError`` saying why.

        Args:
            mode: An export mode, one of `EXPORT_MODES`.

        Returns:
            The mode.

        Raises:
            ValueError: If ``mode`` is not an export mode, or not one of the
                target's ``quantizations``.
        """
        if mode in self.quantizations:
            return mode
        expected = f"expected one of {self.quantizations!r}"
        if mode not in EXPORT_MODES:
            raise ValueError(
                f"Received: mode={mode!r} for target {self.name!r}; {expected} (the export "
                f"modes are {EXPORT_MODES!r}).")
        why = _WHY_NOT.get((self.runtime, mode)) or (
            f"target {self.name!r} does not list {mode!r} in its quantizations (its runtime "
            f"{self.runtime!r} can run it: give quantizations that include it to allow it)")
        raise ValueError(f"Received: mode={mode!r} for target {self.name!r}; {expected}: {why}.")

    def replace(self, **changes: Any) -> Target:
        """A copy with ``changes`` (e.g. a tighter ``ram_bytes``), checked like a new target.

        Raises:
            ValueError: For an unknown field, or an invalid value.
        """
        _check_fields(changes)
        if self.runtime == "vela" and "accelerator" in changes:
            # The Vela defaults follow the new accelerator unless given.
            changes.setdefault("system_config", None)
            changes.setdefault("memory_mode", None)
        return dataclasses.replace(self, **changes)

    def get_config(self) -> dict[str, Any]:
        """The target as a JSON / YAML-friendly dict (``quantizations`` as a list)."""
        config = dataclasses.asdict(self)
        config["quantizations"] = list(self.quantizations)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Target:
        """The target `get_config` returned.

        Raises:
            ValueError: If ``config`` is not a mapping, has an unknown field or
                lacks ``name``, or for an invalid value.
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"Received: config={config!r}; expected a mapping of Target fields.")
        _check_fields(config)
        if "name" not in config:
            raise ValueError(
                f"Received: a target definition without a name ({dict(config)!r}); expected a "
                "'name' field (or 'base': the name of a built-in target to start from).")
        return cls(**config)


def _check_fields(config: Mapping[str, Any]) -> None:
    known = [field.name for field in dataclasses.fields(Target)]
    unknown = sorted(str(key) for key in config if key not in known)
    if unknown:
        raise ValueError(
            f"Received: unknown target field(s) {', '.join(map(repr, unknown))}; expected fields "
            f"among {', '.join(known)}.")
