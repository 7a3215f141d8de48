"""A reference in a shell command or SQL text reaches it as a value (an environment variable, a
bound marker), never as code: a parameter of "$(id -un)" prints those characters, a quote in a
SQL value adds no columns."""

import pytest

from jobs.spec.embedded import EmbeddedReferenceError, shell_command_with_variables, sql_with_markers
from jobs.spec.refs import find_references
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import alice, make_job  # noqa: F401 (a fixture)

VALUES = {"{{job.parameters.x}}": "X", "{{job.id}}": "7"}


def value_of(ref):
    return VALUES.get(ref.text)


@pytest.mark.parametrize("command, expected", [
    ("echo {{job.parameters.x}}", 'echo "${LAKEFLOW_REF_1}"'),
    ('echo "a {{job.parameters.x}} b"', 'echo "a ${LAKEFLOW_REF_1} b"'),
    ("echo 'a {{job.parameters.x}} b'", "echo 'a '\"${LAKEFLOW_REF_1}\"' b'"),
    ("echo $'\\t{{job.parameters.x}}'", "echo $'\\t'\"${LAKEFLOW_REF_1}\"$''"),
    ("echo \\{{job.parameters.x}}", 'echo "${LAKEFLOW_REF_1}"'),
    ("echo {{job.parameters.x}}{{job.id}} {{job.parameters.x}}",
     'echo "${LAKEFLOW_REF_1}""${LAKEFLOW_REF_2}" "${LAKEFLOW_REF_1}"'),
    ("echo {{secrets.scope.key}}", "echo {{secrets.scope.key}}"),  # unknown: stays as written
])
def test_a_reference_in_a_command_becomes_a_variable_quoted_for_where_it_stands(command, expected):
    rewritten, variables = shell_command_with_variables(command, value_of)
    assert rewritten == expected
    assert set(variables.values()) <= {"X", "7"}


@pytest.mark.parametrize("sql, expected", [
    ("SELECT {{job.parameters.x}} AS v", "SELECT  :lakeflow_ref_1  AS v"),
    ("SELECT 'a {{job.parameters.x}} b' AS v", "SELECT ('a ' || :lakeflow_ref_1 || ' b') AS v"),
    ("SELECT 'it''s {{job.parameters.x}}'", "SELECT ('it''s ' || :lakeflow_ref_1 || '')"),
    ("SELECT 1 -- {{job.parameters.x}}\n", "SELECT 1 -- {{job.parameters.x}}\n"),
    ("SELECT 1 /* {{job.parameters.x}} */", "SELECT 1 /* {{job.parameters.x}} */"),
])
def test_a_reference_in_sql_becomes_a_bound_marker(sql, expected):
    assert sql_with_markers(sql, value_of)[0] == expected


@pytest.mark.parametrize("sql", ['SELECT * FROM "{{job.parameters.x}}"', "SELECT $$ {{job.parameters.x}} $$"])
def test_a_reference_that_would_name_sql_rather_than_be_a_value_is_refused(sql):
    with pytest.raises(EmbeddedReferenceError, match="where no value can be bound"):
        sql_with_markers(sql, value_of)


def test_find_references_is_what_both_rewrites_use():
    assert [r.text for r in find_references("a {{job.id}} b")] == ["{{job.id}}"]


def test_a_parameter_holding_a_command_substitution_is_printed_not_run(alice, tmp_path):
    marker = tmp_path / "pwned"
    job = make_job(alice, [{"task_key": "t", "shell_command_task": {"command": "echo got {{job.parameters.x}}"}}],
                   parameters=[{"name": "x", "default": "safe"}])
    run, _ = create_run(job, job_parameters={"x": f"$(id -un); touch {marker}"})

    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.SUCCESS
    assert open(attempt.log_path).read() == f"got $(id -un); touch {marker}\n"
    assert not marker.exists()


def test_a_quote_in_a_sql_value_adds_no_columns(alice):
    query = "SELECT {{job.parameters.x}} AS v, 'hello {{job.parameters.x}}' AS greeting"
    job = make_job(alice, [{"task_key": "q", "sql_task": {"warehouse_id": "default", "query": {"query_text": query}}}],
                   parameters=[{"name": "x", "default": "safe"}])
    value = "1' AS a, 'injected"
    run, _ = create_run(job, job_parameters={"x": value})

    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert attempt.sql_output["columns"] == ["v", "greeting"]
    assert attempt.sql_output["rows"] == [{"v": value, "greeting": f"hello {value}"}]


