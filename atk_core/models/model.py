"""A model role as a pipeline sees it: one backend behind the core's one policy.

``Model`` adds to a backend what every backend needs and none should write
twice: the store (a request answered before is never sent again), a
concurrency limit, an optional requests-per-minute limit, bounded retries with
exponential backoff and jitter that honour retry-after, a per-request timeout,
schema checking of structured answers, and token and cost totals.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
import weakref
from typing import Any

from .base import (
    FatalError, RateLimited, Request, RequestError, Response, TransientError, Usage, send, stored_answer,
)
from ..toolkit.schemas import schema_problem
from .specs import ModelSpec

log = logging.getLogger("atk")

MAX_BACKOFF = 60.0
# After this many requests in a row give up on retries, the server is down, not flaky.
GIVE_UP_AFTER = 8


class Model:
    """A ready-to-use model for one role (``models["large"]`` inside a pipeline)."""

    def __init__(self, spec: ModelSpec, backend):
        self.spec = spec
        self.role = spec.role
        self.backend = backend
        self.store = None  # the run's Store, attached by the runner
        self.usage = Usage()  # tokens of the requests this process sent
        self.stored_usage = Usage()  # tokens of the answers taken from the store
        self.sent = 0
        self.from_store = 0
        self.reused = 0  # of those, answers stored since this role started: earlier in this run
        self._started = time.time()
        self.retries = 0
        self._successes = 0
        self._given_up_in_a_row = 0
        self._reported_retries = 0
        self._limits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._rpm_lock = threading.Lock()
        self._next_slot = 0.0
        self._identity = None
        # An async function returning the seconds to wait before the next request, standing
        # in for this process's own ``rpm`` pacing when the limit is shared (an executor
        # running the role on several workers sets it).
        self.pace = None
        self._batches = None  # the role's Batch API queue (batch: true), made on first use

    # -- what a pipeline calls -------------------------------------------------------------

    async def chat(self, messages, *, tag: str = "", **parameters) -> Response:
        """Send chat ``messages``; ``tag`` separates otherwise identical requests in the store."""
        return await self.request(make_request(messages=messages, **parameters), tag=tag)

    async def complete(self, prompt: str, *, tag: str = "", **parameters) -> Response:
        return await self.request(make_request(prompt=prompt, **parameters), tag=tag)

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = dict(self.backend.identity())
        return self._identity

    def cost(self, usage: Usage | None = None) -> float | None:
        """Dollars for ``usage`` at the role's prices: prompt tokens read from or written to a
        provider's cache at ``price_cache_read`` and ``price_cache_write`` (``price_in`` where
        those are not set)."""
        usage = usage or self.usage
        spec = self.spec
        if spec.price_in is None and spec.price_out is None:
            return None
        price_in = spec.price_in or 0
        read = price_in if spec.price_cache_read is None else spec.price_cache_read
        write = price_in if spec.price_cache_write is None else spec.price_cache_write
        uncached = usage.prompt_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        return (uncached * price_in + usage.cache_read_tokens * read + usage.cache_write_tokens * write
                + usage.completion_tokens * (spec.price_out or 0)) / 1_000_000

    # -- what an executor that runs the role elsewhere tells it ----------------------------

    def fix_identity(self, identity: dict) -> None:
        """Make store keys with ``identity`` (the driver's), whatever this backend says."""
        self._identity = dict(identity)

    @property
    def has_succeeded(self) -> bool:
        """Whether a request of this role has succeeded in this run (until one has, a request
        that runs out of retries ends the run rather than skipping its sample)."""
        return self._successes > 0

    def assume_succeeded(self) -> None:
        """Take the role as working (the driver's has succeeded), on a worker's model."""
        self._successes = max(self._successes, 1)

    def count_stored(self, answer) -> None:
        """Count a stored answer (a ``StoredAnswer``) used elsewhere as taken from the store."""
        self.from_store += 1
        self.stored_usage.add(Usage.of(answer))

    def count_sent(self, answer, retries: int = 0) -> None:
        """Count an answer a worker got for this role as sent, with its ``retries``: the role
        works, as when it answers here."""
        self.sent += 1
        self.retries += retries
        self._successes += 1
        self._given_up_in_a_row = 0
        self.usage.add(Usage.of(answer))

    def unreported_retries(self) -> int:
        """The retries made since the last call (what a worker reports with each sample)."""
        count = self.retries - self._reported_retries
        self._reported_retries = self.retries
        return count

    def summary(self) -> dict[str, Any]:
        """Requests and tokens of this role, for the manifest and the end-of-run line."""
        total = Usage()
        total.add(self.usage)
        total.add(self.stored_usage)
        return {
            "identity": self.identity(),
            "requests_sent": self.sent,
            "answers_from_store": self.from_store,
            # of those, asked earlier in this run: parts or steps that ask the same share one answer
            "answers_reused": self.reused,
            "retries": self.retries,
            "usage_sent": self.usage.to_dict(),
            "usage_total": total.to_dict(),
            "cost_sent": self.cost(self.usage),
            "cost_total": self.cost(total),
        }

    async def request(self, request: Request, *, tag: str = "") -> Response:
        key = canonical = None
        if self.store is not None:
            canonical = canonical_request(request, self.identity(), tag)
            key = request_key(canonical)
            stored = self.store.get(key)
            if stored is not None:
                self.from_store += 1
                self.reused += stored.created >= self._started  # no set of keys: flat memory
                response = Response(text=stored.text, finish_reason=stored.finish_reason,
                                    usage=Usage.of(stored), cached=True)
                self.stored_usage.add(response.usage)
                return with_parsed(response, request)
        if self.spec.batch:  # through the provider's Batch API, which stores what it gets
            if key is None:
                canonical = canonical_request(request, self.identity(), tag)
                key = request_key(canonical)
            if self._batches is None:
                from .batches import Batches

                self._batches = Batches(self)
            response = await self._send_with_retries(
                request, call=lambda: self._batches.ask(key, canonical, request, tag), timeout=False)
            if not self._batches.stores:  # a store that holds no batches: stored as direct ones
                await self._count_and_store(key, canonical, response, tag)
            return with_parsed(response, request)
        semaphore = self._semaphore()
        async with semaphore:
            await self._wait_for_rpm_slot()
            response = await self._send_with_retries(request)
            # Committed (with the others of this turn of the loop) before the slot is given
            # back: what is in flight at a kill is at most `concurrency` requests.
            await self._count_and_store(key, canonical, response, tag)
        return with_parsed(response, request)

    async def _count_and_store(self, key, canonical, response, tag) -> None:
        self.sent += 1
        self.usage.add(response.usage)
        if self.store is not None:
            await self.store.put_soon(key, canonical, stored_answer(response), tag)

    async def aclose(self) -> None:
        await self.backend.aclose()

    # -- the policy --------------------------------------------------------------------------

    def _semaphore(self) -> asyncio.Semaphore:
        # asyncio primitives belong to one event loop; a sync pipeline may run several.
        loop = asyncio.get_running_loop()
        semaphore = self._limits.get(loop)
        if semaphore is None:
            semaphore = self._limits[loop] = asyncio.Semaphore(self.spec.concurrency)
        return semaphore

    async def _wait_for_rpm_slot(self):
        if not self.spec.rpm:
            return
        if self.pace is not None:
            delay = await self.pace()
            if delay > 0:
                await asyncio.sleep(delay)
            return
        interval = 60.0 / self.spec.rpm
        with self._rpm_lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _send_with_retries(self, request: Request, *, call=None, timeout: bool = True) -> Response:
        """Send ``request`` (or await ``call()``, another way of sending it) under the role's
        retry policy; ``timeout``: the role's per-request timeout applies."""
        attempts = self.spec.max_retries + 1
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                sending = call() if call is not None else send(self.backend, request)
                response = await (_within(self.spec.timeout, sending) if timeout else sending)
            except RateLimited as exc:
                last, delay = exc, exc.retry_after
            except (TransientError, asyncio.TimeoutError) as exc:
                if isinstance(exc, asyncio.TimeoutError):
                    exc = TransientError(f"no answer within {self.spec.timeout:g}s (timeout)")
                last, delay = exc, None
            except (FatalError, RequestError):
                raise
            except Exception as exc:  # a bug or an unexpected failure in the backend
                raise FatalError(
                    f"model {self.role!r} ({self.spec.backend}) failed: {type(exc).__name__}: {exc}"
                ) from exc
            else:
                self._successes += 1
                self._given_up_in_a_row = 0
                return response
            if attempt + 1 < attempts:
                self.retries += 1
                if delay is None:
                    delay = self._backoff(attempt)
                await asyncio.sleep(delay)
        self._given_up_in_a_row += 1
        message = (f"model {self.role!r} ({self.spec.backend}): gave up after {attempts}"
                   f" attempt{'s' if attempts > 1 else ''}: {last}")
        if self._successes == 0 or self._given_up_in_a_row >= GIVE_UP_AFTER:
            # Nothing has worked, or nothing works any more: stop the run, say why.
            raise FatalError(message)
        raise TransientError(message)

    def _backoff(self, attempt: int) -> float:
        base = self.spec.retry_base_delay * (2 ** attempt)
        return min(MAX_BACKOFF, base) * random.uniform(0.5, 1.0)


if hasattr(asyncio, "timeout"):  # 3.11+: no extra task per request

    async def _within(seconds, coroutine):
        async with asyncio.timeout(seconds):
            return await coroutine

else:

    async def _within(seconds, coroutine):
        return await asyncio.wait_for(coroutine, seconds)


def canonical_request(request: Request, identity: dict, tag: str = "") -> str:
    """The exact request as one canonical JSON text: what its store key hashes."""
    material = {"tag": tag, "identity": identity, "request": request.to_dict()}
    return json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def make_request(*, messages=None, prompt=None, json_schema=None, extra=None, stop=None,
                 **sampling) -> Request:
    """A Request from keyword arguments, with lists made hashable."""
    unknown = set(sampling) - {"temperature", "top_p", "max_tokens", "seed"}
    if unknown:
        raise TypeError(f"unknown request parameters: {', '.join(sorted(unknown))}")
    if isinstance(stop, str):
        stop = [stop]
    return Request(
        messages=tuple(_message(m) for m in messages) if messages is not None else None,
        prompt=prompt,
        stop=tuple(stop) if stop else None,
        json_schema=json_schema,
        extra=dict(extra or {}),
        **sampling,
    )


def _message(message) -> dict:
    if not isinstance(message, dict) or "role" not in message or "content" not in message:
        raise TypeError(f"a chat message is a {{role, content}} mapping, not {message!r}")
    return {"role": message["role"], "content": message["content"]}


def _json_error(exc) -> str:
    """A JSON error whole ("Invalid control character at line 1 column 5"), not cut at its
    position as ``msg`` is ("Invalid control character at")."""
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)
    where = f"line {exc.lineno} column {exc.colno}"
    return f"{exc.msg} {where}" if exc.msg.endswith(" at") else f"{exc.msg} at {where}"


def with_parsed(response: Response, request: Request) -> Response:
    """Parse and check a structured answer against its schema; leave the verdict on it."""
    if request.json_schema is None:
        return response
    response.parsed = None
    response.parse_error = None
    try:
        value = json.loads(response.text)
    except (json.JSONDecodeError, TypeError) as exc:
        truncated = " (the answer was cut off: finish_reason=length)" if response.finish_reason == "length" else ""
        response.parse_error = f"the answer is not valid JSON: {_json_error(exc)}{truncated}"
        return response
    problem = schema_problem(value, request.json_schema)
    if problem:
        response.parse_error = f"the answer does not match the schema: {problem}"
        return response
    response.parsed = value
    return response
