"""The run page's Events card: each event with its time of day to the millisecond (local time),
its type and its sentence, oldest first."""

from zoneinfo import ZoneInfo

from runs.admission import create_run
from runs.models import RunEvent
from tests.dashboard.conftest import make_job


def test_each_event_shows_its_local_time_to_the_millisecond(browser, user, held_broker, settings):
    settings.TIME_ZONE = "Europe/Paris"
    run, _ = create_run(make_job(user), creator=user)
    first = RunEvent.objects.filter(run=run).order_by("id").first()
    html = browser.get(f"/jobs/{run.job_id}/runs/{run.id}/").content.decode()

    shown = first.at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M:%S.%f")[:12]  # UTC+1 or +2: not UTC
    row = f'<tr data-event-type="{first.type}"><td class="text-secondary text-nowrap">{shown}</td>'
    assert row in html
