"""Executors: where a step's samples run.

A ``PipelineStep`` does not loop over its samples itself: it hands them, as a
``StepTask``, to the run's executor. The built-in ``local`` executor runs them
in this process, a fixed number in flight (``stream``). Other executors are
plugins (``atk_register_executors``); ``atk-executor-ray`` runs them on a Ray
cluster.

Whatever the executor, the run's store stays the one source of truth: every
answer is stored on the driver under the key a local run would use. An
executor that sends samples elsewhere first ``replay``\\ s each one on the
driver against the store (a sample whose every answer is stored finishes
there, sending nothing), ships the answers it found with the sample and the
task's worker side (``StepTask.work``, a ``WorkerTask``), and
hands each new answer a worker reports to ``StepTask.keep``, which stores it
at once. So the outputs do not depend on the executor, a re-run sends
nothing, and a lost worker's samples are simply asked again.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from ..hookspecs import hookimpl
from ..models.base import Response, Usage
from ..models.model import Model, with_parsed, canonical_request, request_key
from .store import StoredAnswer

DEFAULT_EXECUTOR = "local"


@hookimpl
def atk_register_executors(register):
    register(DEFAULT_EXECUTOR, LocalExecutor)


class Executor:
    """Base of executors: ``__init__(**options)`` takes the config's options (checked
    against its signature before a run starts, like a reporter's), ``async run(task,
    samples, *, on_done)`` returns one result per sample in input order and calls
    ``on_done(count)`` as samples finish, and ``close()`` releases what it started (called
    once, at the end of the run). ``__init__`` should start nothing: a run may be refused
    after it. An optional classmethod ``vet_options(**options)`` looks at the values
    before anything is written (raise ``ConfigError`` or ``ValueError``), as a backend's
    does."""

    def __init__(self, **options):
        if options:
            raise TypeError(f"unexpected options: {', '.join(sorted(options))}")

    async def run(self, task: "StepTask", samples: list, *, on_done: Callable[[int], Any] | None = None):
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalExecutor(Executor):
    """Runs a step's samples in this process, twice the role's concurrency in flight."""

    def __init__(self):  # no options
        pass

    async def run(self, task, samples, *, on_done=None):
        return await stream(samples, task.run, limit=task.spec.concurrency * 2, on_done=on_done)


@dataclass
class NewAnswer:
    """An answer a worker got from its model, on its way to the driver's store."""

    key: str
    request: str  # the canonical request text the key hashes
    answer: StoredAnswer
    tag: str
    retries: int = 0  # retries the worker's model made since its last report


@dataclass
class WorkerTask:
    """The worker's side of a step's work: what running its samples needs, without the
    driver's model, store or locks, so it pickles (with cloudpickle, as Ray does). A remote
    executor ships ``StepTask.work``; a worker builds its role's model with
    ``worker_model`` and runs batches with ``run_batch``."""

    step: Any  # PipelineStep
    prompt: Any  # Prompt
    note: str
    own: str | None
    spec: Any  # ModelSpec of the role
    identity: dict  # the backend identity store keys are made with (the driver's)

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def name(self) -> str:
        return self.step.name

    async def run(self, sample, model):
        """One sample's ``StepResult``, asking ``model``."""
        return await self.step._one(sample, model, self.prompt, note=self.note, own=self.own)

    def worker_model(self, backend, *, concurrency: int | None = None, pace=None) -> Model:
        """A model for this task's role on a worker: ``backend`` built from ``spec``, at most
        ``concurrency`` requests in flight (default: the role's), and ``pace`` (an async
        function returning seconds to wait) standing in for the role's ``rpm`` when the
        limit is shared with other workers. Its store holds the answers ``run_batch`` is
        given and reports new ones; build one per role and worker and reuse it for every
        batch, so that its limits hold across them."""
        spec = self.spec if concurrency is None else dataclasses.replace(self.spec, concurrency=concurrency)
        model = Model(spec, backend)
        model.fix_identity(self.identity)  # keys as on the driver, whatever the worker says
        model.store = _WorkerAnswers()
        model.pace = pace
        return model

    async def run_batch(self, model: Model, items, emit, *, limit: int | None = None,
                        succeeded: bool = False) -> None:
        """Run ``items`` (``(index, sample, answers)``, answers from ``StepTask.replay``) with
        ``model`` (from ``worker_model``), ``limit`` in flight (default twice the model's
        concurrency); ``await emit(event)`` for each new answer (a ``NewAnswer``) as it
        arrives and for each finished sample (``(index, StepResult, retries)``). Make ``emit``
        return once the driver has stored the answer: the request's slot is held until then,
        so a driver that dies stops its workers asking. ``succeeded`` is the driver's
        ``StepTask.succeeded``."""
        if succeeded:
            model.assume_succeeded()
        known = {}
        for _, _, answers in items:
            known.update(answers)
        token = _sink.set(_Sink(emit, model, known))
        try:
            async def one(item):
                index, sample, _ = item
                result = await self.run(sample, model)
                await emit((index, result, model.unreported_retries()))

            await stream(list(items), one, limit=limit or model.spec.concurrency * 2)
        finally:
            _sink.reset(token)


