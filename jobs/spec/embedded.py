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

import re
from collections.abc import Callable

from .refs import Reference, find_references

SHELL_VARIABLE = "LAKEFLOW_REF_{}"
# Literals a type name introduces (DATE '2026-01-01'): written as CAST(... AS DATE) once bound.
TYPED_LITERALS = {"DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "TIMETZ", "INTERVAL", "UUID", "JSON", "JSONB"}
_TYPED_LITERAL = re.compile(r"\b([A-Za-z]+)\s*\Z")
SQL_MARKER = "lakeflow_ref_{}"


class EmbeddedReferenceError(ValueError):
    """A reference stands where no value can be bound; the message says where and what to do."""


ValueOf = Callable[[Reference], "str | None"]  # the value, or None: leave the reference as written


def shell_command_with_variables(command: str, value_of: ValueOf) -> tuple[str, dict[str, str]]:
    """(the command with its resolvable references turned into variables, {variable: value}).

    Raises EmbeddedReferenceError for a reference bash would evaluate as arithmetic (inside
    ``((...))``, ``$((...))``, an array subscript, a ``[[ ... -eq ... ]]`` test, ``let`` or
    ``declare -i``: bash runs the ``$(...)`` of a value like ``a[$(cmd)]`` there), in a quoted
    heredoc (nothing expands there), or in a command whose quotes do not close."""
    lexed = _lex_shell(command)
    pieces, values, names, last = [], {}, {}, 0
    for ref in find_references(command):
        where, arithmetic = lexed.at(ref.start)
        if where == "comment":
            continue  # not run: left as written
        value = value_of(ref)
        if value is None:
            continue
        if arithmetic:
            raise EmbeddedReferenceError(
                f"{ref.text} stands where bash evaluates arithmetic ((( )), $(( )), [[ -eq ]], let, "
                "declare -i or an array subscript), which would run code in its value: pass it as a "
                "parameter and check that it is a number first")
        if where == "backquoted":
            raise EmbeddedReferenceError(f"{ref.text} stands in `...` inside double quotes: write $( ... ) "
                                         "instead, where it can be quoted")
        if where == "quoted heredoc":
            raise EmbeddedReferenceError(f"{ref.text} stands in a heredoc with a quoted delimiter, where "
                                         "nothing expands: leave the delimiter unquoted")
        if lexed.unbalanced:
            raise EmbeddedReferenceError(f"the command's quotes do not close, so where {ref.text} stands "
                                         "cannot be told")
        name = names.setdefault(ref.text, SHELL_VARIABLE.format(len(names) + 1))
        values[name] = value
        start = ref.start
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
        typed = _TYPED_LITERAL.search(text, 0, start)
        if typed and typed.group(1).upper() in TYPED_LITERALS:  # TIMESTAMP '...' takes no expression
            replacements.append((typed.start(1), end, f"CAST({''.join(parts)} AS {typed.group(1)})"))
        else:
            replacements.append((start, end, "".join(parts)))
    pieces, last = [], 0
    for start, end, new in sorted(replacements):
        pieces += [text[last:start], new]
        last = end
    pieces.append(text[last:])
    return "".join(pieces), values


# --- shell --------------------------------------------------------------------------------


def _shell_expansion(name: str, quoting: str) -> str:
    if quoting in ("double", "heredoc"):
        return "${" + name + "}"
    if quoting == "single":
        return "'\"${" + name + "}\"'"  # close '...', expand in "...", reopen
    if quoting == "ansi":
        return "'\"${" + name + "}\"$'"
    return "\"${" + name + "}\""


_ARITHMETIC_TEST = re.compile(r"\s-(eq|ne|lt|le|gt|ge)\s")
_INTEGER_DECLARATION = re.compile(r"^\s*(let\s|(declare|typeset|local|readonly|export)\s+(-\w*\s+)*-\w*i)")
_SEPARATORS = ";&|\n"


class _LexedShell:
    """Where each position of a command stands, as far as a reference in it matters: its quoting
    ("none", "escaped", "double", "single", "ansi", "comment", "heredoc", "quoted heredoc") and
    whether bash evaluates it as arithmetic. A small lexer, not a parser: what it cannot place
    for sure it reports as arithmetic or unbalanced, and the reference is refused."""

    def __init__(self, command: str):
        self.command = command
        self.quoting: list[str] = []
        self.arithmetic: list[bool] = []
        self.unbalanced = False
        self._lex()

    def at(self, position: int) -> tuple[str, bool]:
        if position >= len(self.quoting):
            return "none", False
        return self.quoting[position], self.arithmetic[position] or self._in_arithmetic_statement(position)

    def _lex(self) -> None:
        text, n = self.command, len(self.command)
        state, i = "none", 0
        arithmetic = []  # paren depth inside each open (( or $((
        subscripts = 0  # open name[ ... ] subscripts
        heredocs = []  # (delimiter, quoted, strip_tabs) that start at the next newline
        tests = []  # (start, end) of [[ ... ]]
        test_start = None
        substitutions = []  # [state outside, open parens] of each $( ... ) being read
        while i < n:
            char, pair = text[i], text[i:i + 2]
            step = 1
            here = state
            if state in ("none", "double") and pair == "$(" and text[i:i + 3] != "$((":
                substitutions.append([state, 0])  # quoting starts afresh inside, even within "..."
                state, step = "none", 2
            elif substitutions and not arithmetic and state == "none" and char in "()":
                if char == "(":
                    substitutions[-1][1] += 1
                elif substitutions[-1][1]:
                    substitutions[-1][1] -= 1
                else:
                    state = substitutions.pop()[0]
            elif state in ("none", "double") and (pair == "((" or text[i:i + 3] == "$(("):
                step = 3 if char == "$" else 2
                arithmetic.append(0)
            elif arithmetic and state in ("none", "double") and char == "(":
                arithmetic[-1] += 1
            elif arithmetic and state in ("none", "double") and char == ")":
                if arithmetic[-1]:
                    arithmetic[-1] -= 1
                elif pair == "))":
                    arithmetic.pop()
                    step = 2
            elif state == "none":
                if char == "\\":
                    self._mark(i, "none", arithmetic or subscripts)
                    here, i = "escaped", i + 1
                    if i >= n:
                        break
                elif char == "'":
                    state = "single"
                elif char == '"':
                    state = "double"
                elif pair == "$'":
                    step, state = 2, "ansi"
                elif char == "#" and (i == 0 or text[i - 1] in " \t;&|()\n"):
                    state = here = "comment"
                elif pair == "<<" and text[i:i + 3] != "<<<":
                    step = self._heredoc_start(i, heredocs)
                elif pair == "[[" and (i == 0 or text[i - 1] in " \t;&|(\n"):
                    test_start, step = i, 2
                elif pair == "]]" and test_start is not None:
                    tests.append((test_start, i + 2))
                    test_start, step = None, 2
                elif char == "[" and i and (text[i - 1].isalnum() or text[i - 1] == "_"):
                    subscripts += 1
                elif char == "]" and subscripts:
                    subscripts -= 1
                elif char == "\n" and heredocs:
                    self._mark(i, "none", False)
                    i = self._heredoc_bodies(i + 1, heredocs)
                    continue
            elif state == "double":
                if char == "\\":
                    step = 2
                elif char == '"':
                    state = "none"
                elif char == "`":
                    state = "backquoted"
                elif char == "[" and i and (text[i - 1].isalnum() or text[i - 1] == "_"):
                    subscripts += 1
                elif char == "]" and subscripts:
                    subscripts -= 1
            elif state == "backquoted":  # `...` inside "...": its own quoting, which we do not follow
                if char == "\\":
                    step = 2
                elif char == "`":
                    state = "double"
            elif state == "single":
                if char == "'":
                    state = "none"
            elif state == "ansi":
                if char == "\\":
                    step = 2
                elif char == "'":
                    state = "none"
            elif state == "comment" and char == "\n":
                state = "none"
            for j in range(i, min(i + step, n)):
                self._mark(j, here, bool(arithmetic) or bool(subscripts))
            i += step
        self.unbalanced = state not in ("none", "comment") or bool(heredocs or arithmetic or substitutions)
        for start, end in tests:
            if _ARITHMETIC_TEST.search(text[start:end].replace("\n", " ")):
                for j in range(start, min(end, n)):
                    self.arithmetic[j] = True

    def _mark(self, position: int, quoting: str, arithmetic) -> None:
        while len(self.quoting) <= position:
            self.quoting.append("none")
            self.arithmetic.append(False)
        self.quoting[position], self.arithmetic[position] = quoting, bool(arithmetic)

    def _heredoc_start(self, i: int, heredocs: list) -> int:
        """After ``<<`` (or ``<<-``): note the delimiter; returns how far the lexer may jump."""
        text, j = self.command, i + 2
        strip_tabs = text[j:j + 1] == "-"
        j += strip_tabs
        while j < len(text) and text[j] in " \t":
            j += 1
        start = j
        while j < len(text) and text[j] not in " \t\n;&|<>()":
            j += 1
        word = text[start:j]
        quoted = any(q in word for q in "'\"\\")
        if word:
            heredocs.append((word.replace("'", "").replace('"', "").replace("\\", ""), quoted, strip_tabs))
        for k in range(i, j):
            self._mark(k, "none", False)
        return j - i

    def _heredoc_bodies(self, i: int, heredocs: list) -> int:
        """Mark the bodies of the heredocs opened on the line before; returns where lexing goes on."""
        text = self.command
        while heredocs:
            delimiter, quoted, strip_tabs = heredocs.pop(0)
            while i < len(text):
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                line = text[i:end]
                closing = (line.lstrip("\t") if strip_tabs else line) == delimiter
                for k in range(i, min(end + 1, len(text))):
                    self._mark(k, "none" if closing else ("quoted heredoc" if quoted else "heredoc"), False)
                i = end + 1
                if closing:
                    break
            else:
                heredocs.insert(0, (delimiter, quoted, strip_tabs))  # never closed
                break
        return i

    def _in_arithmetic_statement(self, position: int) -> bool:
        """Inside a simple command that starts with let, or declares integers (declare -i ...)."""
        if self.quoting[position] in ("heredoc", "quoted heredoc", "comment"):
            return False
        start = position
        while start > 0 and not (self.command[start - 1] in _SEPARATORS and self.quoting[start - 1] == "none"):
            start -= 1
        return bool(_INTEGER_DECLARATION.match(self.command[start:position]))


def _lex_shell(command: str) -> _LexedShell:
    return _LexedShell(command)


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
