"""Who may open a websocket to this server: its own pages only.

Channels' AllowedHostsOriginValidator checks the Origin against ALLOWED_HOSTS, so a "*" there
(common behind a proxy) lets any web page open sockets with a visitor's session. Here the Origin
must be this very site (its host and port are the Host the browser connected to) or one of
CSRF_TRUSTED_ORIGINS, whatever ALLOWED_HOSTS says; the Host must pass ALLOWED_HOSTS as for HTTP.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def origin_allowed(origin, host):
    if not origin or not host:
        return False  # browsers always send both on a websocket; other clients use the API
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class SameOriginValidator:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if not origin_allowed(origin, host):
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
