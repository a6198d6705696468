"""How a search follows its `Target`: its budgets, its quantization modes, what it measures."""

from __future__ import annotations

import dataclasses

from keras_autoopt._rules import DEFAULT_QUANTIZATIONS
from keras_autoopt.compress import CompressionSpace
from keras_autoopt.search._constraints import Constraints
from keras_autoopt.search._objectives import RUNTIME_OBJECTIVES
from keras_autoopt.targets import Target


def within_budgets(constraints: Constraints, target: Target) -> Constraints:
    """``constraints`` with the target's flash and RAM budgets (the tighter of each)."""
    changes = {}
    for key, budget in (("max_flash_bytes", target.flash_bytes),
                        ("max_ram_bytes", target.ram_bytes)):
        mine = getattr(constraints, key)
        if budget is not None and (mine is None or budget < mine):
            changes[key] = budget
    return dataclasses.replace(constraints, **changes) if changes else constraints


def for_target(space: CompressionSpace | None, target: Target) -> CompressionSpace | None:
    """The space with the quantization modes the target runs.

    A space left at the default choices keeps those the target runs; modes a
    user listed that the target cannot run are an error.
    """
    if space is None:
        return None
    if tuple(space.quantization) == tuple(DEFAULT_QUANTIZATIONS):
        kept = tuple(m for m in space.quantization if target.allows(m))
        return dataclasses.replace(space, quantization=kept)
    for mode in space.quantization:
        if not target.allows(mode):
            try:
                target.check_mode(mode)
            except ValueError as error:
                raise ValueError(f"{error} (in compression.quantization)") from None
    return space


def check_measurable(objectives, constraints: Constraints, target: Target) -> None:
    """Refuse objectives and constraints the target does not measure, before any trial."""
    limits = {"ram_bytes": constraints.max_ram_bytes,
              "npu_latency_ms": constraints.max_npu_latency_ms}
    wanted = [(f"objective {o.name!r}", o.name) for o in objectives
              if o.name in RUNTIME_OBJECTIVES]
    wanted += [(f"constraint max_{name}", name) for name, limit in limits.items()
               if limit is not None]
    for what, name in wanted:
        if target.runtime not in RUNTIME_OBJECTIVES[name]:
            raise ValueError(
                f"Received: {what} with target {target.name!r} (runtime {target.runtime!r}); "
                f"expected a target whose runtime measures {name}: "
                f"{', '.join(RUNTIME_OBJECTIVES[name])}.")

