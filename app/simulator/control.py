"""The fake Infobip's control API bodies: faults and the report plan, checked."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from app.simulator.faults import FAULT_MODES, Faults
from app.simulator.reports import OUTCOMES
from app.simulator.sender import ReportPlan

_Config = TypeVar("_Config", Faults, ReportPlan)


def build_config(kind: type[_Config], body: Any) -> _Config:
    """Build Faults or ReportPlan from a control-API body; ValueError when it does not fit."""
    names = {item.name for item in dataclasses.fields(kind)}
    if not isinstance(body, dict) or not set(body) <= names:
        raise ValueError(f"expected an object with fields among {sorted(names)}")
    config = kind(**body)
    if isinstance(config, Faults) and config.mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {FAULT_MODES}")
    if isinstance(config, ReportPlan) and (
        not isinstance(config.mix, dict)
        or not set(config.mix) <= set(OUTCOMES)
        or sum(config.mix.values()) <= 0
        or config.batch_size < 1
        or config.delay < 0
        or not 0 <= config.drop_rate <= 1
    ):
        raise ValueError(
            f"mix needs weights among {OUTCOMES}; batch_size >= 1; delay >= 0; drop_rate 0-1"
        )
    return config
