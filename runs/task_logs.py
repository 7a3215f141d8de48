"""The one way the server reads what a task attempt printed: its log, with every secret value the
attempt fetched shown as [REDACTED] (as Databricks does), for the run page, runs/get-output,
runs/export and the root-cause view. Redaction happens here, on read, not in the task process:
the file keeps what the task wrote, and no code the task runs can get around it.

It fails closed: if a value the attempt fetched cannot be decrypted here (this process's
LAKEFLOW_SECRETS_KEY is not the key that stored it), the attempt's log, notebook and other
output are withheld, with a notice saying why, since they may hold that value in the clear.
"""

import dataclasses
import html
import io
import os
from typing import NamedTuple

from runs.executors.dbt import artifacts_path
from runs.executors.files import open_task_file
from runs.executors.supervisor import MAX_LOG_BYTES
from runs.notebook_html import render_html
from vault.crypto import Unreadable
from vault.redaction import context_bytes, redact_bytes, redact_text, unsafe_tail
from vault.store import values_fetched_by


def withheld(what):
    """The notice shown instead of an attempt's `what` ("log", "error message"...)."""
    return (f"[{what} withheld: it may hold secret values this server cannot decrypt "
            f"(LAKEFLOW_SECRETS_KEY differs from the key that stored them)]")


def _skip_partial_character(data):
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return data[skip:]


class LogTail(NamedTuple):
    text: str
    truncated: bool  # earlier bytes were left out
    end: int  # the byte offset after the text: where a live view reads on


def read_task_log_tail(attempt, max_bytes=MAX_LOG_BYTES, *, finished=True):
    """The last `max_bytes` of the attempt's log. A value cut by the tail's start is still
    recognised (the bytes before it are read as context); of a running attempt, bytes at the end
    that could begin a value are left for the live view's next read (from `end`)."""
    if not attempt.log_path:
        return LogTail("", False, 0)
    try:
        values = values_fetched_by(attempt.id)
    except Unreadable:
        return LogTail(withheld("log"), False, 0)
    context = context_bytes(values)
    try:
        with open_task_file(attempt.log_path, max_bytes=2**62) as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            begin = max(0, start - context)
            f.seek(begin)
            data = f.read(size - begin)
    except OSError:  # gone, or not a regular file any more (its task may have replaced it)
        return LogTail("", False, 0)
    if not finished:
        data = data[:len(data) - unsafe_tail(data, values)]
    shown = redact_bytes(data, values, keep_from=min(start - begin, len(data)))
    if start > 0:
        shown = _skip_partial_character(shown)
    return LogTail(shown.decode("utf-8", errors="replace"), start > 0, begin + len(data))


def read_task_log_from(attempt, offset, max_bytes, *, finished):
    """(text of the log from byte `offset` on, the offset after it) for a live view that reads the
    log in chunks: a chunk never ends inside what could be a value, so each is redacted whole.
    A withheld log gives nothing more (the tail the view started from says why)."""
    if not attempt.log_path:
        return "", offset
    try:
        values = values_fetched_by(attempt.id)
    except Unreadable:
        return "", offset
    try:
        with open_task_file(attempt.log_path, max_bytes=2**62) as f:
            size = os.fstat(f.fileno()).st_size
            offset = min(offset, size)  # seek() takes no offset past int64
            f.seek(offset)
            data = f.read(max_bytes + context_bytes(values))
    except OSError:
        return "", offset
    if not (finished and offset + len(data) >= size):
        data = data[:len(data) - unsafe_tail(data, values)]
    data = whole_characters(data)
    return redact_bytes(data, values).decode("utf-8", errors="replace"), offset + len(data)


def whole_characters(data):
    """Cut a trailing, incomplete UTF-8 sequence: the next read starts with it."""
    for cut in range(1, min(4, len(data)) + 1):
        byte = data[-cut]
        if byte & 0xC0 != 0x80:  # the lead byte of the last sequence
            length = 1 if byte < 0x80 else 2 if byte >= 0xC0 and byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if length <= cut else data[:-cut]
    return data


