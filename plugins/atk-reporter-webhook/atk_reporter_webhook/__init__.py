"""atk progress reporter ``webhook``: POSTs progress events as JSON to a URL.

In a config::

    progress:
      - console
      - webhook:
          webhook_url: https://example.org/atk-hook
          headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
          interval: 1.0

Events are batched: each POST body is ``{"events": [event, ...]}`` with the
events in the order they happened (each as ``ProgressEvent.to_dict()``).
``handle()`` only appends to a bounded in-memory queue; a daemon thread does
the HTTP. A receiver that is down, slow or answering errors never slows or
stops the run: its events are dropped, one warning says so, and ``close()``
logs how many were lost.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time

from typing import Annotated

from atk_core import Above, AtLeast, enforce_constraints, hookimpl

Seconds = Annotated[float, AtLeast(0, unit="seconds")]

__version__ = "0.1.0"

__all__ = ["WebhookReporter", "__version__"]

log = logging.getLogger("atk")

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP header name
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_BACKOFF = 0.2  # seconds before the first retry; doubles for each further one
_READ_LIMIT = 64 * 1024  # at most this much of a receiver's answer is read (and ignored)
_INF = float("inf")


@hookimpl
def atk_register_progress_reporters(register):
    register("webhook", WebhookReporter)


class WebhookReporter:
    """POSTs progress events as JSON to a URL, in batches, from a background thread."""

    def __init__(self, webhook_url: str | None = None, url: str | None = None,
                 headers: dict | None = None, interval: Seconds = 1.0,
                 timeout: Annotated[float, Above(0, unit="seconds")] = 2.0,
                 retries: Annotated[int, AtLeast(0)] = 2, max_queue: Annotated[int, AtLeast(1)] = 10000,
                 close_timeout: Seconds = 5.0, output_dir=None):
        # atk checks a config's options against these annotations before the run starts;
        # a reporter made in code gets the same check here.
        enforce_constraints(WebhookReporter, dict(interval=interval, timeout=timeout, retries=retries,
                                              max_queue=max_queue, close_timeout=close_timeout))
        self.url, basic_auth = _without_credentials(_checked_url(webhook_url, url))
        self.display_url = _display_url(self.url)
        self.headers = _checked_headers(headers, basic_auth)
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.retries = retries
        self.max_queue = max_queue
        self.close_timeout = float(close_timeout)

        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closing = False  # close() was called: send what is queued, then stop
        self._closed = False  # close() has returned: the thread must not touch the counts
        self._deadline = None  # monotonic time by which close() gives up
        self._in_flight = 0  # events in the POST being sent now
        self._failing = False  # the last batch could not be delivered
        self._warned = False
        self.received = 0  # events handed to handle()
        self.delivered = 0  # events a receiver acknowledged with a 2xx answer
        self.dropped = 0  # events given up on, for any reason
        self.overflowed = 0  # of those, dropped because the queue was full
        self._opener = None
        self._thread = threading.Thread(target=self._run, name="atk-webhook-reporter",
                                        daemon=True)
        self._thread.start()

    # -- the reporter contract --------------------------------------------------------------

    def handle(self, event) -> None:
        """Queue the event for the sender thread; never blocks on the network, never raises."""
        warn = False
        with self._cond:
            if self._closing:
                return
            self.received += 1
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.overflowed += 1
                self.dropped += 1
                warn = not self._warned
                self._warned = True
            self._queue.append(event)
            if len(self._queue) == 1:  # the sender waits without a timeout only when idle
                self._cond.notify()
        if warn:
            log.warning(
                "webhook reporter: more than %d progress events are waiting for %s;"
                " the oldest are being dropped", self.max_queue, self.display_url,
            )

    def close(self) -> None:
        """Send what is queued, waiting at most ``close_timeout`` seconds, then stop."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + self.close_timeout
            self._cond.notify_all()
        self._thread.join(max(0.0, self._deadline - time.monotonic()))
        with self._cond:
            self._closed = True
            unsent = len(self._queue) + self._in_flight
            self._queue.clear()
            self._in_flight = 0
            self.dropped += unsent
            dropped, received, overflowed = self.dropped, self.received, self.overflowed
            self._cond.notify_all()
        if dropped:
            detail = ""
            if overflowed:
                detail = (f" ({overflowed} of them because more than max_queue={self.max_queue}"
                          " were waiting)")
            log.warning("webhook reporter: %d of %d progress events were not delivered to %s%s",
                        dropped, received, self.display_url, detail)

    # -- the sender thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug here must not surface in the run; say it once
            self._warn_once(f"stopped sending to {self.display_url} ({type(exc).__name__})")

    def _loop(self) -> None:
        next_send = 0.0  # monotonic time before which no POST starts (the interval)
        while True:
            with self._cond:
                while not self._closing:
                    if self._queue:
                        wait = next_send - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._closing and (not self._queue or self._remaining() <= 0):
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._in_flight = len(batch)
                attempts = 1 if self._failing else self.retries + 1
            started = time.monotonic()
            problem = self._deliver(batch, attempts)
            with self._cond:
                if self._closed:  # close() gave up on this batch and counted it
                    return
                self._in_flight = 0
                if problem is None:
                    self.delivered += len(batch)
                    self._failing = False
                else:
                    self.dropped += len(batch)
                    self._failing = True
            if problem:  # falsy: close_timeout ran out (close() sums that up)
                self._warn_once(f"{self.display_url} {problem}; progress events are being dropped")
            next_send = started + self.interval

    def _deliver(self, batch, attempts: int):
        """POST one batch: None when delivered, else what went wrong ("" if time ran out)."""
        import json

        try:
            body = json.dumps({"events": [_event_dict(e) for e in batch]},
                              ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return f"was not sent events that are not valid JSON ({type(exc).__name__})"
        problem = ""
        for attempt in range(attempts):
            with self._cond:
                if attempt:  # back off briefly; close() cuts the pause short
                    until = time.monotonic() + _BACKOFF * 2 ** (attempt - 1)
                    while not self._closing and time.monotonic() < until:
                        self._cond.wait(until - time.monotonic())
                timeout = self.timeout
                if self._closing:
                    remaining = self._remaining()
                    if remaining <= 0:
                        return problem
                    timeout = min(timeout, remaining)
            problem, retry = self._post(body, timeout)
            if problem is None or not retry:
                break
        return problem

    def _post(self, body: bytes, timeout: float):
        """One POST: ``(None, False)`` on success, else ``(problem, worth_retrying)``."""
        import http.client
        import socket
        import urllib.error

        request = self._request(body)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(_READ_LIMIT)
            return None, False
        except urllib.error.HTTPError as exc:
            exc.close()
            if 300 <= exc.code < 400:
                return (f"answered HTTP {exc.code}, a redirect (redirects are not followed;"
                        " give the final address)"), False
            return f"answered HTTP {exc.code}", exc.code >= 500 or exc.code in (408, 429)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                return f"did not answer within {timeout:g}s", True
            if isinstance(reason, BaseException):
                return f"is not answering ({type(reason).__name__})", True
            return f"is not answering ({reason})", True
        except (TimeoutError, socket.timeout):
            return f"did not answer within {timeout:g}s", True
        except (OSError, http.client.HTTPException) as exc:
            return f"is not answering ({type(exc).__name__})", True
        except Exception as exc:  # anything else: not worth retrying, and never raised
            return f"could not be reached ({type(exc).__name__})", False

    def _request(self, body: bytes):
        import urllib.request

        if self._opener is None:
            self._opener = _opener_for(self.url)
        request = urllib.request.Request(self.url, data=body, method="POST")
        for name, value in self.headers.items():
            request.add_header(name, value)
        return request

    # -- helpers ----------------------------------------------------------------------------

    def _remaining(self) -> float:
        """Seconds left before close() gives up (call with the lock held, while closing)."""
        return self._deadline - time.monotonic()

    def _warn_once(self, message: str) -> None:
        """Log this reporter's one warning, unless it was given already or close() returned."""
        with self._cond:
            if self._warned or self._closed:
                return
            self._warned = True
        log.warning("webhook reporter: %s", message)


def _opener_for(url: str):
    """A urllib opener that follows no redirect and skips proxies for this machine's addresses."""
    import urllib.request
    from urllib.parse import urlsplit

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        # A redirect would resend the headers (often a secret) to another address.
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None  # urllib then raises HTTPError with the 3xx code

    host = (urlsplit(url).hostname or "").lower()
    loopback = host in _LOOPBACK or host.startswith("127.")
    proxies = {} if loopback else urllib.request.getproxies()
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies), NoRedirects())


