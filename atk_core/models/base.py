"""The model backend API: what a backend receives, returns and raises.

A backend turns one request into one response. It does not retry, limit
concurrency or cache: the core does all three, the same way for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AtkError, PipelineError

SAMPLING_PARAMETERS = ("temperature", "top_p", "max_tokens", "stop", "seed")


class BackendError(AtkError):
    """Base of the errors a backend raises."""


class RateLimited(BackendError):
    """The server asked us to slow down; ``retry_after`` seconds if it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(BackendError):
    """Worth retrying: a 5xx, a dropped connection, a timeout."""


class RequestError(BackendError):
    """This request cannot succeed (too long for the context, refused): the sample fails."""


class FatalError(BackendError, PipelineError):
    """No request can succeed (bad key, unknown model, unreachable host): the run stops."""


@dataclass(frozen=True)
class Request:
    """One call to a model: chat ``messages`` or a completion ``prompt``."""

    messages: tuple | None = None
    prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple | None = None
    seed: int | None = None
    json_schema: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "chat" if self.messages is not None else "completion"

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters that were set, for the backend call."""
        values = {name: getattr(self, name) for name in SAMPLING_PARAMETERS}
        values = {k: v for k, v in values.items() if v is not None}
        if "stop" in values:
            values["stop"] = list(values["stop"])
        return values

    def to_dict(self) -> dict[str, Any]:
        """A canonical form: the same request always gives the same dict."""
        return {
            "mode": self.mode,
            "messages": [dict(m) for m in self.messages] if self.messages is not None else None,
            "prompt": self.prompt,
            **{name: getattr(self, name) if name != "stop" or self.stop is None else list(self.stop)
               for name in SAMPLING_PARAMETERS},
            "json_schema": self.json_schema,
            "extra": dict(sorted(self.extra.items())),
        }


@dataclass
class Usage:
    """Tokens a request cost. ``prompt_tokens`` counts the whole prompt; of those, a provider
    with prompt caching read ``cache_read_tokens`` from its cache and wrote
    ``cache_write_tokens`` into it (each priced apart: ``price_cache_read``,
    ``price_cache_write``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def of(cls, answer) -> "Usage":
        """The usage of a stored answer (or anything with the same token fields)."""
        return cls(answer.prompt_tokens, answer.completion_tokens,
                   getattr(answer, "cache_read_tokens", 0), getattr(answer, "cache_write_tokens", 0))

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens

    def to_dict(self) -> dict[str, int]:
        """Prompt and completion tokens, and the cached ones when there were any."""
        counts = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        if self.cache_read_tokens or self.cache_write_tokens:
            counts.update(cache_read_tokens=self.cache_read_tokens, cache_write_tokens=self.cache_write_tokens)
        return counts


@dataclass
class Response:
    """What a model said. ``parsed`` holds the object when a JSON schema was asked for."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    parsed: Any = None
    parse_error: str | None = None  # why a structured answer did not parse or fit its schema
    cached: bool = False


@dataclass
class BatchState:
    """A provider's batch, as the core follows it: ``status`` in the provider's words (shown
    on the progress line), whether it has ``ended`` (nothing more will be answered), how many
    of its ``total`` requests are ``done`` so far, the provider's ``reason`` when the whole
    batch failed, and its own object (``details``) for ``batch_results``."""

    id: str
    status: str
    ended: bool
    done: int = 0
    total: int | None = None
    reason: str = ""
    details: dict = field(default_factory=dict)


def has_batch_api(backend_class) -> bool:
    """Whether a backend class has the five methods of a Batch API (see ``models.batches``)."""
    return all(callable(getattr(backend_class, name, None))
               for name in ("batch_line", "create_batch", "find_batches", "batch_state", "batch_results"))


def stored_answer(response: Response):
    """What the run's store keeps of a response (a ``StoredAnswer``)."""
    from ..engine.store import StoredAnswer

    usage = response.usage
    return StoredAnswer(response.text, response.finish_reason, usage.prompt_tokens, usage.completion_tokens,
                        usage.cache_read_tokens, usage.cache_write_tokens)


class Backend:
    """Base class for model backends: subclass it and implement ``chat`` and/or ``complete``.

    ``__init__`` receives the role's options from the config (everything under
    ``models.<role>`` except the core's own keys). ``modes`` says which of
    chat and completion the backend serves. Both methods take the sampling
    parameters as keywords (``temperature``, ``top_p``, ``max_tokens``,
    ``stop``, ``seed``), ``json_schema`` for structured output and ``extra``
    for server-specific parameters; accept ``**kwargs`` so that parameters
    added later do not break the backend.
    """

    name = "backend"
    modes: tuple[str, ...] = ("chat", "completion")
    # True when ``model`` is only a name sent to a server, never a file this process opens:
    # ``atk serve`` then lets a config name a model that looks like a path that is not there.
    model_is_a_name: bool = False

    def __init__(self, **options):
        self.options = options

    @classmethod
    def vet_options(cls, **options) -> None:
        """Vet a role's options without starting anything; raise ``ValueError`` naming a bad one.

        atk calls it when it checks a config, before a run writes anything (and
        for ``atk serve``'s editor), so a typo is refused before a model loads.
        By default it reads ``__init__``'s signature: an option it does not
        name is refused (unless it takes ``**kwargs``), and each value is
        checked against its parameter's annotation (``n_ctx: Annotated[int,
        AtLeast(16)]``; see ``atk_core.toolkit.constraints``). Override it to check more
        (a file exists, a library is installed), calling the default first.
        """
        from ..toolkit.constraints import enforce_constraints

        enforce_constraints(cls, options, refuse_unknown=True, owner=f"the {cls.name} backend",
                        up_to=Backend)

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling) -> Response:
        raise RequestError(f"backend {self.name!r} does not support chat requests")

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling) -> Response:
        raise RequestError(f"backend {self.name!r} does not support completion requests")

    @classmethod
    def cache_prefixes(cls, messages, **options) -> list:
        """The prefixes of a chat request (``messages``) this backend asks its provider to
        cache, shortest first, for the role's ``options``: each ``(messages, min_tokens)``,
        the messages it spans (the last one perhaps cut short) and the fewest tokens it must
        have for the provider to cache it. ``atk run --estimate`` counts a prefix seen before
        in the role at ``price_cache_read``, a new one at ``price_cache_write``. None by
        default: a backend without prompt caching, or one whose provider caches on its own
        terms, says nothing it cannot promise."""
        return []

    def identity(self) -> dict[str, Any]:
        """Backend, model and endpoint — never a key. It goes into cache keys."""
        return {"backend": self.name, "model": self.options.get("model"), "endpoint": None}

    async def aclose(self) -> None:
        """Release connections or memory; called once when the run ends."""


async def send(backend, request: Request) -> Response:
    """Hand one request to a backend through its public methods."""
    arguments = dict(request.sampling(), json_schema=request.json_schema, extra=dict(request.extra))
    if request.mode == "chat":
        return await backend.chat([dict(m) for m in request.messages], **arguments)
    return await backend.complete(request.prompt, **arguments)
