"""JobSettings as YAML or JSON text and back, for the authoring page's source editor."""

import json

import yaml
from django.core.exceptions import ValidationError


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (commands, SQL) in block style, so they read as written."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


class _Loader(yaml.SafeLoader):
    """Safe YAML in which 2026-01-01 stays a string: JobSettings hold no dates."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def settings_as_text(settings, fmt="yaml"):
    if fmt == "json":
        return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(settings, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)


def settings_from_text(text, fmt="yaml"):
    """The settings `text` holds, as JSON values; raises ValidationError naming the line at fault."""
    try:
        value = json.loads(text) if fmt == "json" else yaml.load(text, Loader=_Loader)
        return json.loads(json.dumps(value))  # JSON values only, as the API would receive them
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(f"Not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Holds a value JSON cannot: {exc}") from None