def _event_dict(event) -> dict:
    to_dict = getattr(event, "to_dict", None)
    record = to_dict() if callable(to_dict) else dict(event)
    for key, value in record.items():  # JSON has no NaN or infinity
        if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
            record[key] = None
    return record


# -- checking options: each problem is one clear line (the core shows it as a config error) ----


def _checked_url(webhook_url, url) -> str:
    from urllib.parse import urlsplit

    if webhook_url is not None and url is not None:
        raise ValueError("the webhook reporter takes webhook_url or its alias url, not both")
    value = webhook_url if webhook_url is not None else url
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            "the webhook reporter needs webhook_url: the http:// or https:// URL to POST"
            " progress events to"
        )
    if not isinstance(value, str):
        raise ValueError(f"webhook_url must be a URL (text), not {type(value).__name__}")
    value = value.strip()
    if any(c.isspace() for c in value):
        raise ValueError("webhook_url must not contain spaces or line breaks")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValueError("webhook_url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise ValueError(f"webhook_url must start with http:// or https://, not {shown}")
    if not parts.hostname:
        raise ValueError("webhook_url has no host name")
    return value


def _without_credentials(url: str):
    """The URL without ``user:password@``, and those as a Basic ``Authorization`` value."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def _display_url(url: str) -> str:
    """The URL as it may be shown: no user name, password, query or fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path}"


def _checked_headers(headers, basic_auth=None) -> dict:
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise ValueError(
            f"webhook headers must be a mapping of header names to values, not {type(headers).__name__}"
        )
    checked = {"Content-Type": "application/json",
               "User-Agent": f"atk-reporter-webhook/{__version__}"}
    if basic_auth:  # from user:password@ in the URL; an Authorization header wins
        checked["Authorization"] = basic_auth
    for name, value in headers.items():
        # Header values are often secrets: no message here ever shows one.
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValueError(f"webhook header name {name!r} is not a valid HTTP header name")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(
                f"webhook header {name!r} must be text, not {type(value).__name__}"
            )
        value = str(value)
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"webhook header {name!r} must not contain line breaks")
        for existing in list(checked):
            if existing.lower() == name.lower():
                del checked[existing]
        checked[name] = value
    return checked
