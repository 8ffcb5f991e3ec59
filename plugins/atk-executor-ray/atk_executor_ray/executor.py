"""The ``ray`` executor: a step's samples go to Ray actors in batches.

The driver (the process ``atk run`` started) keeps the run's store. For each
sample it first replays the step against the store (``StepTask.replay``): a
sample whose every answer is stored finishes on the driver and nothing is
sent. The others go, in batches, with the answers found for them, to
workers: Ray actors, each holding one backend per model role, built once
from the run's model specs on the node that has the resources the options
ask for. A worker streams back every new answer the moment it has it, and
the driver stores it at once (``StepTask.keep``), keyed exactly as a local
run keys it. So:

- the outputs are the bytes a local run writes (the step's logic is the
  same code on the same answers);
- a re-run sends nothing, and a killed driver re-sends at most what was in
  flight;
- a worker that dies (or its node) loses only the requests it had in
  flight: the unfinished samples of its batches are replayed on the driver
  (picking up every answer it had already sent home) and go to the workers
  that are left, and a new worker is started in its place.

A role's ``concurrency`` is split across the workers (cluster-wide, as
locally) unless ``worker_concurrency`` gives each worker its own cap (one
model server per node); its ``rpm`` is kept by one pacing actor for the whole
cluster; each worker applies the role's retry policy to its own requests.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import logging
import os
import re
import time
from typing import Annotated

from atk_core import AtLeast, Above, Executor, PipelineError, all_or_first_error

log = logging.getLogger("atk")

BATCHES_PER_WORKER = 2  # one running while the next is ready: no idle worker between batches
START_GRACE = 2.0  # seconds the other workers get to start once the first has
MAX_LOSSES = 3  # a sample whose workers die this many times fails the run (it may be the cause)
HEAD_NODE = "node:__internal_head__"  # a resource only Ray's head node has


class RayExecutor(Executor):
    """Runs a step's samples on a Ray cluster, a model instance per worker."""

    def __init__(self, address: str | None = None, workers: Annotated[int, AtLeast(1)] = 2,
                 num_cpus: Annotated[float, AtLeast(0)] = 1,
                 num_gpus: Annotated[float, AtLeast(0)] = 0,
                 batch_size: Annotated[int, AtLeast(1)] = 16,
                 worker_concurrency: Annotated[int, AtLeast(1)] | None = None,
                 start_timeout: Annotated[float, Above(0, unit="seconds")] = 120.0):
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.batch_size = batch_size
        self.worker_concurrency = worker_concurrency
        self.start_timeout = start_timeout
        self._ray = None
        self._started_ray = False
        self._actors: dict[int, object] = {}  # slot -> live actor
        self._pending: dict[int, tuple] = {}  # slot -> (actor, its ready() ref), not started yet
        self._warned_short = False
        self._start_error = ""  # why the last worker that failed to start failed
        self._gate = None

    @classmethod
    def vet_options(cls, address=None, **_):
        """Before anything is written: Ray is installed, and the address has a usable shape."""
        if importlib.util.find_spec("ray") is None:
            raise ValueError("Ray is not installed in this environment: pip install atk-executor-ray"
                             " (or: pip install 'ray[client]')")
        if address is None or address in ("auto", "local"):
            return
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ValueError(f"address {address!r} is not a Ray address: use auto, HOST:PORT"
                             " (the head node's GCS port, 6379 by default) or ray://HOST:PORT"
                             " (Ray Client, 10001 by default); leave it out to start a local instance")
        if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
            raise ValueError(f"address {address!r} needs Ray Client: pip install 'ray[client]'")

    # -- the executor ------------------------------------------------------------------------

    async def run(self, task, samples, *, on_done=None):
        samples = list(samples)
        collected = task.results(len(samples), on_done)
        finished = collected.finish

        source = iter(enumerate(samples))
        first = None
        for index, sample in source:  # nothing starts on the cluster while the store answers all
            result, answers = await task.replay(sample)
            if result is None:
                first = (index, sample, answers)
                break
            finished(index, result, answers)
        if first is None:
            return collected.values()
        self._start()
        shares = self._shares(task.spec.concurrency)
        usable = [slot for slot, share in enumerate(shares) if share > 0]
        pace = self._pace_for(task.spec)
        task_ref = self._ray.put(task.work)  # the worker side: the task itself holds the driver's model
        waiting = collections.deque()  # batches to (re)send
        exhausted = False
        losses: collections.Counter = collections.Counter()  # sample -> workers lost with it
        replacing: dict[int, asyncio.Lock] = {}
        # Small steps are spread over every worker rather than sent whole to one.
        size = max(1, min(self.batch_size, -(-len(samples) // (len(usable) * BATCHES_PER_WORKER))))

        async def next_batch():
            nonlocal first, exhausted
            if waiting:
                return waiting.popleft()
            batch = [first] if first is not None else []
            first = None
            while len(batch) < size:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                index, sample = item
                result, answers = await task.replay(sample)
                if result is not None:
                    finished(index, result, answers)
                else:
                    batch.append((index, sample, answers))
            return batch or None

        async def feed(slot, actor):
            while True:
                batch = await next_batch()
                if batch is None:
                    return
                left = await self._send(actor, task_ref, task, batch, shares[slot], pace, finished)
                if left is None:
                    continue
                # The worker is gone: the rest of its batch goes again, and a new worker
                # takes its place as soon as the cluster has room for one.
                self._lost(slot, actor)
                await self._requeue(task, left, waiting, finished, losses)
                lock = replacing.setdefault(slot, asyncio.Lock())
                async with lock:
                    actor = await self._replace(slot, lambda: waiting or not exhausted)
                if actor is None:
                    return

        while True:
            actors = await self._pool(usable)
            feeders = [feed(slot, actor) for slot, actor in actors.items()
                       for _ in range(BATCHES_PER_WORKER)]
            await all_or_first_error(feeders)
            if not waiting:
                break
        return collected.values()

    def close(self) -> None:
        if self._ray is None:
            return
        ray = self._ray
        try:  # let each worker close its backends (HTTP clients, loaded models) first
            ray.wait([actor.aclose.remote() for actor in self._actors.values()],
                     num_returns=len(self._actors), timeout=5)
        except Exception:
            pass
        pending = [actor for actor, _ in self._pending.values()]
        for actor in list(self._actors.values()) + pending + ([self._gate] if self._gate else []):
            self._kill(actor)
        self._actors.clear()
        self._pending.clear()
        self._gate = None
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._ray = None

    # -- sending a batch ---------------------------------------------------------------------

    async def _send(self, actor, task_ref, task, batch, concurrency, pace, finished):
        """Run ``batch`` on ``actor``; ``None`` when every sample came back, else the samples
        that did not (the actor or its node died)."""
        from ray import exceptions as rex

        answers = {index: known for index, _, known in batch}
        left = {index: (index, sample, known) for index, sample, known in batch}
        number = None
        finished_batch = False
        try:
            number = await actor.start.remote(task_ref, batch, concurrency, pace, task.succeeded)
            stored: list = []
            while not finished_batch:
                events, finished_batch = await actor.next.remote(number, stored)
                arrived = [event for event in events if event[0] == "answer"]
                # Stored together, in one transaction; their tickets go back with the next
                # call, and only then may the worker's slots ask again.
                await asyncio.gather(*(task.keep(new) for _, _, new in arrived))
                stored = [ticket for _, ticket, _ in arrived]
                for event in events:
                    if event[0] == "done":
                        index, result, retries = event[1]
                        left.pop(index, None)
                        finished(index, result, answers[index], retries)
        except rex.RayTaskError as exc:  # the step itself failed there: fail here alike
            cause = getattr(exc, "cause", None)
            if isinstance(cause, _LOST_ERRORS()):  # what it waited on (the rpm pacer) was lost
                return self._note_lost(cause, left, task)
            if isinstance(cause, BaseException):
                raise cause from None
            raise PipelineError(f"ray executor: a worker failed: {_one_line(exc)}") from None
        except _LOST_ERRORS() as exc:
            return self._note_lost(exc, left, task)
        finally:
            if number is not None and not finished_batch:  # cancelled, or failed: stop asking
                try:
                    actor.cancel.remote(number)
                except Exception:
                    pass
        return None if not left else list(left.values())

    @staticmethod
    def _note_lost(exc, left, task):
        log.warning("ray executor: a worker was lost (%s); %d samples of step %r go to"
                    " another", type(exc).__name__, len(left), task.name)
        return list(left.values())

    async def _requeue(self, task, items, waiting, finished, losses):
        batch = []
        for index, sample, _ in sorted(items, key=lambda item: item[0]):
            result, answers = await task.replay(sample)  # what the lost worker sent home counts
            if result is not None:
                finished(index, result, answers)
                continue
            losses[index] += 1
            if losses[index] >= MAX_LOSSES:
                raise PipelineError(
                    f"ray executor: sample {index} of step {task.name!r} was on {losses[index]}"
                    " workers that were lost; it may be what kills them (see the worker logs"
                    " under /tmp/ray/session_latest/logs on each node)")
            batch.append((index, sample, answers))
        for start in range(0, len(batch), self.batch_size):
            waiting.append(batch[start:start + self.batch_size])

    # -- the cluster ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._ray is not None:
            return
        try:
            import ray
        except ImportError:
            raise PipelineError("the ray executor needs Ray: pip install atk-executor-ray"
                                " (or: pip install ray)") from None
        if not ray.is_initialized():
            options = dict(address=self.address or "local", include_dashboard=False,
                           logging_level=logging.ERROR, log_to_driver=False)
            if self.address is None:  # a local instance with room for every worker
                needed = self.workers * self.num_cpus
                options["num_cpus"] = max(os.cpu_count() or 1, int(-(-needed // 1)))
                if self.num_gpus:
                    options["num_gpus"] = int(-(-self.workers * self.num_gpus // 1))
            for attempt in range(4):
                try:
                    ray.init(**options)
                    break
                except Exception as exc:
                    # A Ray Client server that could not start its per-client server in time (a
                    # busy head node) says "Initialization failure" or "Starting Ray client
                    # server failed"; a moment later it can.
                    if attempt < 3 and str(self.address or "").startswith("ray://") \
                            and any(sign in str(exc) for sign in _CLIENT_NOT_READY):
                        time.sleep(2.0 * (attempt + 1))
                        continue
                    where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                    reason = _one_line(exc)[:400] or type(exc).__name__
                    raise PipelineError(f"ray executor: could not start or reach {where}: {reason}") from None
            self._started_ray = True
        self._ray = ray

    async def _pool(self, usable) -> dict:
        """The live workers of the usable slots, starting those that are missing. Waits up
        to ``start_timeout`` for the first; the others join as they start (a worker the
        cluster has no room for yet stays queued in Ray, and joins at a later step)."""
        for slot in usable:
            if slot not in self._actors and slot not in self._pending:
                self._pending[slot] = self._new_worker()
        await self._adopt(0)
        if not any(slot in self._actors for slot in usable) and self._pending:
            await self._adopt(self.start_timeout, first=True)
            await self._adopt(START_GRACE)  # those that start with the first come along
        live = {slot: self._actors[slot] for slot in usable if slot in self._actors}
        if not live:
            why = (f"the last one failed: {self._start_error}" if self._start_error else
                   f"the cluster has no room for one with num_cpus={self.num_cpus:g},"
                   f" num_gpus={self.num_gpus:g} (see `ray status`)")
            raise PipelineError(f"ray executor: no worker started within {self.start_timeout:g}s;"
                                f" {why}")
        if len(live) < len(usable) and not self._warned_short:
            self._warned_short = True
            log.warning("ray executor: %d of %d workers started; going on with those (the rest"
                        " join when the cluster has room)", len(live), len(usable))
        return live

    def _new_worker(self) -> tuple:
        from .worker import worker_class

        actor = worker_class(self._ray).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=0,
            scheduling_strategy="SPREAD").remote()
        return actor, actor.ready.remote()

    async def _adopt(self, timeout: float, first: bool = False) -> None:
        """Move the pending workers that have started within ``timeout`` (``first``: until
        one has started well) to the live ones; drop those that failed to start."""
        deadline = time.monotonic() + timeout
        while self._pending:
            refs = {ready: slot for slot, (_, ready) in self._pending.items()}
            ready, _ = await asyncio.to_thread(
                self._ray.wait, list(refs), num_returns=1 if first else len(refs),
                timeout=max(0.0, deadline - time.monotonic()))
            started = [slot for slot in map(refs.get, ready) if await self._started(slot)]
            if not first or started or not ready or time.monotonic() >= deadline:
                return

    async def _started(self, slot) -> bool:
        """Whether the pending worker of ``slot``, whose ready() has returned, started well;
        it becomes live, or is dropped."""
        actor, ready = self._pending.pop(slot, (None, None))
        if actor is None:
            return False
        try:
            await ready
        except Exception as exc:
            self._start_error = _one_line(exc)[:300]
            log.warning("ray executor: a worker failed to start: %s", self._start_error)
            self._kill(actor)
            return False
        self._actors[slot] = actor
        return True

    async def _replace(self, slot, needed):
        """A new worker for ``slot`` (a lost one's), once it has started; ``None`` if it did
        not start within ``start_timeout`` or while ``needed()`` (there is work left)."""
        if slot in self._actors:  # the slot's other feeder has replaced it already
            return self._actors[slot]
        if slot not in self._pending:
            self._pending[slot] = self._new_worker()
        deadline = time.monotonic() + self.start_timeout
        while needed() and time.monotonic() < deadline:
            _, ready = self._pending[slot]
            if (await asyncio.to_thread(self._ray.wait, [ready], timeout=1.0))[0]:
                return self._actors[slot] if await self._started(slot) else None
        return None  # it stays pending, and joins at the next step if it starts

    def _lost(self, slot, actor) -> None:
        if self._actors.get(slot) is actor:
            del self._actors[slot]
        self._kill(actor)

    def _kill(self, actor) -> None:
        try:
            self._ray.kill(actor)
        except Exception:
            pass

    def _shares(self, concurrency: int) -> list[int]:
        """Each worker's cap on requests in flight for a role."""
        if self.worker_concurrency is not None:
            return [self.worker_concurrency] * self.workers
        base, extra = divmod(concurrency, self.workers)
        return [base + (1 if slot < extra else 0) for slot in range(self.workers)]

    def _pace_for(self, spec):
        """For a role with ``rpm``: the cluster-wide pacer's handle and the interval."""
        if not spec.rpm:
            return None
        if self._gate is None:
            from .worker import gate_class

            # On the head node: it lives as long as the cluster, whichever worker node goes.
            self._gate = gate_class(self._ray).options(
                num_cpus=0, resources={HEAD_NODE: 0.001}).remote()
        return (self._gate, spec.role, 60.0 / spec.rpm)


_CLIENT_NOT_READY = ("Initialization failure", "Starting Ray client server failed")
_ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")


def _LOST_ERRORS():
    """What Ray raises when a worker, its node or what it held is gone."""
    from ray import exceptions as rex

    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError",
             "NodeDiedError", "ObjectLostError", "OwnerDiedError", "ObjectFetchTimedOutError",
             "ReferenceCountingAssertionError", "LocalRayletDiedError", "RaySystemError")
    return tuple(getattr(rex, name) for name in names if hasattr(rex, name))


def _one_line(exc) -> str:
    return " ".join(str(exc).split())

