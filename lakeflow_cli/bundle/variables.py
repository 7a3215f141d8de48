"""Variable values, in the CLI's order of precedence: ``--var name=value``, then the
``BUNDLE_VAR_<name>`` environment variable, then ``.databricks/bundle/<target>/variable-overrides.json``,
then the target's ``variables``, then the declaration's ``default``, then its ``lookup`` of a
server object by name. Each declared variable ends with ``value`` set; a problem names the file
and line of the declaration."""

from lakeflow_cli.bundle.located import Mapping, copy, where
from lakeflow_cli.bundle.problems import Problem

DECLARATION_KEYS = {"description", "default", "type", "lookup"}
LOOKUP_KINDS = ("warehouse", "job", "service_principal", "notification_destination", "cluster_policy", "cluster",
                "instance_pool", "metastore", "pipeline", "query", "alert", "dashboard")


def parse_var_flags(flags):
    """``--var name=value`` pairs as a dict; a flag without ``=`` is a problem."""
    values, problems = {}, []
    for flag in flags or []:
        name, sep, value = flag.partition("=")
        if not sep or not name:
            problems.append(Problem(f"--var {flag}: expected name=value"))
        else:
            values[name] = value
    return values, problems


def assign(config, *, flags, environ, overrides, lookup):
    """Set ``variables.<name>.value`` for every declared variable; return the problems.

    ``lookup(kind, name)`` returns the id of a server object, raising LookupError with a message."""
    declared = config.get("variables") or Mapping()
    problems = []
    if not isinstance(declared, dict):
        return [Problem("variables must be a mapping", config.where("variables"), "variables")]
    for name, declaration in list(declared.items()):
        if not isinstance(declaration, dict) or not set(declaration) <= DECLARATION_KEYS:
            declaration = Mapping({"default": declaration}, location=where(declared, name))
            declared.set(name, declaration, where(declared, name))
    target_values = config.pop("target_variables", None) or {}
    for name in target_values:
        if name not in declared:
            problems.append(Problem(f"variable {name} is not defined but is assigned a value in the target",
                                    where(target_values, name), f"variables.{name}"))
    for name in list(flags) + list(overrides):
        if name not in declared:
            problems.append(Problem(f"variable {name} has not been defined"))
    for name, declaration in declared.items():
        at, path = where(declared, name), f"variables.{name}"
        complex_type = declaration.get("type") == "complex"
        if declaration.get("type") not in (None, "complex"):
            problems.append(Problem(f"variable {name}: type must be complex when set", declaration.where("type"),
                                    f"{path}.type"))
        value, found, source = _value(name, declaration, target_values, flags, environ, overrides)
        if complex_type and source in ("--var", "environment variable"):
            problems.append(Problem(f"variable {name} is complex: setting it through {source} is not supported", at,
                                    path))
            continue
        if found:
            if not complex_type and isinstance(value, (dict, list)):
                problems.append(Problem(f"variable {name} is not of type complex but has a complex value; "
                                        "add `type: complex` to its declaration", at, path))
                continue
            declaration.set("value", value, at)
            continue
        lookup_spec = _lookup_spec(name, declaration, target_values)
        if lookup_spec is not None:
            problem = _look_up(name, lookup_spec, declaration, lookup, at, path)
            if problem:
                problems.append(problem)
            continue
        problems.append(Problem(
            f'no value assigned to required variable {name}. Assignment can be done using "--var", by setting the '
            f"BUNDLE_VAR_{name} environment variable, or in .databricks/bundle/<target>/variable-overrides.json",
            at, path))
    return problems


def _value(name, declaration, target_values, flags, environ, overrides):
    if name in flags:
        return flags[name], True, "--var"
    if f"BUNDLE_VAR_{name}" in environ:
        return environ[f"BUNDLE_VAR_{name}"], True, "environment variable"
    if name in overrides:
        return overrides[name], True, "variable-overrides.json"
    if name in target_values:
        override = target_values[name]
        if isinstance(override, dict) and set(override) <= DECLARATION_KEYS and (
                "default" in override or "lookup" in override):
            if "default" in override:
                return copy(override["default"]), True, "target"
        else:
            return copy(override), True, "target"
    if "default" in declaration:
        return declaration["default"], True, "default"
    return None, False, None


def _lookup_spec(name, declaration, target_values):
    override = target_values.get(name)
    if isinstance(override, dict) and "lookup" in override:
        return override["lookup"]
    return declaration.get("lookup")


def _look_up(name, spec, declaration, lookup, at, path):
    if not isinstance(spec, dict) or len(spec) != 1:
        return Problem(f"variable {name}: lookup must name exactly one kind of object, e.g. warehouse: <name>", at,
                       f"{path}.lookup")
    kind, object_name = next(iter(spec.items()))
    if kind not in LOOKUP_KINDS:
        return Problem(f"variable {name}: unknown lookup kind {kind!r}", at, f"{path}.lookup")
    try:
        declaration.set("value", lookup(kind, object_name), at)
    except LookupError as error:
        return Problem(f"variable {name}: {error}", at, f"{path}.lookup.{kind}")
    return None
