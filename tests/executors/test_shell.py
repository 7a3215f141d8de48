"""shell_command_task: the user's command under bash, parameters as "$1".."$n"."""

import json

from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail, supervise


def run_shell(tmp_path, command, parameters=()):
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    task = {"shell_command_task": {"command": command, "parameters": list(parameters)}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace)
    log_path = tmp_path / "attempt" / "log.txt"
    outcome = supervise(spec, log_path=log_path, timeout_seconds=20)
    return outcome, read_attempt_result(spec, outcome), read_log_tail(log_path)[0]


def test_parameters_arrive_literally_without_passing_through_the_shell(tmp_path):
    tricky = ["two words", "it's \"quoted\"", "$(touch pwned)", "`id`", "; rm -rf x", "$HOME"]
    outcome, _, log = run_shell(tmp_path, 'printf "%s\\n" "$@"; pwd', tricky)
    assert log.splitlines() == [*tricky, str(tmp_path / "ws")]
    assert not (tmp_path / "ws" / "pwned").exists()
    assert outcome.succeeded


def test_a_non_zero_exit_fails_with_the_exit_code(tmp_path):
    outcome, result, _ = run_shell(tmp_path, "exit 4")
    assert outcome.exit_code == 4
    assert result.error == "Command exited with code 4"


def test_stdout_and_stderr_share_one_log_in_order(tmp_path):
    _, _, log = run_shell(tmp_path, "echo one; echo two >&2; echo three")
    assert log == "one\ntwo\nthree\n"


def test_a_shell_task_may_write_its_values_file_itself(tmp_path):
    big = "x" * (48 * 1024)
    outcome, result, _ = run_shell(
        tmp_path, 'printf \'%s\' "$1" > "$LAKEFLOW_TASK_VALUES_PATH"',
        [json.dumps({"rows": 5, "too_big": big})])
    assert outcome.succeeded
    assert result.task_values == {"rows": 5}


def test_a_shell_task_may_declare_its_lineage_itself_and_garbage_is_dropped(tmp_path):
    outcome, result = run_shell(tmp_path, 'echo \'{"reads": ["a.b.c"], "writes": [1, "x.y.z"]}\' >> "$LAKEFLOW_LINEAGE_PATH";'
                                          ' echo "not json" >> "$LAKEFLOW_LINEAGE_PATH"')[:2]
    assert outcome.exit_code == 0
    assert result.declared_lineage == [{"reads": ["a.b.c"], "writes": ["x.y.z"]}]
