"""Quartz cron expressions as Databricks writes them (`schedule.quartz_cron_expression`).

Fields: `seconds minutes hours day-of-month month day-of-week [year]`. `parse_quartz` checks
an expression and translates it into a seconds-first six-field expression for croniter
(`croniter(..., second_at_beginning=True)`); runs/engine/schedule.py iterates it.

Decisions, feature by feature (croniter 7 behaviour verified by running it):
- Numbers, names (JAN..DEC, SUN..SAT), lists, ranges, `*`, steps (`a/b`, `*/b`, `a-b/c`): expanded
  here into explicit value lists, so croniter never sees Quartz-only syntax. Ranges may wrap
  (`FRI-MON`, `22-2`) as in Quartz, except in the year field.
- Day-of-week is 1-7 = SUN-SAT in Quartz and 0-6 = SUN-SAT in cron: every value is shifted by
  one after expansion, so ranges, lists, steps, `#` and `L` all shift alike.
- `?` must be in exactly one of day-of-month and day-of-week, as in Quartz (which rejects both,
  and rejects neither, including `* ... *`); it becomes `*` for croniter.
- Day-of-month `L` and `15W` are croniter's own (`W` keeps to the month: `1W` on a Saturday is
  Monday the 3rd; a day past the month's end, e.g. `31W` in April, counts as its last day).
- Day-of-month `L-n` (0 <= n <= 30) and `LW` have no croniter form: croniter gets the few days
  they can fall on and `QuartzCron.allows_day` picks the right one.
- Day-of-week `L` alone is Saturday (Quartz: "7"); `6L` (last Friday) becomes croniter `L5`,
  `6#3` becomes `5#3` (k from 1 to 5).
- Year (1970-2099): anything is accepted; `QuartzCron.allows_year` filters, so a schedule can run
  out of years (next_slot then returns None).
- Rejected with CronInvalid: `L`, `W`, `#` inside lists or ranges (Quartz rejects them too),
  `L-nW` (not supported), and day-of-month values no chosen month has (`31 2` never fires).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date


class CronInvalid(ValueError):
    """An expression that is not valid Quartz cron; the message says what to fix."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


