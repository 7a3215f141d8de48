"""The Query history page: the editor with the tables beside it, the answer (first rows shown, all
counted), DuckDB's errors, the time limit, the viewer's own history, and the CSV download."""

import csv
import io

import pytest
from django.urls import reverse

from system_tables.models import QueryRecord

pytestmark = pytest.mark.usefixtures("system_db")
PAGE = reverse("system_tables:query")
CSV = reverse("system_tables:csv")


@pytest.fixture
def bob(client, users):
    client.force_login(users["bob"])
    return users["bob"]


def test_the_page_needs_a_signed_in_user(client, system_db):
    assert client.get(PAGE).status_code == 302
    assert client.get(CSV, {"sql": "SELECT 1"}).status_code == 302


def test_the_page_lists_the_tables_with_their_columns_and_an_example(client, bob):
    page = client.get(PAGE).content.decode()

    assert 'id="nav-query-history"' in page
    for table in ("system.lakeflow.job_run_timeline", "system.access.audit", "system.lakeflow.task_usage"):
        assert f'data-table="{table}"' in page
    assert "period_start_time" in page and "execution_duration_seconds" in page
    assert "FROM system.lakeflow.job_run_timeline" in page  # the example in the editor
    assert not QueryRecord.objects.exists()  # showing the page runs nothing


def test_a_query_shows_its_rows_and_goes_into_the_history(client, bob, history):
    response = client.get(PAGE, {"sql": "SELECT job_id, result_state FROM system.lakeflow.job_run_timeline"})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="query-count">1 row<' in page
    assert f"<td class=\"text-end\">{history['reports'].id}</td>" in page and "FAILED" in page
    record = QueryRecord.objects.get(user=bob)
    assert record.rows == 1 and record.error == "" and record.duration_ms is not None
    assert f"?record={record.id}" in page


def test_the_first_thousand_rows_are_shown_and_all_counted(client, bob):
    page = client.get(PAGE, {"sql": "SELECT range AS n FROM range(1500)"}).content.decode()

    assert "1500 rows, the first 1000 shown" in page
    assert page.count("<tr><td") == 1000


def test_past_the_row_limit_the_page_says_so(client, bob, settings):
    settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS = 100

    page = client.get(PAGE, {"sql": "SELECT range AS n FROM range(1500)"}).content.decode()

    assert "More than 100 rows" in page
    assert QueryRecord.objects.get().truncated


def test_an_error_shows_duckdbs_message_and_is_kept_in_the_history(client, bob):
    response = client.get(PAGE, {"sql": "SELECT no_such_column FROM system.lakeflow.jobs"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="query-error"' in page and "no_such_column" in page
    assert "no_such_column" in QueryRecord.objects.get(user=bob).error


def test_a_refused_query_says_why(client, bob):
    response = client.get(PAGE, {"sql": "SELECT * FROM lakeflow_db.auth_user"})

    assert response.status_code == 400
    assert "is not a system table" in response.content.decode()


def test_a_query_past_the_time_limit_is_stopped(client, bob, settings):
    settings.LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS = 0.2

    response = client.get(PAGE, {"sql": "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"})

    assert response.status_code == 400
    assert "ran longer than 0.2 seconds and was stopped" in response.content.decode()


def test_the_history_is_the_viewers_own_and_a_past_query_runs_again(client, bob, users):
    mine = QueryRecord.objects.create(user=bob, text="SELECT 41 + 1 AS answer")
    theirs = QueryRecord.objects.create(user=users["alice"], text="SELECT 'alice was here' AS secret")

    page = client.get(PAGE).content.decode()
    assert "SELECT 41 + 1 AS answer" in page and "alice was here" not in page

    again = client.get(PAGE, {"record": mine.id}).content.decode()
    assert "<td class=\"text-end\">42</td>" in again
    assert QueryRecord.objects.filter(user=bob, text=mine.text).count() == 2
    assert client.get(PAGE, {"record": theirs.id}).status_code == 404


def test_the_csv_has_every_row_of_the_answer(client, bob, history):
    client.get(PAGE, {"sql": "SELECT range AS n, 'x,y' AS text, NULL AS nothing FROM range(1500)"})
    record = QueryRecord.objects.get(user=bob)

    response = client.get(CSV, {"record": record.id})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["n", "text", "nothing"]
    assert len(rows) == 1501 and rows[1] == ["0", "x,y", ""] and rows[-1][0] == "1499"


def test_a_text_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(client, bob):
    response = client.get(CSV, {"sql": "SELECT '=HYPERLINK(''http://x'')' AS a, '@SUM(1)' AS b, '-2+3' AS c, "
                                       "-2 AS d, 'plain' AS e"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1] == ["'=HYPERLINK('http://x')", "'@SUM(1)", "'-2+3", "-2", "plain"]


def test_the_csv_stops_at_the_row_limit(client, bob, settings):
    settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS = 10

    response = client.get(CSV, {"sql": "SELECT range AS n FROM range(1500)"})

    assert len(b"".join(response.streaming_content).decode().splitlines()) == 11


def test_a_failing_csv_says_why(client, bob):
    response = client.get(CSV, {"sql": "SELECT * FROM lakeflow_db.runs_run"})

    assert response.status_code == 400
    assert "is not a system table" in response.content.decode()
