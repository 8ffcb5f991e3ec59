"""The guard of ``atk serve``: host, origin, token and body size, checked before any route runs.

Everything that keeps a hostile web page (DNS rebinding, cross-origin
requests) or another local user (no token) out is here, as one ASGI
middleware; the routes behind it can assume a request is allowed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from urllib.parse import urlsplit

# What a token may hold: it travels in a header and a URL, unquoted.
# Not "+": a query string reads it as a space.
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~/=-]+")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware that refuses a request before the app sees it
    (``app.add_middleware(Guard, token=..., loopback=..., max_body=...)``).

    - bound to loopback, only loopback Host names are served (no DNS rebinding);
    - a request that changes something must not come from another origin;
    - with a token, every request carries ``Authorization: Bearer TOKEN``, except the
      page itself (``GET /``: HTML and script, no data), which takes the token from its
      URL (``/?token=TOKEN``), keeps it in the tab's session storage (readable by this
      origin only: scheme, host and port) and sends it as that header. No cookie ever
      holds it: a browser sends a host's cookies to every port of it;
    - request bodies are at most ``max_body`` bytes (413 otherwise) and arrive within
      ``body_seconds`` (408 otherwise).
    """

    def __init__(self, app, *, token, loopback, max_body, body_seconds: float = 30.0):
        self.app = app
        self.token = token
        self.loopback = loopback
        self.max_body = max_body
        self.body_seconds = body_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        host = headers.get("host", "")
        if self.loopback and not is_loopback(_hostname(host)):
            return await _refuse(send, 403, f"this server answers only to localhost, not {host!r}")
        if method not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                return await _refuse(send, 403, "cross-origin requests are not allowed")
        page = scope["path"] == "/" and method in ("GET", "HEAD")
        if self.token and not page and not self._authorized(headers):
            return await _refuse(send, 401, "this server needs its token: send"
                                 " 'Authorization: Bearer TOKEN' (open the page as"
                                 " /?token=TOKEN)", [(b"www-authenticate", b"Bearer")])
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            length = headers.get("content-length")
            if length is not None:
                try:
                    too_big = int(length) > self.max_body
                except ValueError:
                    return await _refuse(send, 400, "bad Content-Length")
                if too_big:
                    return await _refuse(send, 413, f"request body over {self.max_body} bytes")
            import anyio

            body, more = [], True
            size = 0
            with anyio.move_on_after(self.body_seconds) as waited:
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        return await _refuse(send, 413, f"request body over {self.max_body} bytes")
                    body.append(chunk)
                    more = message.get("more_body", False)
            if waited.cancelled_caught:  # a body that trickles in would hold the connection forever
                return await _refuse(send, 408, f"the request body took over {self.body_seconds:g}s")
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(body), "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)

    def _authorized(self, headers) -> bool:
        given = headers.get("authorization", "")
        return given[:7].lower() == "bearer " and _same(given[7:].strip(), self.token)


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _refuse(send, status: int, detail: str, extra_headers=()):
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *extra_headers]})
    await send({"type": "http.response.body", "body": body})