SECONDS = _Field("seconds", 0, 59)
MINUTES = _Field("minutes", 0, 59)
HOURS = _Field("hours", 0, 23)
DAY_OF_MONTH = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
DAY_OF_WEEK = _Field("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
YEAR = _Field("year", 1970, 2099)

# The most days each month can have (February: leap years).
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# `L-n` lands on day 28-n .. 31-n; `LW` on day 26 .. 31 (the last is at worst a Sunday, so -2).
_LAST_WEEKDAY_CANDIDATES = "26-31"
_NUMBER = re.compile(r"\d+")
_ONLY_VALUES = (SECONDS, MINUTES, HOURS, MONTH, YEAR)  # fields where '?' has no meaning


@dataclass(frozen=True)
class QuartzCron:
    expression: str  # as given, upper-cased, single spaces
    croniter_expression: str  # seconds first: croniter(..., second_at_beginning=True)
    days_before_last: int | None = None  # `L-n`: croniter yields candidates, allows_day picks
    last_weekday: bool = False  # `LW`: likewise
    years: frozenset[int] | None = None  # None: every year

    def allows_year(self, year: int) -> bool:
        return self.years is None or year in self.years

    def allows_day(self, day: date) -> bool:
        """The day-of-month rules croniter cannot express itself."""
        last = calendar.monthrange(day.year, day.month)[1]
        if self.days_before_last is not None:
            return day.day == last - self.days_before_last
        if self.last_weekday:
            return day.day == _last_weekday_of(day.year, day.month, last)
        return True

    def next_year(self, year: int) -> int | None:
        """The first allowed year after `year`, or None."""
        if self.years is None:
            return year + 1
        return min((y for y in self.years if y > year), default=None)

    def previous_year(self, year: int) -> int | None:
        if self.years is None:
            return year - 1
        return max((y for y in self.years if y < year), default=None)


def _last_weekday_of(year: int, month: int, last: int) -> int:
    weekday = calendar.weekday(year, month, last)  # Monday = 0
    return last - max(0, weekday - 4)  # Saturday -> Friday (-1), Sunday -> Friday (-2)


# --- parsing ---------------------------------------------------------------------


def parse_quartz(expr: str) -> QuartzCron:
    """Check a Quartz cron expression and translate it; raises CronInvalid."""
    if not isinstance(expr, str):
        raise CronInvalid("must be a string such as '0 0 6 * * ?'")
    fields = expr.upper().split()
    if len(fields) not in (6, 7):
        raise CronInvalid(
            f"expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week "
            f"[year]), got {len(fields)}; Quartz cron starts with seconds, e.g. '0 0 6 * * ?'")
    seconds, minutes, hours, dom, month, dow = fields[:6]
    for field, text in zip(_ONLY_VALUES, (seconds, minutes, hours, month, *fields[6:])):
        if "?" in text:
            raise CronInvalid(f"{field.name}: '?' is only allowed in day-of-month or day-of-week")
    _check_question_marks(dom, dow)
    months = _expand(MONTH, month)
    dom_text, days_before_last, last_weekday = _day_of_month(dom, months)
    translated = " ".join([
        _as_list(SECONDS, _expand(SECONDS, seconds)),
        _as_list(MINUTES, _expand(MINUTES, minutes)),
        _as_list(HOURS, _expand(HOURS, hours)),
        dom_text,
        _as_list(MONTH, months),
        _day_of_week(dow),
    ])
    years = _years(fields[6]) if len(fields) == 7 else None
    return QuartzCron(" ".join(fields), translated, days_before_last, last_weekday, years)


def _check_question_marks(dom: str, dow: str) -> None:
    if dom == "?" and dow == "?":
        raise CronInvalid("'?' may be in day-of-month or day-of-week, not both; "
                          "give the other a value, e.g. '0 0 6 ? * MON' or '0 0 6 1 * ?'")
    if dom != "?" and dow != "?":
        raise CronInvalid(
            f"one of day-of-month ('{dom}') and day-of-week ('{dow}') must be '?': Quartz cannot "
            "combine them; e.g. '0 0 6 * * ?' (every day) or '0 0 6 ? * MON-FRI'")


def _as_list(field: _Field, values: frozenset[int]) -> str:
    if len(values) == field.high - field.low + 1:
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _expand(field: _Field, text: str) -> frozenset[int]:
    """The values a list of `*`, `a`, `a-b` and their `/step` forms stands for."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronInvalid(f"{field.name}: '{text}' has an empty list entry")
        values.update(_expand_item(field, item))
    return frozenset(values)


def _expand_item(field: _Field, item: str) -> list[int]:
    base, slash, step_text = item.partition("/")
    step = _step(field, item, step_text) if slash else 1
    if base == "*":
        first, last = field.low, field.high
    elif "-" in base:
        start, _, end = base.partition("-")
        first, last = _number(field, start, item), _number(field, end, item)
    else:
        first = _number(field, base, item)
        last = field.high if slash else first  # Quartz: "5/15" runs from 5 to the field's end
    return _walk(field, first, last, item)[::step]


def _walk(field: _Field, first: int, last: int, item: str) -> list[int]:
    """first..last; a backwards range wraps past the field's end, as in Quartz."""
    if first <= last:
        return list(range(first, last + 1))
    if field is YEAR:
        raise CronInvalid(f"year: range '{item}' runs backwards; write the earlier year first")
    return list(range(first, field.high + 1)) + list(range(field.low, last + 1))


def _step(field: _Field, item: str, text: str) -> int:
    biggest = field.high if field is not YEAR else field.high - field.low
    if not _NUMBER.fullmatch(text) or not 1 <= int(text) <= biggest:
        raise CronInvalid(f"{field.name}: step in '{item}' must be a whole number from 1 to {biggest}")
    return int(text)


def _number(field: _Field, token: str, item: str) -> int:
    if token in field.names:
        return field.low + field.names.index(token)
    if _NUMBER.fullmatch(token) and field.low <= int(token) <= field.high:
        return int(token)
    where = f" in '{item}'" if item != token else ""
    raise CronInvalid(f"{field.name}: '{token}'{where} is not allowed; {_allowed(field)}")


def _allowed(field: _Field) -> str:
    names = f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
    special = {"day-of-month": ", or ?, L, L-n, LW, nW",
               "day-of-week": " (1 = SUN), or ?, L, nL, n#k"}.get(field.name, "")
    return f"use {field.low}-{field.high}{names} in lists, ranges and /steps, or *{special}"


def _day_of_month(text: str, months: frozenset[int]) -> tuple[str, int | None, bool]:
    """(croniter field, days_before_last, last_weekday)."""
    if text == "?":
        return "*", None, False
    if text in ("L", "L-0"):
        return "L", None, False
    if text == "LW":
        return _LAST_WEEKDAY_CANDIDATES, None, True
    offset = re.fullmatch(r"L-(\d+)", text)
    if offset:
        return _days_before_last(int(offset.group(1)), months), int(offset.group(1)), False
    nearest = re.fullmatch(r"(\d+)W", text)
    if nearest:
        return f"{_number(DAY_OF_MONTH, nearest.group(1), text)}W", None, False
    if re.fullmatch(r"L-\d+W", text):
        raise CronInvalid(f"day-of-month: '{text}' (weekday nearest to L-n) is not supported; "
                          "use L-n, LW or nW")
    if "L" in text or "W" in text:
        raise CronInvalid(f"day-of-month: L and W must stand alone ('{text}'); "
                          "use L, L-3, LW or 15W, not inside a list or range")
    days = _expand(DAY_OF_MONTH, text)
    if min(days) > max(_MAX_DAYS[m - 1] for m in months):
        raise CronInvalid(f"day-of-month: '{text}' never occurs in the chosen month(s), "
                          "so the schedule would never fire")
    return _as_list(DAY_OF_MONTH, days), None, False


def _days_before_last(n: int, months: frozenset[int]) -> str:
    if n > 30:
        raise CronInvalid(f"day-of-month: offset in 'L-{n}' must be at most 30")
    if all(_MAX_DAYS[m - 1] - n < 1 for m in months):
        raise CronInvalid(f"day-of-month: 'L-{n}' never occurs in the chosen month(s), "
                          "so the schedule would never fire")
    first, last = max(1, 28 - n), 31 - n
    return f"{first}-{last}" if first < last else str(last)


def _day_of_week(text: str) -> str:
    """croniter's day-of-week field (0 = SUN) for a Quartz one (1 = SUN)."""
    if text == "?":
        return "*"
    if text == "L":
        return "6"  # Quartz: "L" alone means 7, Saturday
    special = re.fullmatch(r"(\w+?)(L|#(\d+))", text)
    if special:
        day = _number(DAY_OF_WEEK, special.group(1), text) - 1
        if special.group(2) == "L":
            return f"L{day}"
        if not 1 <= int(special.group(3)) <= 5:
            raise CronInvalid(f"day-of-week: in '{text}' the week after # must be 1-5")
        return f"{day}#{special.group(3)}"
    if "L" in text or "#" in text:  # no day name contains an L
        raise CronInvalid(f"day-of-week: nL and n#k must stand alone ('{text}'); "
                          "e.g. 6L (last Friday) or 2#1 (first Monday), not inside a list or range")
    return _as_list(DAY_OF_WEEK, frozenset(day - 1 for day in _expand(DAY_OF_WEEK, text)))


def _years(text: str) -> frozenset[int] | None:
    if text == "*":
        return None
    return _expand(YEAR, text)
