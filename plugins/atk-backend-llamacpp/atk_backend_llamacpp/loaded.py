"""Loaded models: one per GGUF file and loading options, per process, loaded on first use.

Every role (and every backend instance) that names the same file with the
same loading options shares one loaded model; it stays loaded after a run,
for the next run in the same process, until ``unload_models()``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable

from atk_core import FatalError

from .deterministic import llama_class
from .seats import fair_threads
from .worker import Cancelled, call_in_llama_thread, llama_thread


class SharedModel:
    """One llama.cpp model, loaded on first use, served by the llama.cpp thread."""

    def __init__(self, path: Path, options: dict, share_cpus: int | None = None):
        self.path = path
        self.options = options
        # Threads fitted before each request to this process's share of these CPUs (see
        # seats.py); None: the options' n_threads, always.
        self.share_cpus = share_cpus
        self.threads = options.get("n_threads")
        self.llama = None
        self.loads = 0  # how many times it was loaded (tests check: once)
        self.lock = threading.Lock()
        self._error: str | None = None
        # Until a request shows that llama-cpp-python generates through our
        # _prefill (it always has in 0.3.x), each request starts from a clean context.
        self._prefill_seen = False

    async def submit(self, work: Callable):
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        try:
            return await loop.run_in_executor(llama_thread(), self._serve, work, cancel)
        except asyncio.CancelledError:
            # A timeout or Ctrl-C: a queued request never starts, a running one
            # stops at its next token, so the thread is free for the next request.
            cancel.set()
            raise

    def _serve(self, work: Callable, cancel: threading.Event):
        if cancel.is_set():
            raise Cancelled()
        with self.lock:
            llama = self._load()
            if self.share_cpus:
                self._fit_threads(llama)
            if not self._prefill_seen:
                llama.reset()
                llama.atk_canonical = ()
            llama.atk_prefills = 0
            llama.atk_cancel = cancel
            try:
                return work(llama)
            finally:
                llama.atk_cancel = None
                if llama.atk_prefills:
                    self._prefill_seen = True

    def _fit_threads(self, llama) -> None:
        threads = fair_threads(self.share_cpus)
        if threads != self.threads:
            llama._ctx.set_n_threads(threads, threads)
            self.threads = threads

    def _load(self):
        if self.llama is not None:
            return self.llama
        if self._error is not None:
            raise FatalError(self._error)
        try:
            self.llama = llama_class()(model_path=str(self.path), verbose=False, **self.options)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self._error = f"llama.cpp could not load {self.path}: {first}"
            raise FatalError(self._error) from None
        self.loads += 1
        return self.llama

    def close(self):
        with self.lock:
            if self.llama is not None:
                self.llama.close()
                self.llama = None


_MODELS: dict[tuple, SharedModel] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(path: Path, options: dict, share_cpus: int | None = None) -> SharedModel:
    key = (str(path.resolve()), share_cpus, *sorted(options.items()))
    with _MODELS_LOCK:
        shared = _MODELS.get(key)
        if shared is None:
            shared = _MODELS[key] = SharedModel(path, options, share_cpus)
        return shared


def loaded_models() -> list[SharedModel]:
    """The models this process has set up (loaded or still to load on first use)."""
    with _MODELS_LOCK:
        return list(_MODELS.values())


def unload_models() -> None:
    """Free every loaded model; backends made afterwards load theirs again."""
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for shared in models:
        call_in_llama_thread(shared.close)
