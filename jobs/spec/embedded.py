"""References written inside code: a shell task's command and a SQL task's query text.

Pasting a reference's value into code would let the value run as code (`x = "$(id -un)"` in a
command, a quote in a SQL value adding columns). So a reference there becomes a parameter of the
code instead, and its value never passes through the shell's or the database's parser:

- in a command, an environment variable the command expands (``"${LAKEFLOW_REF_1}"``), quoted
  for where the reference stands: outside quotes, inside "..." and inside '...';
- in SQL, a bound ``:lakeflow_ref_1`` marker; inside a '...' literal, the literal becomes a
  concatenation (``('abc ' || :lakeflow_ref_1 || ' def')``). A reference inside a "quoted
  identifier" or a $$dollar-quoted$$ body cannot be bound and is refused; one in a comment is
  left as written.

So a reference in code is always a value: it cannot name a table or add SQL or shell syntax.
Limits, by design of a scanner this small: a shell heredoc body counts as unquoted text.
"""

from __future__ import annotations

from collections.abc import Callable

from .refs import Reference, find_references

SHELL_VARIABLE = "LAKEFLOW_REF_{}"
SQL_MARKER = "lakeflow_ref_{}"


class EmbeddedReferenceError(ValueError):
    """A reference stands where no value can be bound; the message says where and what to do."""


ValueOf = Callable[[Reference], "str | None"]  # the value, or None: leave the reference as written


def shell_command_with_variables(command: str, value_of: ValueOf) -> tuple[str, dict[str, str]]:
    """(the command with its resolvable references turned into variables, {variable: value})."""
    quoting = _shell_quoting(command)
    pieces, values, names, last = [], {}, {}, 0
    for ref in find_references(command):
        value = value_of(ref)
        if value is None:
            continue
        name = names.setdefault(ref.text, SHELL_VARIABLE.format(len(names) + 1))
        values[name] = value
        start, where = ref.start, quoting(ref.start)
        if where == "escaped":  # \{{x}}: the backslash escaped the value's first character; now nothing
            start, where = start - 1, "none"
        pieces += [command[last:start], _shell_expansion(name, where)]
        last = ref.end
    pieces.append(command[last:])
    return "".join(pieces), values


def sql_with_markers(text: str, value_of: ValueOf) -> tuple[str, dict[str, str]]:
    """(the SQL with its resolvable references turned into bound markers, {marker: value})."""
    regions = _sql_regions(text)
    names, values = {}, {}
    replacements = []  # (start, end, new text)
    in_literals = {}  # (start, end) of a '...' literal -> [(reference, marker name)]
    for ref in find_references(text):
        region = next(((start, end, kind) for start, end, kind in regions if start <= ref.start < end), None)
        if region is not None and region[2] == "comment":
            continue
        value = value_of(ref)
        if value is None:
            continue
        if region is not None and (region[2] != "string" or ref.end > region[1] - 1):
            what = {"identifier": "a quoted identifier", "dollar": "a $$-quoted body"}.get(region[2], "a quote")
            raise EmbeddedReferenceError(
                f"{ref.text} stands inside {what}, where no value can be bound: a reference in SQL is a "
                "value (a bound :marker); name tables and columns in the SQL itself")
        name = names.setdefault(ref.text, SQL_MARKER.format(len(names) + 1))
        values[name] = value
        if region is None:
            replacements.append((ref.start, ref.end, f" :{name} "))
        else:
            in_literals.setdefault(region[:2], []).append((ref, name))
    for (start, end), inside in in_literals.items():
        # 'abc {{x}} def' -> ('abc ' || :lakeflow_ref_1 || ' def')
        parts, last = ["("], start
        for ref, name in inside:
            parts += [text[last:ref.start], f"' || :{name} || '"]
            last = ref.end
        parts += [text[last:end], ")"]
        replacements.append((start, end, "".join(parts)))
    pieces, last = [], 0
    for start, end, new in sorted(replacements):
        pieces += [text[last:start], new]
        last = end
    pieces.append(text[last:])
    return "".join(pieces), values


# --- shell --------------------------------------------------------------------------------


def _shell_expansion(name: str, quoting: str) -> str:
    if quoting == "double":
        return "${" + name + "}"
    if quoting == "single":
        return "'\"${" + name + "}\"'"  # close '...', expand in "...", reopen
    if quoting == "ansi":
        return "'\"${" + name + "}\"$'"
    return "\"${" + name + "}\""


def _shell_quoting(command: str) -> Callable[[int], str]:
    """A function telling the quoting at each position: "none", "escaped" (after a backslash),
    "double", "single" or "ansi" ($'...')."""
    states, state, i = [], "none", 0
    while i < len(command):
        char = command[i]
        states.append(state)
        if state == "none":
            if char == "\\":
                states.append("escaped")
                i += 1
            elif char == "'":
                state = "single"
            elif char == '"':
                state = "double"
            elif char == "$" and command[i + 1:i + 2] == "'":
                states.append(state)
                i += 1
                state = "ansi"
        elif state == "double":
            if char == "\\":
                states.append(state)
                i += 1
            elif char == '"':
                state = "none"
        elif state == "single":
            if char == "'":
                state = "none"
        elif state == "ansi":
            if char == "\\":
                states.append(state)
                i += 1
            elif char == "'":
                state = "none"
        i += 1
    return lambda at: states[at] if at < len(states) else state


# --- SQL ----------------------------------------------------------------------------------


def _sql_regions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every quoted or commented region: string, identifier, dollar, comment."""
    regions, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char == "'":
            end = _closing(text, i + 1, "'")
            regions.append((i, end, "string"))
            i = end
        elif char == '"':
            end = _closing(text, i + 1, '"')
            regions.append((i, end, "identifier"))
            i = end
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            regions.append((i, end, "comment"))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            regions.append((i, end, "comment"))
            i = end
        elif char == "$":
            tag_end = text.find("$", i + 1)
            tag = text[i:tag_end + 1] if tag_end > 0 else ""
            if tag and (tag == "$$" or tag[1:-1].isidentifier()):
                close = text.find(tag, tag_end + 1)
                end = n if close < 0 else close + len(tag)
                regions.append((i, end, "dollar"))
                i = end
            else:
                i += 1
        else:
            i += 1
    return regions


def _closing(text: str, i: int, quote: str) -> int:
    """The position just past the quote that closes a region opened before i ('' and "" escape)."""
    while True:
        at = text.find(quote, i)
        if at < 0:
            return len(text)
        if text.startswith(quote * 2, at):
            i = at + 2
            continue
        return at + 1
