"""From ``databricks.yml`` to the resources a deploy sends, in the CLI's order: load and merge
the target, workspace defaults, variable values, Python resources, references, presets and
mode, paths. Every problem of a step is collected before stopping, each with its file and line;
nothing here talks to the server except through ``user`` and ``lookup``, which the caller gives."""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lakeflow_cli.bundle import artifacts, config as bundle_config, interpolate, modes, paths, python_resources
from lakeflow_cli.bundle import variables, workspace
from lakeflow_cli.bundle.located import plain, where
from lakeflow_cli.bundle.problems import BundleError, Problem, errors

JOB_FIELDS_NOT_SENT = ("permissions",)  # the bundle's, applied through the Permissions API
PERMISSION_LEVELS = {"CAN_VIEW", "CAN_RUN", "CAN_MANAGE", "CAN_MANAGE_RUN", "IS_OWNER"}
PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")


@dataclass
class Prepared:
    root: Path
    target: str
    mode: str | None
    config: dict
    presets: dict
    warnings: list = field(default_factory=list)

    @property
    def name(self):
        return self.config["bundle"]["name"]

    @property
    def workspace(self):
        return self.config["workspace"]

    def resources(self, kind):
        return (self.config.get("resources") or {}).get(kind) or {}


def local_state_dir(root, target):
    return Path(root) / ".databricks" / "bundle" / target


def prepare(root, target, *, user, lookup, var_flags=(), environ=None, force=False):
    environ = dict(environ or {})
    loaded = bundle_config.load(root, target)
    config, warnings = loaded.config, list(loaded.warnings)
    explicit_root = workspace.set_defaults(config, user)
    flags, problems = variables.parse_var_flags(var_flags)
    problems += variables.assign(config, flags=flags, environ=environ,
                                 overrides=_variable_overrides(root, loaded.target), lookup=lookup)
    _stop_on(problems, warnings)
    config = python_resources.run_phase(config, root, "load_resources")
    problems += interpolate.resolve(config)
    problems += modes.check_presets(config)
    problems += _resource_problems(config)
    _stop_on(problems, warnings)
    config = python_resources.run_phase(config, root, "apply_mutators")
    presets = modes.apply_presets(config, loaded.mode)
    problems += paths.rewrite(config, root)
    problems += artifacts.check(config)
    if loaded.mode == "production":
        if not force:
            problems += modes.production_problems(config, _current_branch(root))
        if not explicit_root:
            warnings.append(Problem("target with 'mode: production' should set 'workspace.root_path' so that only "
                                    "one copy is deployed", where(config, "workspace"), "workspace.root_path",
                                    "warning"))
    _stop_on(problems, warnings)
    return Prepared(root=Path(root), target=loaded.target, mode=loaded.mode, config=config, presets=presets,
                    warnings=warnings + problems)


def _stop_on(problems, warnings):
    if errors(problems):
        raise BundleError(errors(problems) + [w for w in warnings + problems if w.severity == "warning"])


def _variable_overrides(root, target):
    path = local_state_dir(root, target) / "variable-overrides.json"
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text())
    except ValueError as error:
        raise BundleError([Problem(f"{path}: invalid JSON: {error}")]) from None
    if not isinstance(values, dict):
        raise BundleError([Problem(f"{path}: expected a JSON object of variable values")])
    return values