def redactor(attempt):
    """A function that redacts the attempt's fetched values from every text in a value (a text, or
    JSON such as its task values), or withholds each text if a fetched value cannot be decrypted.
    For what the worker stored as the task reported it: the notebook result, the task values."""
    try:
        values = values_fetched_by(attempt.id)
    except Unreadable:
        return lambda value: _each_text(value, lambda text: withheld("value"))
    return _redacting(values)


def _redacting(values):
    return lambda value: _each_text(value, lambda text: redact_text(text, values))


def _each_text(value, change):
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_each_text(item, change) for item in value]
    if isinstance(value, dict):  # a notebook's own dict type too (nbformat's NotebookNode)
        return type(value)({key: _each_text(item, change) for key, item in value.items()})
    return value


def executed_notebook_html(attempt):
    """The attempt's executed notebook as an HTML page, fetched values redacted from its outputs
    (or a notice, if one cannot be decrypted); raises OSError (NotebookUnreadable) as render_html."""
    try:
        values = values_fetched_by(attempt.id)
    except Unreadable:
        return f"<!DOCTYPE html><p>{html.escape(withheld('notebook output'))}</p>"
    return render_html(attempt.executed_notebook, redact=_redacting(values) if values else None)


def without_secret_values(result, attempt_id):
    """The attempt's report (an AttemptResult) with fetched values redacted from its error and
    trace, before the worker stores them: the error is also the attempt's state_message, which
    runs/get, the run lists and the events show. Only a failed attempt pays the query. If a value
    cannot be decrypted on this worker, both are withheld: this worker cannot tell where it is."""
    if not (result.error or result.error_trace):
        return result
    try:
        values = values_fetched_by(attempt_id)
    except Unreadable:
        notice = withheld("error message")
        return dataclasses.replace(result, error=result.error and notice, error_trace=result.error_trace and notice)
    if not values:
        return result
    return dataclasses.replace(result, error=result.error and redact_text(result.error, values),
                               error_trace=result.error_trace and redact_text(result.error_trace, values))


MAX_ARTIFACTS_BYTES = 1024 * 1024 * 1024


class Withheld(Exception):
    """What an attempt wrote cannot be shown: a value it read cannot be decrypted here."""


def dbt_artifacts_shown(attempt):
    """Whether the attempt left a dbt artifacts archive the server may show (not withheld)."""
    try:
        archive = open_dbt_artifacts(attempt, redacted=False)
    except Withheld:
        return False
    if archive is None:
        return False
    archive.close()
    return True


def open_dbt_artifacts(attempt, *, redacted=True):
    """A dbt task attempt's artifacts archive (tar.gz) as a binary file, or None (not a dbt task,
    not got that far, or not a regular file of its own). dbt's log and run results can hold what
    the task printed, so they pass the log's redaction: with values the attempt read, a copy whose
    members have each one [REDACTED]. Raises Withheld when a value cannot be decrypted."""
    if attempt.task_type != "dbt_task" or not attempt.log_path:
        return None
    try:
        values = values_fetched_by(attempt.id)
    except Unreadable:
        raise Withheld(withheld("dbt artifacts")) from None
    try:
        archive = open_task_file(artifacts_path(attempt.log_path), max_bytes=MAX_ARTIFACTS_BYTES)
    except OSError:
        return None
    if not values or not redacted:
        return archive
    with archive:
        return _redacted_archive(archive, values)


def _redacted_archive(archive, values):
    import tarfile
    import tempfile

    copy = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    with tarfile.open(fileobj=archive, mode="r:gz") as source, tarfile.open(fileobj=copy, mode="w:gz") as target:
        for member in source:
            if not member.isfile():  # the task wrote the archive: only its files are copied
                continue
            data = redact_bytes(source.extractfile(member).read(), values)
            info = tarfile.TarInfo(member.name)
            info.size, info.mtime, info.mode = len(data), member.mtime, 0o644
            target.addfile(info, io.BytesIO(data))
    copy.seek(0)
    return copy
