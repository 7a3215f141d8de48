"""Which bundle files are synced to ``workspace.file_path``, as the CLI decides: every file under
the bundle root except what ``.gitignore`` files ignore (read with ``pathspec``, Git's rules),
``.git/`` and ``.databricks/``; ``sync.include`` globs add files back; ``sync.exclude`` globs
remove them. A snapshot of what was uploaded (content hashes) lets a redeploy send only what
changed and delete what was removed."""

import hashlib
import json
import os
from pathlib import Path

import pathspec

ALWAYS_SKIPPED = (".git", ".databricks")


def bundle_files(root, include=(), exclude=()):
    """Relative POSIX paths of the files to sync, sorted."""
    root = Path(root)
    included = pathspec.GitIgnoreSpec.from_lines(include or [])
    excluded = pathspec.GitIgnoreSpec.from_lines(exclude or [])
    ignore_specs = []  # (directory relative to root, spec) from each .gitignore met on the way down
    files = []
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        relative_dir = here.relative_to(root).as_posix()
        relative_dir = "" if relative_dir == "." else relative_dir
        gitignore = here / ".gitignore"
        if gitignore.is_file():
            ignore_specs.append((relative_dir, pathspec.GitIgnoreSpec.from_lines(
                gitignore.read_text(encoding="utf-8", errors="replace").splitlines())))
        kept = []
        for name in sorted(subdirectories):
            rel = f"{relative_dir}/{name}" if relative_dir else name
            if name in ALWAYS_SKIPPED and not relative_dir:
                continue
            if _ignored(ignore_specs, rel + "/") and not include:  # with includes, ignored directories are walked
                continue
            kept.append(name)
        subdirectories[:] = kept
        for name in sorted(names):
            rel = f"{relative_dir}/{name}" if relative_dir else name
            if (here / name).is_symlink() and not (here / name).resolve().is_relative_to(root.resolve()):
                continue  # a link out of the bundle is not the bundle's to upload
            if not (here / name).is_file():
                continue
            if _ignored(ignore_specs, rel) and not included.match_file(rel):
                continue
            if excluded.match_file(rel):
                continue
            files.append(rel)
    return sorted(files)


def _ignored(specs, rel):
    for base, spec in specs:
        if base and not rel.startswith(base + "/"):
            continue
        if spec.match_file(rel[len(base) + 1:] if base else rel):
            return True
    return False


def digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def plan(root, files, snapshot, remote_root):
    """(to_upload, to_delete) against the last snapshot; a snapshot of another remote root is void."""
    previous = snapshot.get("files", {}) if snapshot.get("remote_root") == remote_root else {}
    hashes = {rel: digest(Path(root) / rel) for rel in files}
    upload = [rel for rel, sha in hashes.items() if previous.get(rel) != sha]
    delete = sorted(set(previous) - set(hashes))
    return upload, delete, {"remote_root": remote_root, "files": hashes}


def read_snapshot(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def write_snapshot(path, snapshot):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(snapshot, indent=1, sort_keys=True))
    temporary.replace(path)
