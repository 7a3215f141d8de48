"""python_wheel_task: entry points of an installed distribution, or the package's attribute."""

import json
import textwrap

from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail, supervise


def install_fake_distribution(site):
    """A distribution "fake-etl" (module fake_etl) as pip would leave it on sys.path."""
    package = site / "fake_etl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("""
        import json, sys

        def main():
            print(json.dumps({"who": "main", "argv": sys.argv}))

        def other_group():
            print(json.dumps({"who": "other_group"}))

        def helper():
            print(json.dumps({"who": "helper", "argv": sys.argv}))

        def fails():
            return 2
    """))
    info = site / "fake_etl-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-etl\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [etl.plugins]
        run = fake_etl:other_group

        [console_scripts]
        run = fake_etl:main
        fails = fake_etl:fails
    """))


def run_wheel(tmp_path, entry_point, package_name="fake-etl", parameters=None, named=None):
    site = tmp_path / "site"
    if not site.exists():
        install_fake_distribution(site)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    body = {"package_name": package_name, "entry_point": entry_point}
    if parameters is not None:
        body["parameters"] = parameters
    if named is not None:
        body["named_parameters"] = named
    spec = prepare_attempt({"python_wheel_task": body}, attempt_dir=tmp_path / "attempt",
                           workspace_root=workspace, env={"PYTHONPATH": str(site)})
    log_path = tmp_path / "attempt" / "log.txt"
    outcome = supervise(spec, log_path=log_path, timeout_seconds=20)
    return outcome, read_attempt_result(spec, outcome), read_log_tail(log_path)[0]


def test_a_console_script_entry_point_gets_parameters_then_named_parameters(tmp_path):
    outcome, result, log = run_wheel(tmp_path, "run", parameters=["a b", "2"],
                                     named={"date": "2024-01-01", "mode": "full load"})
    assert json.loads(log) == {"who": "main", "argv": [
        "run", "a b", "2", "--date=2024-01-01", "--mode=full load"]}
    assert outcome.succeeded
    assert result.error is None


def test_an_entry_point_not_declared_falls_back_to_the_modules_attribute(tmp_path):
    outcome, _, log = run_wheel(tmp_path, "helper", named={"x": "1"})
    assert json.loads(log) == {"who": "helper", "argv": ["helper", "--x=1"]}
    assert outcome.succeeded


def test_a_non_zero_return_value_fails_the_task(tmp_path):
    outcome, result, _ = run_wheel(tmp_path, "fails")
    assert outcome.exit_code == 2
    assert result.error == "SystemExit: 2"


def test_a_missing_entry_point_is_resource_not_found_naming_both_places(tmp_path):
    outcome, result, log = run_wheel(tmp_path, "nope")
    assert outcome.exit_code == 1
    assert result.error_code == "RESOURCE_NOT_FOUND"
    assert result.error == ("Entry point 'nope' not found: distribution 'fake-etl' has no entry "
                            "point of that name, and module 'fake_etl' has no attribute 'nope'")
    assert result.error in log


def test_a_package_that_is_not_installed_is_resource_not_found(tmp_path):
    _, result, _ = run_wheel(tmp_path, "main", package_name="not-installed-pkg")
    assert result.error_code == "RESOURCE_NOT_FOUND"
    assert ("distribution 'not-installed-pkg' is not installed, "
            "and module 'not_installed_pkg' cannot be imported") in result.error
