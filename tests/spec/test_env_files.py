"""`.env` files of environment_variables entries, parsed as Databricks documents them."""

import pytest

from jobs.spec.env_files import EnvFileRefused, merged_variables, parse_env_file


def test_key_value_lines_with_comments_and_blanks_and_values_taken_literally():
    text = b"# settings\n\nTARGET=prod\nURL=https://x/?a=b#frag\nQUOTED=\"kept\"\nEMPTY=\n   \n"
    assert parse_env_file(text, "/Volumes/c/s/v/.env") == {
        "TARGET": "prod", "URL": "https://x/?a=b#frag", "QUOTED": '"kept"', "EMPTY": ""}


@pytest.mark.parametrize("text, words", [
    (b"export A=1\n", "line 1 is not KEY=VALUE"),
    (b"A=1\nnot a pair\n", "line 2 is not KEY=VALUE"),
    (b"9A=1\n", "line 1 is not KEY=VALUE"),
    (b"LAKEFLOW_X=1\n", "names starting with LAKEFLOW_"),
    (b"A=" + b"x" * 1030 + b"\n", "line 1 is longer than 1,024 bytes"),
    (b"A=1\n" * 9000, "a .env file may be at most 32,768"),
    (b"A=\xff\n", "is not UTF-8"),
])
def test_a_malformed_file_is_refused_naming_the_file_and_line(text, words):
    with pytest.raises(EnvFileRefused, match=words) as caught:
        parse_env_file(text, "/Workspace/team/.env")
    assert "/Workspace/team/.env" in str(caught.value)


def test_a_later_file_wins_and_inline_variables_win_over_files():
    files = [("/a.env", b"A=1\nB=1\n"), ("/b.env", b"B=2\nC=2\n")]
    assert merged_variables(files, {"C": "inline"}) == {"A": "1", "B": "2", "C": "inline"}


def test_crlf_lines_a_bom_and_unicode_breaks_inside_values():
    assert parse_env_file("\ufeffA=1\r\nB=x\u2028y\n".encode(), "/Volumes/c/s/v/.env") == {"A": "1", "B": "x\u2028y"}
