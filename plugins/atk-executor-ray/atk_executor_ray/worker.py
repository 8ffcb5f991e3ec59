"""What runs on the cluster: the worker actor and the cluster-wide pacer of a role's rpm.

The classes are made Ray actors when first needed (``worker_class(ray)``), so
that importing this package does not import Ray.
"""

from __future__ import annotations

import asyncio
import json
import time


class Worker:
    """One worker: a backend per model role (built once, from the run's model specs, on the
    node Ray placed it on) and a model per role whose limits hold across its batches."""

    def __init__(self):
        self._backends: dict = {}
        self._models: dict = {}
        self._unacknowledged: dict = {}  # ticket -> future the answer's request slot waits on
        self._tickets = 0
        self._batches: dict = {}  # number -> (its events, its job)
        self._count = 0

    def ready(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    async def start(self, task, items, concurrency, pace, succeeded=False) -> int:
        """Start running ``items`` of ``task`` (a ``WorkerTask``; see its ``run_batch``; ``succeeded``:
        whether a request of the role has succeeded in the run); returns the batch's
        number, for ``next``."""
        model = self._model(task, concurrency, pace)
        events: asyncio.Queue = asyncio.Queue()

        async def emit(event):
            if isinstance(event, tuple):  # a finished sample
                await events.put(("done", event))
                return
            # A new answer keeps its request's slot until the driver has stored it (its
            # ticket comes back with the next ``next``), as a local run keeps it until its
            # store has: so when the driver dies the workers stop asking, and what is lost
            # is at most what was in flight.
            self._tickets += 1
            ticket = self._tickets
            stored = self._unacknowledged[ticket] = asyncio.get_running_loop().create_future()
            await events.put(("answer", ticket, event))
            try:
                await stored
            finally:
                self._unacknowledged.pop(ticket, None)

        self._count += 1
        self._batches[self._count] = (events, asyncio.ensure_future(
            task.run_batch(model, items, emit, succeeded=succeeded)))
        return self._count

    async def next(self, batch: int, stored=()) -> tuple[list, bool]:
        """Note the answers the driver has ``stored`` (tickets); then wait for what the batch
        has to say: ``(events, finished)``, events being new answers (``("answer", ticket,
        NewAnswer)``) and finished samples (``("done", (index, result, retries))``). A batch
        that failed raises its error once its last events have been taken.

        A long poll rather than a streaming generator: it works through Ray Client
        (``ray://``) too, and one round trip carries both ways."""
        for ticket in stored:
            waiting = self._unacknowledged.get(ticket)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        events, job = self._batches[batch]
        if events.empty() and not job.done():
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                events.put_nowait(getter.result())  # back in line, drained below
            else:
                getter.cancel()
            await asyncio.sleep(0)  # what else is ready in this turn goes along
        ready = _drain(events)
        if ready or not job.done():
            return ready, False
        del self._batches[batch]
        job.result()  # the batch's own failure, if it failed
        return [], True

    async def cancel(self, batch: int) -> None:
        _, job = self._batches.pop(batch, (None, None))
        if job is not None:
            job.cancel()

    async def aclose(self) -> None:
        for backend in self._backends.values():
            try:
                await backend.aclose()
            except Exception:
                pass

    def _model(self, task, concurrency, pace):
        spec = task.spec
        key = json.dumps([spec.role, spec.backend, spec.options, task.identity, concurrency],
                         sort_keys=True, default=str)
        model = self._models.get(key)
        if model is None:
            model = task.worker_model(self._backend(spec), concurrency=concurrency,
                                      pace=_pacer(pace) if pace else None)
            self._models[key] = model
        return model

    def _backend(self, spec):
        key = json.dumps([spec.backend, spec.options], sort_keys=True, default=str)
        backend = self._backends.get(key)
        if backend is None:
            from atk_core import make_backend

            backend = self._backends[key] = make_backend(spec)
        return backend


def _drain(queue: asyncio.Queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


class Gate:
    """The rpm of every role, for the whole cluster: each request asks it for a slot."""

    def __init__(self):
        self._next: dict = {}

    def delay(self, role: str, interval: float) -> float:
        now = time.monotonic()
        slot = max(now, self._next.get(role, 0.0))
        self._next[role] = slot + interval
        return slot - now


def _pacer(pace):
    gate, role, interval = pace

    async def wait() -> float:
        return await gate.delay.remote(role, interval)

    return wait


_classes: dict = {}


def worker_class(ray):
    if "worker" not in _classes:
        _classes["worker"] = ray.remote(Worker)
    return _classes["worker"]


def gate_class(ray):
    if "gate" not in _classes:
        _classes["gate"] = ray.remote(Gate)
    return _classes["gate"]
