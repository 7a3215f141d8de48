"""Git repositories made in a test: a bare "remote" (reached by file:// URL) and a work tree that
pushes to it, with the git program and no global configuration; ``served_over_http`` puts one
behind HTTP basic authentication (git's own http-backend, in a thread on 127.0.0.1)."""

import base64
import os
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@contextmanager
def served_over_http(repo: Repository, username: str, token: str):
    """The URL of ``repo`` over http, answering only ``username`` with ``token``; every Authorization
    header it was sent is appended to ``repo.authorizations``."""
    repo.authorizations = []
    expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()

    class GitOverHttp(BaseHTTPRequestHandler):
        def do_GET(self):
            self.serve()

        def do_POST(self):
            self.serve()

        def serve(self):
            if self.headers.get("Authorization"):
                repo.authorizations.append(self.headers["Authorization"])
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {**repo.env, "GIT_PROJECT_ROOT": str(repo.bare.parent), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "REMOTE_USER": username, "REMOTE_ADDR": "127.0.0.1",
                   "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, content = out.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
            self.send_response(int(headers.pop("Status", "200").split()[0]))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), GitOverHttp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{repo.bare.name}"
    finally:
        server.shutdown()
        server.server_close()


def sent_token(repo: Repository, token: str) -> bool:
    """Whether any Authorization header ``repo``'s http server was sent carried ``token``."""
    return any(token in base64.b64decode(value.split()[-1]).decode(errors="replace")
               for value in repo.authorizations)
