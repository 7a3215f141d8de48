"""A pure-Python wheel made by hand (zipfile): tests install it into task environments without a
registry or a build backend."""

import base64
import hashlib
import zipfile


def make_wheel(directory, name="lakeflow_demo", version="1.0", source="VALUE = 42\n", entry_points=None):
    """``entry_points``: {"name": "module:function"} console scripts, as a wheel task names them."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": source,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if entry_points:
        files[f"{dist}.dist-info/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{key} = {target}\n" for key, target in entry_points.items())
    record = [f"{path},sha256={digest(body)},{len(body.encode())}" for path, body in files.items()]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in_zip, body in files.items():
            wheel.writestr(name_in_zip, body)
    return path


def digest(text):
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
