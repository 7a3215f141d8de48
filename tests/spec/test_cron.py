from datetime import date, datetime

import pytest
from croniter import croniter

from jobs.spec.cron import CronInvalid, parse_quartz


def croniter_form(expr):
    return parse_quartz(expr).croniter_expression


def fires(expr, start, n=3):
    """The first n naive times croniter gives for the translation (no day or year rules)."""
    it = croniter(croniter_form(expr), start, second_at_beginning=True)
    return [it.get_next(datetime) for _ in range(n)]


# --- translations ----------------------------------------------------------------


@pytest.mark.parametrize("quartz, translated", [
    ("0 0 6 * * ?", "0 0 6 * * *"),
    ("0 0/15 * ? * *", "0 0,15,30,45 * * * *"),
    ("0 0 9 ? * MON-FRI", "0 0 9 * * 1,2,3,4,5"),
    ("0 0 9 ? * 2-6", "0 0 9 * * 1,2,3,4,5"),  # 1 = SUN in Quartz, 0 = SUN in cron
    ("0 0 9 ? * 1", "0 0 9 * * 0"),
    ("0 0 9 ? * SUN,SAT", "0 0 9 * * 0,6"),
    ("0 0 9 ? * FRI-MON", "0 0 9 * * 0,1,5,6"),  # wraps past Saturday, as in Quartz
    ("0 0 9 ? * 2/2", "0 0 9 * * 1,3,5"),
    ("0 0 9 ? * *", "0 0 9 * * *"),
    ("0 30 2 ? * 1#2", "0 30 2 * * 0#2"),
    ("0 0 12 ? * SUN#1", "0 0 12 * * 0#1"),
    ("0 0 12 L * ?", "0 0 12 L * *"),
    ("0 0 12 ? * 6L", "0 0 12 * * L5"),
    ("0 0 12 ? * FRIL", "0 0 12 * * L5"),
    ("0 0 12 ? * L", "0 0 12 * * 6"),  # L alone is 7, Saturday
    ("0 0 12 15W * ?", "0 0 12 15W * *"),
    ("0 0 22-2 * * ?", "0 0 0,1,2,22,23 * * *"),
    ("5/20 * * * * ?", "5,25,45 * * * * *"),
    ("0 0 0 1 JAN,jul ?", "0 0 0 1 1,7 *"),
    ("0 0 0 1-10/3 * ?", "0 0 0 1,4,7,10 * *"),
    ("0   0  6 * * ? *", "0 0 6 * * *"),
])
def test_translation(quartz, translated):
    assert croniter_form(quartz) == translated


def test_the_expression_is_kept_upper_cased_with_single_spaces():
    assert parse_quartz("0 0  6 ? * mon").expression == "0 0 6 ? * MON"


def test_monday_to_friday_fires_on_weekdays_only():
    # 2025-03-01 is a Saturday
    assert [d.date() for d in fires("0 0 9 ? * MON-FRI", datetime(2025, 3, 1))] == [
        date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)]


def test_second_monday_and_last_friday_fire_on_those_days():
    assert fires("0 30 2 ? * 2#2", datetime(2025, 3, 1), 2) == [
        datetime(2025, 3, 10, 2, 30), datetime(2025, 4, 14, 2, 30)]
    assert fires("0 0 12 ? * 6L", datetime(2025, 3, 1), 2) == [
        datetime(2025, 3, 28, 12), datetime(2025, 4, 25, 12)]


def test_nearest_weekday_keeps_to_the_month():
    # 2025-03-15 is a Saturday -> Friday 14th; 2022-01-01 is a Saturday -> Monday 3rd
    assert fires("0 0 12 15W * ?", datetime(2025, 3, 1), 1) == [datetime(2025, 3, 14, 12)]
    assert fires("0 0 12 1W * ?", datetime(2021, 12, 15), 1) == [datetime(2022, 1, 3, 12)]


def test_every_two_seconds():
    assert fires("0/2 * * * * ?", datetime(2025, 3, 1, 10), 3) == [
        datetime(2025, 3, 1, 10, 0, 2), datetime(2025, 3, 1, 10, 0, 4), datetime(2025, 3, 1, 10, 0, 6)]


def test_days_before_last_gives_candidates_and_a_day_rule():
    cron = parse_quartz("0 0 12 L-3 * ?")
    assert cron.croniter_expression == "0 0 12 25-28 * *"
    assert cron.allows_day(date(2025, 1, 28)) and not cron.allows_day(date(2025, 1, 27))
    assert cron.allows_day(date(2025, 2, 25)) and not cron.allows_day(date(2025, 2, 28))
    assert parse_quartz("0 0 12 L-0 * ?").croniter_expression == "0 0 12 L * *"


def test_last_weekday_gives_candidates_and_a_day_rule():
    cron = parse_quartz("0 0 12 LW * ?")
    assert cron.croniter_expression == "0 0 12 26-31 * *"
    assert cron.allows_day(date(2025, 5, 30))  # May 31st 2025 is a Saturday
    assert not cron.allows_day(date(2025, 5, 31))
    assert cron.allows_day(date(2025, 8, 29))  # August 31st 2025 is a Sunday
    assert cron.allows_day(date(2025, 3, 31))  # a Monday


