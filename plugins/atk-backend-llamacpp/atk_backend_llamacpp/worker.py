"""The one thread that calls llama.cpp in a process.

Requests run in one worker thread, the same for every model in the process:
the event loop never waits on llama.cpp, and requests are served one at a
time (a llama.cpp context is not thread-safe). One thread, not one per
model: llama.cpp's OpenMP threads belong to the thread that calls it, and two
calling threads make two teams of busy-waiting threads that slow each other
down (measured: from ~100 to ~37 tokens/s on two cores). Code that calls
llama.cpp itself in the same process uses ``call_in_llama_thread``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


class Cancelled(Exception):
    """The request was given up (timeout, Ctrl-C) before it finished; nobody reads this."""


_WORKER: ThreadPoolExecutor | None = None
_WORKER_IDENT: int | None = None
_WORKER_LOCK = threading.Lock()


def llama_thread() -> ThreadPoolExecutor:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            # Requests queue here, not in the event loop's default executor.
            _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atk-llamacpp",
                                         initializer=_remember_worker)
        return _WORKER


def _remember_worker():
    global _WORKER_IDENT
    _WORKER_IDENT = threading.get_ident()


def call_in_llama_thread(function: Callable, *args, **kwargs):
    """Run ``function(*args, **kwargs)`` in the thread the backend calls llama.cpp from; its result.

    For code that uses llama-cpp-python directly in a process where this
    backend runs (a benchmark, a tokenizer count): calling llama.cpp from a
    second thread would slow both down. Blocks until done; do not call it from
    inside an event loop's thread while generation is expected to go on.
    """
    if threading.get_ident() == _WORKER_IDENT:
        return function(*args, **kwargs)
    return llama_thread().submit(function, *args, **kwargs).result()