class StepTask:
    """One step's work, as an executor sees it on the driver: ``run(sample)`` makes one
    sample's ``StepResult`` in this process with the driver's model. An executor that runs
    samples elsewhere ships ``work`` (a ``WorkerTask``) to its workers, and on the driver
    uses ``replay``, ``keep`` and ``results`` so that every answer is stored here. A
    ``StepTask`` itself does not travel: it holds the driver's model, store and locks."""

    def __init__(self, step, prompt, note: str, own: str | None, model: Model):
        self.model = model
        self.work = WorkerTask(step, prompt, note, own, model.spec, dict(model.identity()))
        self._kept: set = set()  # keys of the answers ``keep`` stored (and counted as sent)

    def __reduce__(self):
        raise TypeError("a StepTask holds the driver's model and does not travel: send its"
                        " .work (a WorkerTask) to workers")

    @property
    def step(self):
        """The ``PipelineStep`` (or ``VoteStep``) whose samples these are."""
        return self.work.step

    @property
    def spec(self):
        return self.work.spec

    @property
    def role(self) -> str:
        return self.work.role

    @property
    def name(self) -> str:
        return self.work.name

    @property
    def succeeded(self) -> bool:
        """Whether a request of this role has succeeded in this run: pass it to ``run_batch``
        so that a worker's first request that runs out of retries skips its sample, as it
        would locally, rather than ending the run."""
        return self.model.has_succeeded

    async def run(self, sample):
        """One sample's result, asking the driver's model."""
        return await self.work.run(sample, self.model)

    async def replay(self, sample) -> tuple[Any, dict]:
        """Run ``sample`` against the driver's store only: ``(result, answers)`` when every
        answer it needs is stored, else ``(None, answers)`` with the answers found before
        the first missing one (send them with the sample: the worker then asks only what
        is missing). Sends nothing."""
        replay = _Replay(self.model.spec, self.model.backend, self.work.identity, self.model.store)
        try:
            result = await self.work.run(sample, replay)
        except _Missing:
            return None, replay.found
        return result, replay.found

    def results(self, count: int, on_done=None) -> "StepResults":
        """Where an executor gathers the results of the step's ``count`` samples: call its
        ``finish`` as each sample finishes, and return its ``values()`` at the end."""
        return StepResults(self, count, on_done)

    def count_stored(self, answers: dict) -> None:
        """Count ``answers`` (from ``replay``) as taken from the store, on the driver's model,
        once the sample they belong to has finished."""
        for key, answer in answers.items():
            if key in self._kept:  # a lost worker's answer, replayed: counted as sent already
                continue
            self.model.count_stored(answer)

    async def keep(self, new: NewAnswer) -> None:
        """Store an answer a worker reports, committed before this returns, and count it on
        the driver's model as sent (with its usage and the worker's retries)."""
        self.model.count_sent(new.answer, new.retries)  # the role works: a later give-up skips a sample
        self._kept.add(new.key)
        if self.model.store is not None:
            await self.model.store.put_soon(new.key, new.request, new.answer, new.tag)


