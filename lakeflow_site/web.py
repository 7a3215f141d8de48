"""The web server: daphne, with one change. `python -m lakeflow_site.web` takes daphne's arguments.

Twisted reads a request's head line by line and drops the connection without a word when one
line passes 16 KiB; browsers and clients then report a network error. Here the client gets the
status HTTP has for it: 414 for a request line (a URL) that long, 431 for a header line.
"""

from twisted.web import http


def _answer_line_too_long(channel, line):
    on_request_line = channel._receivedHeaderSize == 0  # reset for each request's head
    status = b"414 URI Too Long" if on_request_line else b"431 Request Header Fields Too Large"
    channel.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    channel.loseConnection()


http.HTTPChannel.lineLengthExceeded = _answer_line_too_long


if __name__ == "__main__":
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()
