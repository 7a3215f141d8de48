"""``lakeflow bundle validate | deploy | run | destroy | summary | init``, as the Databricks CLI's
``bundle`` commands behave, against a Lakeflow Jobs server."""

import argparse
import json
import os
import sys

from lakeflow_cli.bundle import deploy as deploying, destroy as destroying, run as running, summary
from lakeflow_cli.bundle.config import find_root
from lakeflow_cli.bundle.init import init, templates
from lakeflow_cli.bundle.located import plain
from lakeflow_cli.bundle.prepare import prepare
from lakeflow_cli.bundle.problems import BundleError, Problem


def parser():
    top = argparse.ArgumentParser(prog="lakeflow", description="Work with a Lakeflow Jobs server.")
    commands = top.add_subparsers(dest="group", required=True)
    bundle = commands.add_parser("bundle", help="declarative bundles: databricks.yml")
    verbs = bundle.add_subparsers(dest="verb", required=True)

    def with_target(name, help_text):
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("-t", "--target", help="the bundle target to use")
        verb.add_argument("-p", "--profile", help="the ~/.databrickscfg profile to use")
        verb.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                          help="set a variable's value (repeatable)")
        return verb

    validate = with_target("validate", "check the bundle, locally and with the server's validation")
    validate.add_argument("-o", "--output", choices=("text", "json"), default="text")
    deploy = with_target("deploy", "deploy the bundle's resources and files")
    deploy.add_argument("--force-lock", action="store_true", help="take the deploy lock even if another holds it")
    deploy.add_argument("--force", action="store_true", help="skip the production Git branch check")
    run = with_target("run", "run a deployed job and follow it")
    run.add_argument("key", help="the job's resource key")
    run.add_argument("--params", help="job parameters: name=value,name2=value2")
    run.add_argument("--only", help="run only these tasks: key1,key2")
    run.add_argument("--no-wait", action="store_true", help="print the run's URL and return at once")
    run.epilog = ("Arguments after -- are --name value job parameters, or python_params for a job without "
                  "parameters.")
    destroy = with_target("destroy", "delete the bundle's resources and files")
    destroy.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    destroy.add_argument("--force-lock", action="store_true")
    summarize = with_target("summary", "the bundle's resources with their URLs")
    summarize.add_argument("-o", "--output", choices=("text", "json"), default="text")
    start = verbs.add_parser("init", help="write a starter bundle")
    start.add_argument("template", nargs="?", default="default-python", help=f"one of {', '.join(templates())}")
    start.add_argument("--project-name", default="my_project")
    start.add_argument("--output-dir", default=".")
    return top


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:  # what follows -- goes to the job, as `databricks bundle run` passes it
        extra, argv = argv[argv.index("--") + 1:], argv[:argv.index("--")]
    args = parser().parse_args(argv)
    args.extra = extra
    say = _printer()
    try:
        return _dispatch(args, say)
    except BundleError as error:
        for problem in error.problems:
            print(str(problem), file=sys.stderr)
            print(file=sys.stderr)
        errors = sum(1 for p in error.problems if p.severity == "error")
        print(f"Found {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the server's answer (the SDK's DatabricksError), or it is unreachable
        if type(error).__module__.startswith("databricks.sdk") or isinstance(error, (OSError, ValueError)):
            print(f"Error: {error}", file=sys.stderr)
            return 1
        raise


def _printer():
    def say(line):
        print(line, flush=True)
    return say


def _dispatch(args, say):
    if args.verb == "init":
        target = init(args.template, args.project_name, args.output_dir)
        say(f"✨ Your new bundle is in {target}")
        return 0
    from lakeflow_cli.client import Server

    root = find_root()
    host = _bundle_host(root)
    server = Server(profile=args.profile, host=host)
    prepared = prepare(root, args.target, user=server.me(), lookup=server.lookup, var_flags=args.var,
                       environ=os.environ, force=getattr(args, "force", False))
    for warning in prepared.warnings:
        print(str(warning), file=sys.stderr)
    if args.verb == "validate":
        problems = deploying.server_problems(server, prepared, deploying.State(
            server, prepared.workspace["state_path"], prepared.name, prepared.target).load())
        if problems:
            raise BundleError(problems)
        if args.output == "json":
            say(json.dumps(plain(prepared.config), indent=2))
        else:
            say(f"Name: {prepared.name}\nTarget: {prepared.target}\nWorkspace:\n  Host: {server.host}\n"
                f"  User: {prepared.workspace['current_user']['userName']}\n"
                f"  Path: {prepared.workspace['root_path']}\n\nValidation OK!")
        return 0
    if args.verb == "deploy":
        deploying.deploy(server, prepared, say=say, force_lock=args.force_lock)
        return 0
    if args.verb == "run":
        only = [key for key in (args.only or "").split(",") if key] or None
        run_id = running.start(server, prepared, args.key, params=running.parse_params(args.params),
                               trailing=args.extra, only=only)
        if args.no_wait:
            run = server.call("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
            say(f"Run URL: {run.get('run_page_url')}")
            return 0
        run = running.follow(server, run_id, say)
        for line in running.summary_lines(server, run):
            say(line)
        return 0 if (run.get("state") or {}).get("result_state") == "SUCCESS" else 1
    if args.verb == "destroy":
        state, lines = destroying.plan(server, prepared)
        say("The following resources will be deleted:")
        for line in lines:
            say(f"  {line}")
        if not args.auto_approve:
            if not sys.stdin.isatty():
                raise BundleError([Problem("please specify --auto-approve since the terminal does not accept "
                                            "input")])
            answer = input("Would you like to proceed? [y/n]: ").strip().lower()
            if answer not in ("y", "yes"):
                say("Destroy cancelled.")
                return 1
        destroying.destroy(server, prepared, state, say=say, force_lock=args.force_lock)
        return 0
    if args.verb == "summary":
        if args.output == "json":
            say(json.dumps(summary.as_json(server, prepared), indent=2))
        else:
            say(summary.as_text(server, prepared))
        return 0
    raise AssertionError(args.verb)


def _bundle_host(root):
    """``workspace.host`` of databricks.yml, read before anything else (it picks the server)."""
    from lakeflow_cli.bundle.config import root_file
    from lakeflow_cli.bundle.located import load_yaml

    try:
        config = load_yaml(root_file(root))
    except BundleError:
        return None
    host = ((config.get("workspace") or {}) if isinstance(config, dict) else {}).get("host")
    return host if isinstance(host, str) and "${" not in host else None


if __name__ == "__main__":
    sys.exit(main())
