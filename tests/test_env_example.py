"""Every environment variable the settings read is listed, with its default, in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READERS = re.compile(r"""(?:env_(?:str|bool|int|float|list)|os\.environ\.get)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_every_variable_the_settings_read_is_in_env_example():
    read = set(READERS.findall((ROOT / "lakeflow_site" / "settings.py").read_text()))
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern found no variable: it no longer matches how settings.py reads them"
    assert sorted(read - listed) == []
