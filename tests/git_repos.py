"""Git repositories made in a test: a bare "remote" (reached by file:// URL) and a work tree that
pushes to it, with the git program and no global configuration."""

import os
import subprocess
from pathlib import Path

NOTEBOOK = "# Databricks notebook source\nprint('notebook sees', open('../data.txt').read().strip())\n"
SCRIPT = "print('script sees', open('../data.txt').read().strip())\n"


class Repository:
    def __init__(self, root: Path):
        self.bare, self.work = root / "remote.git", root / "work"
        self.url = self.bare.as_uri()  # file:///...
        self.env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@x"}
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=root)
        self.git("init", "--quiet", "--initial-branch=main", str(self.work), cwd=root)
        self.git("remote", "add", "origin", str(self.bare))

    def git(self, *args, cwd=None):
        return subprocess.run(["git", *args], cwd=cwd or self.work, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, files: dict, message="change", branch="main") -> str:
        """Commit ``files`` ({path: text}) on ``branch`` and push it; the new commit's hash."""
        if self._has_head() and self.git("rev-parse", "--abbrev-ref", "HEAD") != branch:
            exists = self.git("branch", "--list", branch) != ""
            self.git("checkout", "--quiet", *(() if exists else ("-b",)), branch)
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "--force", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", name)
        self.git("push", "--quiet", "origin", name)

    def _has_head(self) -> bool:
        return subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=self.work, env=self.env,
                              capture_output=True).returncode == 0


def make_repository(root: Path) -> Repository:
    root.mkdir(parents=True, exist_ok=True)
    return Repository(root)