def test_a_reference_where_sql_needs_a_name_is_refused_at_save(api):
    task = {"task_key": "q", "sql_task": {"warehouse_id": "default",
                                          "query": {"query_text": 'SELECT * FROM "{{job.parameters.t}}"'}}}
    response = api.post("jobs/create", {"name": "j", "tasks": [task], "parameters": [{"name": "t", "default": "x"}]})
    assert response.status_code == 400
    assert "tasks[0].sql_task.query.query_text: {{job.parameters.t}} stands inside a quoted identifier" \
        in response.json()["message"]


@pytest.mark.parametrize("command", [
    "[[ {{job.parameters.x}} -gt 3 ]]", "echo $(( {{job.parameters.x}} + 1 ))", "(( n = {{job.parameters.x}} ))",
    "let n={{job.parameters.x}}", "declare -i n={{job.parameters.x}}", "a[{{job.parameters.x}}]=1",
    "echo ${a[{{job.parameters.x}}]}", 'echo "$(( {{job.parameters.x}} ))"',
])
def test_a_reference_where_bash_evaluates_arithmetic_is_refused(command):
    # bash runs the $(...) inside a value like a[$(cmd)] wherever it evaluates arithmetic.
    with pytest.raises(EmbeddedReferenceError, match="evaluates arithmetic"):
        shell_command_with_variables(command, value_of)


@pytest.mark.parametrize("command, why", [
    ("cat <<'EOF'\n{{job.parameters.x}}\nEOF", "quoted delimiter"),
    ('echo "`echo {{job.parameters.x}}`"', "inside double quotes"),
    ("echo 'never closed {{job.parameters.x}}", "do not close"),
])
def test_a_reference_whose_place_cannot_be_quoted_is_refused(command, why):
    with pytest.raises(EmbeddedReferenceError, match=why):
        shell_command_with_variables(command, value_of)


@pytest.mark.parametrize("command, expected", [
    ("# it's a comment {{job.parameters.x}}\necho \"{{job.parameters.x}}\"",
     "# it's a comment {{job.parameters.x}}\necho \"${LAKEFLOW_REF_1}\""),
    ("cat <<EOF\nDon't {{job.parameters.x}}\nEOF\necho \"{{job.parameters.x}}\"",
     "cat <<EOF\nDon't ${LAKEFLOW_REF_1}\nEOF\necho \"${LAKEFLOW_REF_1}\""),
    ('echo "$(echo {{job.parameters.x}})"', 'echo "$(echo "${LAKEFLOW_REF_1}")"'),
    ("[[ -f {{job.parameters.x}} ]]", '[[ -f "${LAKEFLOW_REF_1}" ]]'),
])
def test_comments_heredocs_and_substitutions_keep_the_quoting_right(command, expected):
    assert shell_command_with_variables(command, value_of)[0] == expected


@pytest.mark.parametrize("sql, expected", [
    ("SELECT TIMESTAMP '{{job.parameters.x}} 00:00:00'", "SELECT CAST(('' || :lakeflow_ref_1 || ' 00:00:00') AS TIMESTAMP)"),
    ("SELECT DATE '{{job.parameters.x}}'", "SELECT CAST(('' || :lakeflow_ref_1 || '') AS DATE)"),
])
def test_a_typed_literal_becomes_a_cast(sql, expected):
    assert sql_with_markers(sql, value_of)[0] == expected


def test_an_arithmetic_reference_is_refused_at_save(api):
    task = {"task_key": "t", "shell_command_task": {"command": "exit $(( {{job.parameters.n}} ))"}}
    response = api.post("jobs/create", {"name": "j", "tasks": [task], "parameters": [{"name": "n", "default": "1"}]})
    assert response.status_code == 400
    assert "tasks[0].shell_command_task.command: {{job.parameters.n}} stands where bash evaluates arithmetic" \
        in response.json()["message"]


def test_a_value_after_an_apostrophe_in_a_comment_stays_one_unglobbed_argument(alice, tmp_path):
    (tmp_path / "f1").write_text("")
    command = f"# it's here\ncd {tmp_path}\nprintf '[%s]\\n' \"{{{{job.parameters.x}}}}\"\nprintf '<%s>\\n' {{{{job.parameters.x}}}}"
    job = make_job(alice, [{"task_key": "t", "shell_command_task": {"command": command}}],
                   parameters=[{"name": "x", "default": "safe"}])
    run, _ = create_run(job, job_parameters={"x": "a b f*"})
    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert open(attempt.log_path).read() == "[a b f*]\n<a b f*>\n"