def test_year_field():
    cron = parse_quartz("0 0 12 1 1 ? 2027,2030-2031")
    assert cron.years == {2027, 2030, 2031}
    assert cron.next_year(2027) == 2030 and cron.next_year(2031) is None
    assert cron.previous_year(2030) == 2027 and cron.previous_year(2027) is None
    assert parse_quartz("0 0 12 1 1 ? *").years is None
    assert parse_quartz("0 0 12 1 1 ? 2025/50").years == {2025, 2075}


# --- rejections ------------------------------------------------------------------


@pytest.mark.parametrize("expr, message", [
    ("0 0 6 * *", "expected 6 or 7 fields"),
    ("", "expected 6 or 7 fields"),
    ("0 0 6 * * ? * 1", "got 8"),
    ("0 0 6 * * *", "one of day-of-month ('*') and day-of-week ('*') must be '?'"),
    ("0 0 6 1 * MON", "must be '?'"),
    ("0 0 6 ? * ?", "'?' may be in day-of-month or day-of-week, not both"),
    ("? 0 6 * * ?", "seconds: '?' is only allowed in day-of-month or day-of-week"),
    ("0 0 6 * ? ?", "month: '?' is only allowed"),
    ("0 0 6 * * ? ?", "year: '?' is only allowed"),
    ("60 0 6 * * ?", "seconds: '60' is not allowed; use 0-59"),
    ("0 60 6 * * ?", "minutes: '60' is not allowed"),
    ("0 0 24 * * ?", "hours: '24' is not allowed; use 0-23"),
    ("0 0 6 0 * ?", "day-of-month: '0' is not allowed; use 1-31"),
    ("0 0 6 32 * ?", "day-of-month: '32' is not allowed"),
    ("0 0 6 1 13 ?", "month: '13' is not allowed; use 1-12 or JAN-DEC"),
    ("0 0 6 1 JANUARY ?", "month: 'JANUARY' is not allowed"),
    ("0 0 6 ? * 0", "day-of-week: '0' is not allowed; use 1-7 or SUN-SAT"),
    ("0 0 6 ? * 8", "(1 = SUN)"),
    ("0 0 6 ? * MON-FRX", "day-of-week: 'FRX' in 'MON-FRX' is not allowed"),
    ("0 0 6 * * ? 1969", "year: '1969' is not allowed; use 1970-2099"),
    ("0 0 6 * * ? 2030-2025", "year: range '2030-2025' runs backwards"),
    ("0 0/0 6 * * ?", "minutes: step in '0/0' must be a whole number from 1 to 59"),
    ("0 0/x 6 * * ?", "minutes: step in '0/X'"),
    ("0 0 */24 * * ?", "hours: step in '*/24' must be a whole number from 1 to 23"),
    ("0 0 6 1,,2 * ?", "day-of-month: '1,,2' has an empty list entry"),
    ("0 0 6 1- * ?", "day-of-month: '' in '1-' is not allowed"),
    ("0 0 6 1,L * ?", "day-of-month: L and W must stand alone ('1,L')"),
    ("0 0 6 1-15W * ?", "L and W must stand alone"),
    ("0 0 6 32W * ?", "day-of-month: '32' in '32W' is not allowed"),
    ("0 0 6 L-31 * ?", "offset in 'L-31' must be at most 30"),
    ("0 0 6 L-3W * ?", "'L-3W' (weekday nearest to L-n) is not supported"),
    ("0 0 6 ? * 1,6L", "day-of-week: nL and n#k must stand alone ('1,6L')"),
    ("0 0 6 ? * 2-6#1", "nL and n#k must stand alone"),
    ("0 0 6 ? * 6#6", "day-of-week: in '6#6' the week after # must be 1-5"),
    ("0 0 6 ? * 6#0", "must be 1-5"),
    ("0 0 6 ? * 9L", "day-of-week: '9' in '9L' is not allowed"),
    ("0 0 6 31 2 ?", "day-of-month: '31' never occurs in the chosen month(s)"),
    ("0 0 6 31 APR,JUN ?", "never occurs"),
    ("0 0 6 L-29 2 ?", "day-of-month: 'L-29' never occurs"),
])
def test_rejection(expr, message):
    with pytest.raises(CronInvalid) as caught:
        parse_quartz(expr)
    assert message in str(caught.value)


def test_a_non_string_is_rejected():
    with pytest.raises(CronInvalid, match="must be a string"):
        parse_quartz(None)


def test_the_last_day_of_february_exists_in_leap_years():
    assert parse_quartz("0 0 6 29 2 ?").croniter_expression == "0 0 6 29 2 *"
    assert parse_quartz("0 0 6 30,31 1,2 ?").croniter_expression == "0 0 6 30,31 1,2 *"
