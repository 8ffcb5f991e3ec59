"""A role's requests through its provider's Batch API (``batch: true`` on the role).

A request that misses the store waits in a queue; once ``batch_wait`` seconds
pass without a new one (or ``batch_size`` have come), the queue goes to the
provider as one batch, and the batch's id and its requests are committed to
the run's store before anything else happens. The batch is then followed
(every ``batch_poll`` seconds, its state shown on the run's progress) until it
ends; its answers are downloaded and stored, all of them, whether or not a
request is still waiting for each. So:

- a run killed after creating a batch, run again, finds its requests in that
  batch (``Store.open_batch_of``) and follows it, rather than paying for a new
  one;
- a batch whose creation was never heard of (the connection dropped with the
  answer) is looked for before another is made, by a digest of its requests'
  keys (``find_batches``), and followed: not paid for twice. A provider that
  cannot show a batch's requests before it ends offers the batches that may be
  it; one that was not is found out when it ends (none of its answers is for
  these requests, which then go again);
- a line the batch did not answer (failed, expired, cancelled) fails its
  request with a ``TransientError``: the core's retry policy asks it again,
  in a new batch.

Where the model's store cannot hold batches (a remote executor's worker, whose
answers go home to the driver's store one by one), the queue only sends and
follows, and ``Model.request`` stores each answer as it stores a direct one.

A backend with a Batch API has five methods, and the core does the rest:
``batch_line(request)`` (the provider's form of one request; lines with
different ``url`` go in different batches), ``create_batch(lines, digest)``,
``find_batches(digest, size, since)``, ``batch_state(batch_id)`` (a
``BatchState``) and ``batch_results(state)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from dataclasses import replace

from .base import (
    BackendError, BatchState, FatalError, RateLimited, RequestError, Response, TransientError,
    stored_answer,
)

MAX_LOOK_ERRORS = 10  # failed looks in a row at a batch before its requests fail (and retry)


def batch_digest(keys) -> str:
    """The digest of a batch's requests (their store keys, in any order): how a batch whose
    creation was never heard of is found again."""
    return hashlib.sha256("\n".join(sorted(str(key) for key in keys)).encode("utf-8")).hexdigest()[:32]


class Batches:
    """The batch queue of one model role (one per event loop: a sync pipeline runs several)."""

    def __init__(self, model):
        self.model = model
        self._loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @property
    def stores(self) -> bool:
        """Whether the queue stores the answers itself (the model's store keeps batches)."""
        return _batch_store(self.model) is not None

    async def ask(self, key: str, canonical: str, request, tag: str) -> Response:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopBatches(self.model, loop)
        return await state.ask(key, canonical, request, tag)


class _LoopBatches:
    def __init__(self, model, loop):
        self.model, self.loop = model, loop
        self.pending: dict[str, tuple] = {}  # key -> (request, canonical, tag, [futures])
        self.waiting: dict[str, list] = {}  # key -> futures of requests in a submitted batch
        self.following: dict[str, asyncio.Task] = {}
        self.known: dict[str, list] = {}  # batch id -> its requests, for a run without a store
        self.tried: dict[str, float] = {}  # digest -> when this process first tried to create it
        self.timer = None
        self.tasks: set = set()

    async def ask(self, key, canonical, request, tag) -> Response:
        future = self.loop.create_future()
        store = _batch_store(self.model)
        batch_id = store.open_batch_of(key) if store is not None else None
        if batch_id is not None:  # sent before (by this run, or one that was killed): follow it
            self.waiting.setdefault(key, []).append(future)
            self._follow(batch_id)
        else:
            self.pending.setdefault(key, (request, canonical, tag, []))[3].append(future)
            self._schedule()
        return await future

    # -- sending ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if len(self.pending) >= self.model.spec.batch_size:
            self._spawn(self._send())
        else:
            self.timer = self.loop.call_later(self.model.spec.batch_wait, lambda: self._spawn(self._send()))

    def _spawn(self, coroutine) -> asyncio.Task:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task) -> None:
        """A sending or following task that died of a bug must not leave requests waiting
        for ever: they fail, with its one line."""
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        error = FatalError(f"model {self.model.role!r}: its batches failed: {type(exc).__name__}: {exc}")
        for futures in [entry[3] for entry in self.pending.values()] + list(self.waiting.values()):
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self.pending.clear()
        self.waiting.clear()

    async def _send(self) -> None:
        self.timer = None
        taken = list(self.pending.items())[:self.model.spec.batch_size]
        for key, _ in taken:
            del self.pending[key]
        if self.pending:
            self._schedule()
        entries = dict(taken)
        groups: dict = {}  # a batch has one endpoint (url): chat and completion requests go apart
        for key, (request, _, _, futures) in taken:
            try:
                line = self.model.backend.batch_line(request)
            except Exception as exc:  # this request cannot go in a batch: it fails, alone
                _fail_all([futures], exc if isinstance(exc, BackendError) else FatalError(
                    f"model {self.model.role!r}: {type(exc).__name__}: {exc}"))
                continue
            groups.setdefault(line.get("url"), []).append({"custom_id": key, **line})
        for group in groups.values():
            keys = [line["custom_id"] for line in group]
            try:
                batch_id = await self._create(group, keys)
            except Exception as exc:
                _fail_all([entries[key][3] for key in keys], exc if isinstance(exc, BackendError)
                          else FatalError(f"model {self.model.role!r}: creating a batch failed:"
                                          f" {type(exc).__name__}: {exc}"))
                continue
            requests = [(key, entries[key][1], entries[key][2]) for key in keys]
            store = _batch_store(self.model)
            try:
                if store is not None:  # before anything else: a killed run finds it
                    store.add_batch(batch_id, self.model.role, requests)
                else:
                    self.known[batch_id] = requests
            except Exception as exc:
                _fail_all([entries[key][3] for key in keys], FatalError(
                    f"batch {batch_id} was created but could not be noted in the store ({exc});"
                    " a run again would not know it"))
                continue
            for key in keys:
                self.waiting.setdefault(key, []).extend(entries[key][3])
            self._follow(batch_id)

    async def _create(self, lines: list, keys: list) -> str:
        """The id of a batch of ``lines``: one already made of the same requests, whose
        creation was not heard of (or not noted), else a new one."""
        backend, digest = self.model.backend, batch_digest(keys)
        since = self.tried.get(digest)
        if since is None:
            self.tried[digest] = time.time()
        try:
            found = await backend.find_batches(digest, len(lines), since)
        except (RequestError, FatalError, TransientError, RateLimited):  # no list to look in
            found = []
        known = set(self.known) | set(self.following)
        store = _batch_store(self.model)
        if store is not None and found:
            known |= {batch["id"] for batch in store.batches()}
        for batch_id in found or ():
            if str(batch_id) not in known:
                return str(batch_id)
        return str(await backend.create_batch(lines, digest))

    # -- following ----------------------------------------------------------------------------

    def _follow(self, batch_id: str) -> None:
        if batch_id not in self.following:
            self.following[batch_id] = self._spawn(self._watch(batch_id))

    async def _watch(self, batch_id: str) -> None:
        store = _batch_store(self.model)
        try:
            state = await self._until_finished(batch_id)
            results = await self.model.backend.batch_results(state)
        except RequestError as exc:  # the provider does not know it: its requests go again
            if store is not None:
                store.close_batch(batch_id, f"lost: {exc}")
            self._fail(batch_id, TransientError(str(exc)))
            return
        except Exception as exc:  # its requests fail (and are asked again); it stays open
            self._fail(batch_id, exc if isinstance(exc, BackendError) else FatalError(
                f"batch {batch_id}: {type(exc).__name__}: {exc}"))
            return
        finally:
            self.following.pop(batch_id, None)
        try:
            self._deliver(batch_id, state, results)
        except Exception as exc:
            self._fail(batch_id, FatalError(f"batch {batch_id}: its answers could not be stored:"
                                            f" {type(exc).__name__}: {exc}"))

    async def _until_finished(self, batch_id: str) -> BatchState:
        errors = 0
        role, spec = self.model.role, self.model.spec
        while True:
            try:
                state = await self.model.backend.batch_state(batch_id)
            except (TransientError, RateLimited) as exc:
                errors += 1
                if errors >= MAX_LOOK_ERRORS:
                    raise TransientError(f"batch {batch_id}: {errors} looks failed: {exc}") from None
                await asyncio.sleep(min(spec.batch_poll, 2.0 ** errors))
                continue
            errors = 0
            _say(f"model {role}: batch {batch_id} {state.status}, {state.done}/{state.total or '?'} done")
            if state.ended:
                return state
            await asyncio.sleep(spec.batch_poll)

    def _deliver(self, batch_id: str, state: BatchState, results: dict) -> None:
        model, store = self.model, _batch_store(self.model)
        status, why = state.status, state.reason
        requests = store.batch_requests(batch_id) if store is not None else self.known.pop(batch_id, [])
        rows = []
        for key, canonical, tag in requests:
            result = results.get(key)
            futures = self.waiting.pop(key, [])
            if isinstance(result, Response):
                # Stored whether or not a request waits for it; counted as sent only for one
                # that does (another comes from the store when it is asked).
                if store is not None and futures and store.get(key) is None:
                    model.sent += 1
                    model.usage.add(result.usage)
                if store is not None:
                    rows.append((key, canonical, stored_answer(result), tag))
                for future in futures:
                    if not future.done():
                        future.set_result(Response(result.text, result.finish_reason,
                                                   replace(result.usage)))
                continue
            # As the same request sent directly would fail, in the same words: a refused one
            # skips its sample (or stops the run), the rest are asked again.
            if isinstance(result, (RequestError, FatalError)):
                _fail_all([futures], result)
                continue
            reason = str(result) if result is not None else (
                why or "the batch has no answer for this request")
            _fail_all([futures], TransientError(f"batch {batch_id} ({status}): {reason}"))
        if store is not None:
            store.put_many(rows)
            store.close_batch(batch_id, status)

    def _fail(self, batch_id: str, error: Exception) -> None:
        store = _batch_store(self.model)
        requests = store.batch_requests(batch_id) if store is not None else self.known.get(batch_id, [])
        _fail_all([self.waiting.pop(key, []) for key, _, _ in requests], error)


def _fail_all(groups, error: Exception) -> None:
    for futures in groups:
        for future in futures:
            if not future.done():
                future.set_exception(error)


def _batch_store(model):
    store = model.store
    return store if store is not None and hasattr(store, "add_batch") else None


def _say(message: str) -> None:
    """Show a batch's state on the run's progress (its bar stays where it is)."""
    from ..engine.context import current_run
    from ..engine.progress import say

    run = current_run()
    if run is not None:
        say(run.task_id, message)
