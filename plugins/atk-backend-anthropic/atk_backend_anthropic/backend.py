"""The ``anthropic`` backend: Claude through Anthropic's Messages API.

It speaks the API over HTTP itself, on the anthropic SDK's own transport
(``httpx2``; one connection pool per role and event loop), as atk's openai
backend does: the SDK's request building and response models cost more CPU
per request than the rest of the path (``bench/anthropic_transport.py`` in
atk's repository measures both). The core's retry policy is the only one.

- System messages become the request's ``system``; the rest are its turns.
- Structured answers: ``structured_output: tool`` (default) forces a tool whose
  input schema is the step's JSON schema, and the tool's input is the answer;
  ``json_schema`` asks for the API's JSON output format; ``none`` sends neither
  (the core still checks the answer).
- Prompt caching (``prompt_caching: true``, the default): breakpoints after the
  system prompt and after the passage (``caching.py``); the usage the API
  reports (cache reads and writes) is the ``Usage`` atk counts and prices.
- ``temperature`` and ``top_p`` exist only in API version ``2023-06-01`` (and
  Anthropic's range is 0 to 1); version ``2026-10-21``, the default (the SDK's),
  has no sampling parameters, and no version has ``seed``: what the API does
  not have is not sent.
- ``batch: true`` on the role: Message Batches (``batch_line``,
  ``create_batch``, ``find_batches``, ``batch_state``, ``batch_results``); the
  core collects, follows and resumes them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Annotated, Literal

from atk_core import AtLeast, BatchState, HttpBackend, NonEmpty, RequestError, Response, TransientError, Usage

from . import caching

DEFAULT_BASE_URL = "https://api.anthropic.com"
SAMPLING_VERSION = "2023-06-01"  # the API version that still takes temperature and top_p
# What an error type means when a batch's request fails with it (a direct request has its
# HTTP status).
STATUS_OF = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
             "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
             "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length"}
TOOL = "answer"  # the tool whose input is the answer
WRAPPED = "answer_value"  # the same, for a schema that is not an object: the answer is its "value"
# A batch made this long before the first try to create it (clocks differ) may still be it.
CLOCK_SLACK = 120.0


class AnthropicBackend(HttpBackend):
    """Claude through the Messages API, with prompt caching and Message Batches."""

    name = "anthropic"
    modes = ("chat",)
    model_is_a_name = True  # sent to the API; never opened here

    def __init__(self, model: Annotated[str, NonEmpty], api_key: str | None = None,
                 base_url: str | None = None, max_tokens: Annotated[int, AtLeast(1)] = 4096,
                 structured_output: Literal["tool", "json_schema", "none"] = "tool",
                 prompt_caching: bool = True, cache_ttl: Literal["5m", "1h"] = "5m",
                 cache_min_tokens: Annotated[int, AtLeast(0)] | None = None,
                 api_version: Literal["2026-10-21", "2023-06-01"] = "2026-10-21",
                 headers: dict | None = None):
        # Options are checked against these annotations before a run starts
        # (Backend.vet_options); one made in code is checked here too.
        self.vet_options(model=model, api_key=api_key, base_url=base_url, max_tokens=max_tokens,
                         structured_output=structured_output, prompt_caching=prompt_caching,
                         cache_ttl=cache_ttl, cache_min_tokens=cache_min_tokens,
                         api_version=api_version, headers=headers)
        api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise ValueError("no API key: set api_key (say ${ANTHROPIC_API_KEY}) or ANTHROPIC_API_KEY")
        super().__init__(model=model, base_url=base_url)
        self.model = model
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.max_tokens = max_tokens
        self.structured_output = structured_output
        self.api_version = api_version
        self._control = ({"type": "ephemeral", **({"ttl": cache_ttl} if cache_ttl != "5m" else {})}
                         if prompt_caching else None)
        self.http_headers = {"x-api-key": api_key, "anthropic-version": api_version,
                             "content-type": "application/json", "accept": "application/json",
                             **dict(headers or {})}

    def identity(self):
        return {"backend": self.name, "model": self.model, "endpoint": self.base_url}

    @classmethod
    def cache_prefixes(cls, messages, **options) -> list:
        """The system prompt, and the system prompt with the passage: what this backend marks
        for caching (nothing with ``prompt_caching: false``), with the model's minimum."""
        if not options.get("prompt_caching", True):
            return []
        least = options.get("cache_min_tokens")
        least = caching.min_tokens(str(options.get("model") or "")) if least is None else least
        return [(prefix, least) for prefix in caching.prefixes(messages)]

    # -- a request -----------------------------------------------------------------------------

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling):
        params = self._params(messages, json_schema, sampling, extra)
        return self._response(await self._call("POST", "v1/messages", body=params))

    def _params(self, messages, json_schema, sampling, extra) -> dict:
        system, turns = caching.split(messages)
        system, turns = caching.mark(system, turns, self._control)
        params = {"model": self.model, "max_tokens": sampling.get("max_tokens") or self.max_tokens,
                  "messages": turns}
        if system:
            params["system"] = system
        if sampling.get("stop"):
            params["stop_sequences"] = list(sampling["stop"])
        if self.api_version == SAMPLING_VERSION:
            if sampling.get("temperature") is not None:
                params["temperature"] = min(1.0, max(0.0, float(sampling["temperature"])))
            if sampling.get("top_p") is not None:
                params["top_p"] = sampling["top_p"]
        if json_schema is not None:
            if self.structured_output == "tool":
                wrapped = json_schema.get("type") != "object"
                name = WRAPPED if wrapped else TOOL
                params["tools"] = [{"name": name, "description": "Give your answer as this tool's input.",
                                    "input_schema": {"type": "object", "properties": {"value": json_schema},
                                                     "required": ["value"]} if wrapped else json_schema}]
                params["tool_choice"] = {"type": "tool", "name": name}
            elif self.structured_output == "json_schema":
                params["output_config"] = {"format": {"type": "json_schema", "schema": json_schema}}
        if extra:
            params.update(extra)  # what a pipeline passes the API as it is
        return params

    def _response(self, message) -> Response:
        try:
            blocks = message["content"]
            tool = next((b for b in blocks if b.get("type") == "tool_use"), None)
            stop = message.get("stop_reason")
            finish = FINISH.get(stop, stop)
            if tool is not None and finish == "length":
                text = ""  # the tool's input was cut off: what came is not the answer
            elif tool is not None:
                value = tool.get("input")
                if tool.get("name") == WRAPPED and isinstance(value, dict) and "value" in value:
                    value = value["value"]
                text = json.dumps(value, ensure_ascii=False)
            else:
                text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
            return Response(text=text, finish_reason=finish, usage=_usage(message))
        except (KeyError, TypeError, AttributeError):
            raise TransientError(f"{self.base_url} sent a message without an answer") from None

    # -- Message Batches ------------------------------------------------------------------------

    def batch_line(self, request) -> dict:
        """A batch's request for ``request`` (a core ``Request``), less its ``custom_id``."""
        if request.mode != "chat":
            raise RequestError("the Messages API takes chat requests only")
        return {"params": self._params([dict(m) for m in request.messages], request.json_schema,
                                       request.sampling(), request.extra)}

    async def create_batch(self, lines: list[dict], digest: str) -> str:
        """Create a batch of ``lines``; its id. (A batch keeps no metadata: ``digest`` has
        nowhere to go, and ``find_batches`` looks by time and size instead.)"""
        batch = await self._call("POST", "v1/messages/batches", body={
            "requests": [{"custom_id": line["custom_id"], "params": line["params"]} for line in lines]})
        return str(batch["id"])

    async def find_batches(self, digest: str, size: int, since: float | None) -> list[str]:
        """The batches that may be the one whose creation this process tried and never heard
        of: made since its first try, of ``size`` requests. Anthropic shows a batch's requests
        only in its results, so the core finds out when it ends (none of its answers is for
        these requests: they go again). Without a try in this process, none."""
        if since is None:
            return []
        listed = await self._call("GET", "v1/messages/batches?limit=100")
        found = []
        for batch in listed.get("data") or [] if isinstance(listed, dict) else []:
            if not isinstance(batch, dict) or batch.get("archived_at"):
                continue
            counts = batch.get("request_counts") or {}
            made = _seconds(batch.get("created_at"))
            if made is not None and made >= since - CLOCK_SLACK and sum(
                    v for v in counts.values() if isinstance(v, int)) == size:
                found.append(str(batch["id"]))
        return found

    async def batch_state(self, batch_id: str) -> BatchState:
        """The batch as the core follows it. A batch the API does not know (any more) is a
        ``RequestError``."""
        batch = await self._call("GET", f"v1/messages/batches/{batch_id}", missing=RequestError(
            f"{self.base_url} does not know batch {batch_id} (HTTP 404)"))
        counts = {k: v for k, v in (batch.get("request_counts") or {}).items() if isinstance(v, int)}
        status = str(batch.get("processing_status"))
        return BatchState(batch_id, status, status == "ended", done=sum(counts.values()) - counts.get("processing", 0),
                          total=sum(counts.values()), details=batch)

    async def batch_results(self, state: BatchState) -> dict:
        """``custom_id`` -> a ``Response``, or the error its request came back with, typed as
        the same request sent directly would fail (an expired or canceled one, never tried,
        is a ``TransientError``: the core asks it again). The results are read from this
        backend's own ``base_url``, where the key goes, not from the batch's ``results_url``."""
        content = await self._call("GET", f"v1/messages/batches/{state.id}/results", raw=True,
                                   missing=RequestError(f"{self.base_url} has no results for batch"
                                                        f" {state.id} (HTTP 404)"))
        results: dict = {}
        for text in content.decode("utf-8").splitlines():
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                results[str(line["custom_id"])] = self._batch_answer(line["result"])
            except (ValueError, KeyError, TypeError):
                continue  # a line we cannot read is a request without an answer
        return results

    def _batch_answer(self, result):
        kind = result.get("type")
        if kind == "succeeded":
            try:
                return self._response(result["message"])
            except TransientError as exc:
                return exc
        if kind == "errored":
            error = (result.get("error") or {}).get("error") or {}
            status = STATUS_OF.get(error.get("type"), 500)
            # In the words the same request sent directly would fail with.
            return self._error(status, f"HTTP {status}: {self._reason(error)}")
        return TransientError(f"the request was {kind or 'not answered'} in its batch")

    # -- HTTP (the rest is the core's HttpBackend) --------------------------------------------

    def _reason(self, error: dict) -> str:
        """``overloaded_error: the API's own reason``."""
        return f"{error.get('type') or 'error'}: {error.get('message') or ''}"


def _usage(message) -> Usage:
    usage = message.get("usage") if isinstance(message, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    read = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Usage(prompt_tokens=(usage.get("input_tokens") or 0) + read + written,
                 completion_tokens=usage.get("output_tokens") or 0,
                 cache_read_tokens=read, cache_write_tokens=written)


def _seconds(moment) -> float | None:
    try:
        return datetime.fromisoformat(str(moment).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
