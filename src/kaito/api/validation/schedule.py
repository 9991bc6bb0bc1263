"""Cron schedules and Go durations, as KAITO's Go code parses them (robfig/cron `ParseStandard`,
`time.ParseDuration`), for the InferenceSet's auto-upgrade maintenance window (kaito-v0.12.md §3.2).

The five cron fields are checked by `cronsim` (a small, dependency-free cron parser); the
descriptors robfig/cron adds (`@daily`, `@every 1h30m`, a `CRON_TZ=` prefix) are handled here. Go's
duration syntax (`1h30m`) is parsed by hand: no well-kept Python library reads it.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration (`4h`, `1h30m`, `-90s`, `0`), or None when it is not one."""
    text = text.strip()
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION.match(text):
        return None
    total = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(text))
    return -total if text.startswith("-") else total


def cron_problem(schedule: str) -> str | None:
    """Why `schedule` is not a standard cron schedule robfig/cron accepts, or None when it is."""
    spec = schedule.strip()
    if spec.startswith(("CRON_TZ=", "TZ=")):
        zone, _, spec = spec.partition(" ")
        try:
            zoneinfo.ZoneInfo(zone.split("=", 1)[1])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return f"unknown time zone in {zone!r}"
        spec = spec.strip()
    if spec.startswith("@every "):
        seconds = parse_go_duration(spec.removeprefix("@every "))
        return None if seconds is not None and seconds > 0 else f"@every needs a positive duration, got {spec!r}"
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            return f"unknown descriptor {spec!r} (known: {', '.join(DESCRIPTORS)}, @every <duration>)"
        spec = DESCRIPTORS[spec]
    if len(spec.split()) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(spec.split())}"
    try:
        CronSim(spec, datetime(2025, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc) or "invalid cron expression"
    return None