def _current_branch(root):
    try:
        finished = subprocess.run(["git", "symbolic-ref", "--short", "-q", "HEAD"], cwd=root, capture_output=True,
                                  text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return finished.stdout.strip() if finished.returncode == 0 else None


def _resource_problems(config):
    problems = []
    resources = config.get("resources") or {}
    if not isinstance(resources, dict):
        return [Problem("resources must be a mapping", where(config, "resources"), "resources")]
    for kind, items in resources.items():
        at = where(resources, kind)
        if kind not in bundle_config.RESOURCE_TYPES:
            problems.append(Problem(f"resources.{kind} is not supported by this server (supported: "
                                    f"{', '.join(bundle_config.RESOURCE_TYPES)})", at, f"resources.{kind}"))
            continue
        if not isinstance(items, dict):
            problems.append(Problem(f"resources.{kind} must be a mapping of resource keys", at, f"resources.{kind}"))
            continue
        for key, body in items.items():
            path = f"resources.{kind}.{key}"
            if not isinstance(body, dict):
                problems.append(Problem(f"{path} must be a mapping", where(items, key), path))
                continue
            if kind == "jobs":
                body.setdefault("name", key)  # as the CLI names a job without a name
                problems += _permission_problems(body.get("permissions"), where(body, "permissions"),
                                                 f"{path}.permissions")
            for ref_path, (ref_kind, ref_key, _field) in interpolate.deployed_references(body):
                if ref_key not in (resources.get(ref_kind) or {}):
                    problems.append(Problem(f"reference does not exist: ${{resources.{ref_kind}.{ref_key}."
                                            f"{_field}}}", where(body, ref_path[0]) if ref_path else where(items, key),
                                            path + "." + ".".join(str(p) for p in ref_path)))
    problems += _permission_problems(config.get("permissions"), where(config, "permissions"), "permissions")
    problems += _order_problems(config)
    return problems


def _permission_problems(entries, at, path):
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [Problem("permissions must be a list", at, path)]
    problems = []
    for index, entry in enumerate(entries):
        entry_at = where(entries, index) or at
        if not isinstance(entry, dict):
            problems.append(Problem("a permission must be a mapping", entry_at, f"{path}[{index}]"))
            continue
        if entry.get("level") not in PERMISSION_LEVELS:
            problems.append(Problem(f"unknown permission level {entry.get('level')!r}; expected one of "
                                    f"{', '.join(sorted(PERMISSION_LEVELS))}", entry_at, f"{path}[{index}].level"))
        named = [key for key in PRINCIPAL_KEYS if entry.get(key)]
        if len(named) != 1:
            problems.append(Problem("a permission names exactly one of user_name, group_name, "
                                    "service_principal_name", entry_at, f"{path}[{index}]"))
    return problems


def deploy_order(config):
    """Resource (kind, key) pairs so that each comes after the resources its settings reference;
    raises BundleError on a cycle."""
    resources = config.get("resources") or {}
    needs = {}
    for kind in bundle_config.RESOURCE_TYPES:
        for key, body in (resources.get(kind) or {}).items():
            needs[(kind, key)] = {(k, n) for _p, (k, n, _f) in interpolate.deployed_references(body)
                                  if (k, n) != (kind, key)}
    ordered, visiting, done = [], [], set()

    def visit(node):
        if node in done:
            return
        if node in visiting:
            chain = " -> ".join(f"{k}.{n}" for k, n in visiting[visiting.index(node):] + [node])
            raise BundleError([Problem(f"resources reference each other in a cycle: {chain}",
                                       where(resources.get(node[0]) or {}, node[1]), f"resources.{node[0]}.{node[1]}")])
        visiting.append(node)
        for other in sorted(needs.get(node, ())):
            if other in needs:
                visit(other)
        visiting.pop()
        done.add(node)
        ordered.append(node)

    for node in sorted(needs):
        visit(node)
    return ordered


def _order_problems(config):
    try:
        deploy_order(config)
    except BundleError as error:
        return error.problems
    return []


def job_settings(prepared, key, *, metadata_path):
    """What jobs/create or jobs/reset receives for the job ``key`` (deployed references still open)."""
    body = plain(prepared.resources("jobs")[key])
    for name in JOB_FIELDS_NOT_SENT:
        body.pop(name, None)
    run_as = prepared.config.get("run_as")
    if run_as and "run_as" not in body:
        body["run_as"] = plain(run_as)
    body["deployment"] = {"kind": "BUNDLE", "metadata_file_path": metadata_path}
    body.setdefault("edit_mode", "UI_LOCKED")
    return body


def job_permissions(prepared, key):
    """The job's access control list: the bundle's top-level permissions (CAN_RUN meaning
    CAN_MANAGE_RUN on a job) then the job's own."""
    levels = {"CAN_RUN": "CAN_MANAGE_RUN"}
    entries = [dict(e) for e in plain(prepared.config.get("permissions") or [])]
    entries += [dict(e) for e in plain(prepared.resources("jobs")[key].get("permissions") or [])]
    for entry in entries:
        entry["permission_level"] = levels.get(entry.get("level"), entry.get("level"))
        entry.pop("level", None)
    return entries
