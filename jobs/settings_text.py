"""JobSettings as YAML or JSON text and back, for the authoring page's source editor."""

import json

import yaml
from django.core.exceptions import ValidationError

from jobs.spec.documents import MAX_DOCUMENT_BYTES, DocumentRefused, check_document, parse_json, parse_yaml


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (commands, SQL) in block style, so they read as written."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def settings_as_text(settings, fmt="yaml"):
    if fmt == "json":
        return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(settings, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)


def settings_from_text(text, fmt="yaml"):
    """The settings `text` holds, as JSON values; raises ValidationError naming the line at fault.

    Bounded as the API bounds a request body (jobs/spec/documents.py): no YAML aliases, the same
    size and depth limits, text both databases can store."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ValidationError(f"The settings are larger than the limit of {MAX_DOCUMENT_BYTES:,} bytes")
    try:
        value = parse_json(text) if fmt == "json" else parse_yaml(text)
        check_document(value)
        return json.loads(json.dumps(value))  # JSON values only, as the API would receive them
    except DocumentRefused as exc:
        raise ValidationError(f"The settings {exc.message}" if not exc.path else str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(f"Not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Holds a value JSON cannot: {exc}") from None