# -- helpers of the above -----------------------------------------------------------------------


class _Missing(Exception):
    """A replayed sample needs an answer the store does not have."""


class _Replay(Model):
    """A model that answers from the store only, noting what it found."""

    def __init__(self, spec, backend, identity, store):
        super().__init__(spec, backend)
        self.fix_identity(identity)
        self.store = store
        self.found: dict = {}

    async def request(self, request, *, tag: str = "") -> Response:
        key = request_key(canonical_request(request, self.identity(), tag))
        stored = self.found.get(key) or (self.store.get(key) if self.store is not None else None)
        if stored is None:
            raise _Missing(key)
        self.found[key] = stored
        return with_parsed(Response(text=stored.text, finish_reason=stored.finish_reason,
                                 usage=Usage.of(stored),
                                 cached=True), request)


@dataclass
class _Sink:
    """Where a batch's new answers go, and the answers it was given."""

    emit: Callable
    model: Model
    known: dict


_sink: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar("atk_worker_sink", default=None)


class StepResults:
    """A step's results as an executor gathers them, in input order."""

    def __init__(self, task: StepTask, count: int, on_done=None):
        self.task, self.on_done = task, on_done
        self._values: list = [None] * count
        self.done = 0

    def finish(self, index: int, result, answers: dict, retries: int = 0) -> None:
        """Sample ``index`` finished with ``result``: count the stored ``answers`` it used
        (from ``replay``) and the ``retries`` a worker made for it, and report progress."""
        self.task.model.retries += retries
        self._values[index] = result
        self.task.count_stored(answers)
        self.done += 1
        if self.on_done is not None:
            self.on_done(self.done)

    def values(self) -> list:
        """Every sample's result; a sample that never finished is an executor's bug, said in
        one line rather than returned as a hole."""
        missing = sum(1 for value in self._values if value is None)
        if missing:
            from ..errors import PipelineError

            raise PipelineError(f"{missing} samples of step {self.task.name!r} came back from the"
                                " executor without a result")
        return self._values


class _WorkerAnswers:
    """A worker model's store: the answers of the batch that asks (found through the
    running task's context, as several batches share the model), and the way home for new
    ones."""

    def get(self, key):
        sink = _sink.get()
        return sink.known.get(key) if sink is not None else None

    async def put_soon(self, key, request_text, answer, tag=""):
        sink = _sink.get()
        if sink is None:  # an answer we paid for must not vanish
            raise RuntimeError("a worker model answered outside WorkerTask.run_batch")
        sink.known[key] = answer
        await sink.emit(NewAnswer(key, request_text, answer, tag, sink.model.unreported_retries()))


async def stream(items, work, *, limit: int, on_done=None):
    """Apply async ``work`` to every item with at most ``limit`` in flight; keep input order.

    A fixed set of workers pulls from one iterator, so a new item starts the
    moment one finishes and memory stays flat however many items there are.
    The first exception cancels the rest and is raised.
    """
    results: list = [None] * len(items)
    source = iter(enumerate(items))
    done = 0
    failed = False

    async def worker():
        nonlocal done, failed
        for index, item in source:
            if failed:  # another worker failed: take no new work
                return
            try:
                results[index] = await work(item)
            except BaseException:
                failed = True
                raise
            done += 1
            if on_done is not None:
                on_done(done)

    await all_or_first_error(worker() for _ in range(min(max(1, limit), len(items))))
    return results


async def all_or_first_error(coroutines) -> None:
    """Run ``coroutines`` together until every one has finished, or one raises: then the
    others are cancelled (and waited for) and its exception is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            if task.exception() is not None:
                raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
