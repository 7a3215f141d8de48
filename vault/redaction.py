"""Secret values out of a task's output, as Databricks shows them: "[REDACTED]". Pure: no Django.

Works on bytes (a log file's), so a value is found whatever encoding boundaries the reader
chose; a value cut by the start of a tail, or a possible value at the end of a live chunk, is
handled by the two functions below rather than shown in part.
"""

import re

REDACTED = b"[REDACTED]"


def _pattern(values):
    """One regex for all values, longest first, so a value that contains another is cut whole."""
    values = sorted({v for v in values if v}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(v) for v in values)) if values else None


def redact_bytes(data, values, keep_from=0):
    """`data[keep_from:]` with each occurrence of a value replaced by REDACTED; an occurrence
    that begins before `keep_from` (the context read in front of a tail) and reaches into it is
    replaced whole."""
    pattern = _pattern(values)
    if pattern is None:
        return data[keep_from:]
    out, position = [], keep_from
    for match in pattern.finditer(data):
        start, end = match.span()
        if end <= keep_from:
            continue
        out.append(data[position:max(start, position)])
        out.append(REDACTED)
        position = end
    out.append(data[position:])
    return b"".join(out)


def _as_text(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def redact_text(text, values):
    """`text` with each value (given as bytes, UTF-8) replaced by "[REDACTED]". A value that is
    not UTF-8 (binary, from getBytes) cannot appear in a text as itself: it is skipped, rather
    than matched as replacement characters that the text may hold for other reasons."""
    words = sorted({word for word in map(_as_text, values) if word}, key=len, reverse=True)
    if not words:
        return text
    return re.sub("|".join(re.escape(w) for w in words), REDACTED.decode(), text)


def unsafe_tail(data, values):
    """How many bytes at the end of `data` could be the start of a value: a live reader holds
    them back until more is written (or the task ends), so no chunk shows part of a value."""
    longest = 0
    for value in {v for v in values if v}:
        # The earliest place a proper prefix of the value could start gives the longest one.
        position = data.find(value[:1], max(0, len(data) - len(value) + 1))
        while position != -1 and len(data) - position > longest:
            if value.startswith(data[position:]):
                longest = len(data) - position
                break
            position = data.find(value[:1], position + 1)
    return longest


def context_bytes(values):
    """How far before a tail's start to read so that a value it cuts is recognised."""
    return max((len(v) - 1 for v in values if v), default=0)
