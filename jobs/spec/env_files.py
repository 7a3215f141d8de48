"""`.env` files of `environment_variables[].spec.files`, as Databricks reads them: at task start,
each line exactly ``KEY=VALUE`` (empty, blank and ``#`` lines ignored; no quotes, escapes or
interpolation), at most 32 KiB per file and 1 KiB per line; a later file wins on a duplicate
key, and inline ``variables`` win over files. Pure: the worker reads the files."""

import re

MAX_FILES = 5
MAX_FILE_BYTES = 32 * 1024
MAX_LINE_BYTES = 1024
FILE_PREFIXES = ("/Workspace/", "/Volumes/")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileRefused(ValueError):
    """A file that fails the run; the message names the file (and line)."""


def parse_env_file(data: bytes, path: str) -> dict[str, str]:
    """The variables of one file's bytes, or EnvFileRefused."""
    if len(data) > MAX_FILE_BYTES:
        raise EnvFileRefused(f"{path} is {len(data):,} bytes; a .env file may be at most {MAX_FILE_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvFileRefused(f"{path} is not UTF-8 text") from None
    found = {}
    # Lines end at \n only (other Unicode breaks are value text); a leading BOM is no part of a name.
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = line.removesuffix("\r")
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise EnvFileRefused(f"{path} line {number} is longer than {MAX_LINE_BYTES:,} bytes")
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise EnvFileRefused(f"{path} line {number} is not KEY=VALUE (a name of letters, digits and _)")
        if name.startswith("LAKEFLOW_"):
            raise EnvFileRefused(f"{path} line {number}: names starting with LAKEFLOW_ belong to this server")
        found[name] = value
    return found


def merged_variables(files: list[tuple[str, bytes]], inline: dict[str, str]) -> dict[str, str]:
    """Files in order (a later one wins), then the inline variables over them."""
    merged = {}
    for path, data in files:
        merged.update(parse_env_file(data, path))
    return {**merged, **inline}
