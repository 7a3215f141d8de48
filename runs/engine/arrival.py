"""Timing rules shared by file-arrival and table-update triggers (pure: ``now`` is an argument).

A scan that sees a change (a new file, a table commit) makes the trigger *pending*; the trigger
fires once both timers allow it:

- ``min_time_between_triggers_seconds``: at least this long since the last run the trigger
  started (runs started otherwise do not count);
- ``wait_after_last_change_seconds``: no new change for this long, so that files arriving
  together start one run, not one per file.

Changes seen while a timer holds the trigger back are not lost: it stays pending until it fires.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

ANY_UPDATED = "ANY_UPDATED"
ALL_UPDATED = "ALL_UPDATED"


@dataclass(frozen=True)
class ArrivalState:
    pending_since: datetime | None = None  # first change not yet answered by a run
    last_change_at: datetime | None = None  # most recent scan that saw a change
    last_fired_at: datetime | None = None  # last run this trigger started

    def as_dict(self) -> dict:
        """ISO 8601 strings (or None), for a JSON column."""
        return {name: value.isoformat() if value else None for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "ArrivalState":
        """The state ``as_dict`` stored; missing keys (an older or empty column) are None."""
        data = data or {}
        return cls(**{name: _parse_time(data.get(name)) for name in cls.__dataclass_fields__})


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def observe(state: ArrivalState, *, changed: bool, now: datetime) -> ArrivalState:
    """The state after a scan at ``now`` that saw (or did not see) new changes."""
    if not changed:
        return state
    return replace(state, pending_since=state.pending_since or now, last_change_at=now)


def should_fire(state: ArrivalState, *, now: datetime, min_between_seconds: int,
                wait_after_seconds: int) -> bool:
    """Whether a pending trigger may start a run at ``now``."""
    if state.pending_since is None:
        return False
    return (_at_least(state.last_fired_at, now, min_between_seconds)
            and _at_least(state.last_change_at, now, wait_after_seconds))


def _at_least(since: datetime | None, now: datetime, seconds: int) -> bool:
    return since is None or now - since >= timedelta(seconds=seconds)


def fired(state: ArrivalState, now: datetime) -> ArrivalState:
    """The state once the trigger has started a run at ``now``."""
    return replace(state, pending_since=None, last_fired_at=now)


def tables_ready(condition: str, table_names: list[str], updated: set[str]) -> bool:
    """Whether the tables ``updated`` since the trigger's last run satisfy ``condition``.

    ``ANY_UPDATED``: one of ``table_names`` was updated; ``ALL_UPDATED``: each of them was.
    Table names compare case-insensitively, as Unity Catalog names do.
    """
    seen = {name.lower() for name in updated}
    hits = [name.lower() in seen for name in table_names]
    if condition == ANY_UPDATED:
        return any(hits)
    if condition == ALL_UPDATED:
        return bool(hits) and all(hits)
    raise ValueError(f"unknown table_update condition {condition!r}: "
                     f"use {ANY_UPDATED} or {ALL_UPDATED}")
