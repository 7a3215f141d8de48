"""Untrusted JSON documents, bounded before anything else reads them.

Whatever arrives from outside (an API body, the YAML or JSON of the job editor, a dialog's
parameters) is checked once, here, by every entry point: a bounded size and nesting depth (deep
nesting makes recursive code raise RecursionError far from the input), and text that both
databases can store and every page can render: no NUL character (PostgreSQL stores none) and no
lone UTF-16 surrogate such as "\\udfff" (neither UTF-8 nor PostgreSQL's jsonb can hold one).

YAML is parsed without aliases (``*name``): seven levels of aliases in 350 bytes expand to
millions of nodes. Values already stored before these checks are read back readable
(``ReadableJSONDecoder``).
"""

import json

import yaml

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
"""The API's request limit (LAKEFLOW_MAX_BODY_BYTES' default), for any document."""
MAX_DEPTH = 64
"""Nesting levels; a job's settings need about ten."""


class DocumentRefused(ValueError):
    def __init__(self, path, message):
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


def check_document(value, *, max_bytes=MAX_DOCUMENT_BYTES, max_depth=MAX_DEPTH):
    """Raise DocumentRefused for the first thing in `value` (parsed JSON) past the bounds."""
    size = 0
    todo = [(value, "", 0)]
    while todo:
        item, path, depth = todo.pop()
        if depth > max_depth:
            raise DocumentRefused(path, f"is nested more than {max_depth} levels deep")
        if isinstance(item, dict):
            for key, inner in item.items():
                where = f"{path}.{key}" if path else str(key)
                check_text(key, where)  # YAML may give other keys (numbers): JSON makes them text
                size += len(str(key)) + 8
                todo.append((inner, where, depth + 1))
        elif isinstance(item, list):
            size += 8 * len(item)
            todo.extend((inner, f"{path}[{i}]", depth + 1) for i, inner in enumerate(item))
        elif isinstance(item, str):
            check_text(item, path)
            size += len(item)
        else:
            size += 8
        if size > max_bytes:
            raise DocumentRefused("", f"is larger than the limit of {max_bytes:,} bytes")


def check_text(text, path=""):
    if not isinstance(text, str):
        return
    if "\x00" in text:
        raise DocumentRefused(path, "may not contain NUL (\\u0000) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DocumentRefused(path, "holds a lone UTF-16 surrogate (such as \\udfff), which is not "
                                    "text: send characters, or a surrogate pair for one") from None


INT64_MAX = 2**63 - 1
MAX_INT_DIGITS = 19  # INT64_MAX has 19; int() of thousands of digits is slow before it fails


def bounded_int(value, name, *, low=-INT64_MAX - 1, high=INT64_MAX):
    """An int from a JSON number or a decimal string of ASCII digits (query strings, proto3's
    int64 as text), between low and high; DocumentRefused(name, why) otherwise. "²".isdigit()
    is True and int("²") raises: only 0-9 count here."""
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] == "-" else text
        if digits.isascii() and digits.isdigit():
            if len(digits.lstrip("0")) > MAX_INT_DIGITS:
                raise DocumentRefused(name, f"must be between {low} and {high}")
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise DocumentRefused(name, f"must be an integer, not {shown}")
    if not low <= value <= high:
        raise DocumentRefused(name, f"must be between {low} and {high}")
    return value


def parse_json(text):
    """json.loads, with nesting too deep for the parser reported as such (not RecursionError)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise DocumentRefused("", f"is nested more than {MAX_DEPTH} levels deep") from None


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases, in which 2026-01-01 stays a string (JobSettings hold no dates)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in job settings: write the value out", mark)
        return super().compose_node(parent, index)


_NoAliasLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def parse_yaml(text):
    """Safe YAML without aliases; raises yaml.YAMLError, or DocumentRefused for deep nesting."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except RecursionError:
        raise DocumentRefused("", f"is nested more than {MAX_DEPTH} levels deep") from None


def readable(value):
    """`value` with lone surrogates and NUL characters replaced by U+FFFD, for data stored or
    reported before it was checked (old rows, a task's own result files)."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # pairs become their character, lone halves U+FFFD
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [readable(item) for item in value]
    if isinstance(value, dict):
        return {readable(key): readable(item) for key, item in value.items()}
    return value


class ReadableJSONDecoder(json.JSONDecoder):
    """For model JSON fields: a stored "\\udfff" comes back as U+FFFD, so no page fails on it."""

    def decode(self, s, *args, **kwargs):
        value = super().decode(s, *args, **kwargs)
        return readable(value) if "\\u" in s else value
