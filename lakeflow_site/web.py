"""The web server: daphne, with two changes. `python -m lakeflow_site.web` takes daphne's arguments.

Twisted reads a request's head line by line and drops the connection without a word when one
line passes 16 KiB; browsers and clients then report a network error. Here the client gets the
status HTTP has for it: 414 for a request line (a URL) that long, 431 for a header line.

Twisted also passes a request target in absolute form (`GET http://host/path`) on as the path;
here it becomes the path and the Host, as HTTP requires of a server.
"""

import re

from twisted.web import http


def _answer_line_too_long(channel, line):
    on_request_line = channel._receivedHeaderSize == 0  # reset for each request's head
    status = b"414 URI Too Long" if on_request_line else b"431 Request Header Fields Too Large"
    channel.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    channel.loseConnection()


http.HTTPChannel.lineLengthExceeded = _answer_line_too_long


_request_received = http.Request.requestReceived
ABSOLUTE_FORM = re.compile(rb"(?i)https?://(?:[^/?#@]*@)?(?P<host>[^/?#]*)(?P<rest>.*)", re.DOTALL)


def _accept_absolute_form(request, command, path, version):
    """RFC 9112 3.2.2: a server MUST accept a request target in absolute form
    (`GET http://host/api/... HTTP/1.1`), which clients send through an HTTP proxy, and take the
    host from it. The legacy databricks-cli drops a host's port (databricks-cli#578), so it
    reaches a server on another port only through HTTP_PROXY, which sends this form."""
    absolute = ABSOLUTE_FORM.fullmatch(path)
    if absolute:
        request.requestHeaders.setRawHeaders(b"host", [absolute["host"]])
        path = (b"" if absolute["rest"].startswith(b"/") else b"/") + absolute["rest"]
    return _request_received(request, command, path, version)


http.Request.requestReceived = _accept_absolute_form


if __name__ == "__main__":
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()
