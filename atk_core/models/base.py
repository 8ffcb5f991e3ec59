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
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass
class Response:
    """What a model said. ``parsed`` holds the object when a JSON schema was asked for."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    parsed: Any = None
    parse_error: str | None = None  # why a structured answer did not parse or fit its schema
    cached: bool = False


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
