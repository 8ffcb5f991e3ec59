"""What a backend that speaks a provider's JSON API over HTTP itself needs.

The built-in ``openai`` backend and ``atk-backend-anthropic`` both talk to
their APIs straight over ``httpx`` (the SDKs' response models cost more CPU
per request than the rest of atk's request path). ``HttpBackend`` holds what
they share, so that a third backend gets it right by subclassing:

- one connection pool per event loop (connections belong to the loop that
  opened them, and a sync pipeline runs a loop per step), dropped with its
  loop;
- one call: its JSON (or bytes), or the typed error its status means — 429
  slows the run down by the ``retry-after`` the server asked for, 5xx, 408,
  409 and ``x-should-retry: true`` retry, a bad key, an unpaid bill or an
  unknown model stops the run, and anything else fails its sample;
- the core's retry policy is the only one: nothing here retries.
"""

from __future__ import annotations

import json

from .base import Backend, FatalError, RateLimited, RequestError, TransientError


def httpx_module():
    """The HTTP client library the openai and anthropic SDKs install: ``httpx2`` in their
    newer releases, ``httpx`` before (the same API)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


def json_bytes(body) -> bytes:
    """A request's body as the APIs take it: compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def retry_after(headers) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, else ``retry-after`` (seconds)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        try:
            if value is not None:
                return max(0.0, float(value) / scale)
        except ValueError:
            continue
    return None


class HttpBackend(Backend):
    """A backend that calls a JSON API over HTTP. A subclass sets ``base_url`` and
    ``http_headers`` in its ``__init__`` and calls ``self._call``."""

    base_url: str = ""
    http_headers: dict = {}
    # The statuses that stop the run: the same request can never succeed with this
    # configuration (bad key, unpaid bill, no such model or endpoint).
    fatal_statuses = frozenset({401, 402, 403, 404})

    def _get_client(self):
        """This event loop's client."""
        import asyncio

        loop = asyncio.get_running_loop()
        clients = self.__dict__.setdefault("_clients", {})  # event loop -> its HTTP client
        for other in [l for l in clients if l.is_closed()]:
            clients.pop(other)  # its connections died with it
        client = clients.get(loop)
        if client is None:
            httpx = httpx_module()
            client = clients[loop] = httpx.AsyncClient(
                base_url=self.base_url + "/", headers=self.http_headers, follow_redirects=True,
                timeout=None,  # the core's per-request timeout applies
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100))
        return client

    def _error(self, status: int, message: str, headers=None) -> Exception:
        """The typed error an HTTP status means (for a request, or a batch's line)."""
        headers = headers or {}
        if status == 429:
            return RateLimited(message, retry_after(headers))
        if headers.get("x-should-retry") == "true":
            return TransientError(message)
        if status in self.fatal_statuses:
            return FatalError(f"{self.base_url}: {message}")
        if status >= 500 or status in (408, 409):
            return TransientError(message)
        return RequestError(message)

    def _describe(self, status: int, content: bytes) -> str:
        """``HTTP 500: the server's own reason`` (its error's ``_reason``, else the start of
        its body)."""
        message = None
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error", body)
            message = self._reason(error) if isinstance(error, dict) else str(error)
        if not message:
            message = content.decode("utf-8", errors="replace") or "(no body)"
        return f"HTTP {status}: {' '.join(str(message).split())[:300]}"

    def _reason(self, error: dict) -> str | None:
        """What an error object in a response says (a subclass may say more: its type)."""
        return error.get("message")

    async def _call(self, method: str, path: str, content: bytes | None = None,
                    headers: dict | None = None, *, body=None, raw: bool = False, missing=None):
        """One API call, sending ``content`` (or ``body`` as JSON): its JSON (``raw``: its
        bytes), or the typed error its status means; ``missing``: the error a 404 raises
        instead of the usual one."""
        httpx = httpx_module()
        if body is not None:
            content = json_bytes(body)
        try:
            reply = await self._get_client().request(method, path, content=content, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"{self.base_url}: the request timed out") from None
        except httpx.HTTPError as exc:  # refused, reset, closed mid-answer...
            raise TransientError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from None
        status = reply.status_code
        if status >= 300:
            if status == 404 and missing is not None:
                raise missing
            raise self._error(status, self._describe(status, reply.content), reply.headers)
        if raw:
            return reply.content
        try:
            return json.loads(reply.content)
        except ValueError as exc:  # not the JSON the API promises: a broken or overloaded server
            raise TransientError(f"{self.base_url} sent a malformed response: {exc}") from None

    async def aclose(self):
        import asyncio

        clients = self.__dict__.get("_clients", {})
        client = clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        clients.clear()  # other loops' clients: their loops are gone or going
