"""Real receivers for notification tests, on loopback: an SMTP server (aiosmtpd) and HTTP
servers that play Slack, Teams, PagerDuty or any webhook. No mock of the sending code: the
server's own senders talk to these over sockets.

    with HttpReceiver() as hook:          # hook.url("/slack") -> "http://127.0.0.1:<port>/slack"
        hook.fail_first(2)                # the next two requests get HTTP 500
        hook.hang_first(1)                # the next request is held unanswered until hook.release()
        hook.redirect_first(1, location)  # the next request gets a 301 to location, with Apache's "moved" page
        ...
        hook.wait_for(1, timeout=60)      # the first request(s) received, or AssertionError
        hook.requests[0].json, .headers, .path, .answered (status sent, None while held)

    with SmtpReceiver() as smtp:          # smtp.host, smtp.port
        smtp.wait_for(1)[0]["Subject"]    # email.message.EmailMessage objects
    SmtpReceiver(refuse={"bad@example.com"})          # RCPT TO refused with 550 (or {address: "451 ..."})
    SmtpReceiver(users={"lakeflow": "pw"})            # AUTH offered; a wrong password gets 535
"""

import email
import email.policy
import html
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    answered: int | None = None  # the HTTP status sent back; None while held (or never answered)
    at: float = field(default_factory=time.time)

    @property
    def json(self):
        return json.loads(self.body)


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class HttpReceiver:
    def __init__(self):
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._failures = []  # statuses to answer the next requests with
        self._hangs = 0
        self._redirects = []  # (status, Location) to answer the next requests with
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                entry = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.requests.append(entry)
                    hang = receiver._hangs > 0
                    if hang:
                        receiver._hangs -= 1
                    redirect = receiver._redirects.pop(0) if receiver._redirects and not hang else None
                    status = (redirect[0] if redirect else
                              receiver._failures.pop(0) if receiver._failures and not hang else 200)
                if hang:
                    receiver._released.wait()
                    self.close_connection = True
                    return  # held, then dropped without an answer
                answer = b'{"status": "success", "message": "Event processed"}' if status == 200 else b"boom"
                if redirect:  # as Apache answers, echoing the Location (HTML-escaped) and the path asked for
                    answer = (f"<html><head><title>{status} Moved</title></head><body><h1>Moved</h1><p>The document "
                              f"{html.escape(self.path)} has moved <a href=\"{html.escape(redirect[1])}\">here</a>."
                              "</p></body></html>").encode()
                # Before the answer leaves: once the sender has it (and marks its row), the test
                # reading this must see it.
                entry.answered = status
                self.send_response(status)
                if redirect:
                    self.send_header("Location", redirect[1])
                self.send_header("Content-Type", "application/json" if not redirect else "text/html")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def fail_first(self, count, status=500):
        with self._lock:
            self._failures.extend([status] * count)

    def redirect_first(self, count, location, status=301):
        with self._lock:
            self._redirects.extend([(status, location)] * count)

    def hang_first(self, count=1):
        with self._lock:
            self._hangs += count

    def release(self):
        self._released.set()

    def wait_for(self, count, timeout=60, answered=False):
        """The first ``count`` requests (answered ones only, if asked) once that many arrived."""
        def enough():
            with self._lock:
                seen = [r for r in self.requests if r.answered] if answered else list(self.requests)
            return seen[:count] if len(seen) >= count else None
        return _wait(enough, timeout, f"{count} request(s) at {self.url('')}")

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpReceiver:
    def __init__(self, refuse=(), users=None):
        """``refuse``: addresses whose RCPT TO is refused, with 550 (a set) or the reply given (a
        dict); ``users``: {login: password} accepted by AUTH, which is then offered (without TLS)."""
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []
        receiver = self
        refusals = dict(refuse) if isinstance(refuse, dict) else {
            address: f"550 5.1.1 <{address}>: Recipient address rejected: User unknown" for address in refuse}

        def authenticator(server, session, envelope, mechanism, auth_data):
            login, password = (getattr(auth_data, "login", b""), getattr(auth_data, "password", b""))
            accepted = users.get(login.decode(), object()) == password.decode()
            return AuthResult(success=accepted, handled=False)  # not handled: the server answers 535 itself

        auth = {"authenticator": authenticator, "auth_require_tls": False} if users is not None else {}

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in refusals:
                    return refusals[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                message.envelope_recipients = list(envelope.rcpt_tos)
                receiver.messages.append(message)
                return "250 Message accepted for delivery"

        self._make = lambda port: Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=30, **auth)

    def __enter__(self):
        for attempt in range(5):  # aiosmtpd needs a port number up front: another process may take it first
            self.controller = self._make(_free_port())
            try:
                self.controller.start()
                break
            except OSError:
                if attempt == 4:
                    raise
        self.host, self.port = "127.0.0.1", self.controller.port
        return self

    def wait_for(self, count, timeout=60):
        return _wait(lambda: list(self.messages[:count]) if len(self.messages) >= count else None, timeout,
                     f"{count} email(s) at {self.host}:{self.port}")

    def __exit__(self, *exc):
        self.controller.stop()


def wait_until(condition, timeout=60, what="the condition"):
    """``condition()``'s first truthy value, looked for every 50 ms, or AssertionError after ``timeout``."""
    return _wait(condition, timeout, what)
