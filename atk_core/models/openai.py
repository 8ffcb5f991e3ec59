"""The built-in ``openai`` backend: any OpenAI-compatible server.

Works with OpenAI itself and with local servers (llama.cpp, vLLM, Ollama...)
through ``base_url``. The SDK's own retries are off: the core's policy is the
only one. Servers differ in how they take structured output, so the style is
an option, not a guess:

- ``structured_output: json_schema`` (default) — OpenAI's
  ``{"type": "json_schema", "json_schema": {...}}``;
- ``json_object`` — ``{"type": "json_object", "schema": {...}}``, what the
  llama.cpp server understands;
- ``none`` — send no response_format; the core still checks the answer
  against the schema.
"""

from __future__ import annotations

import os
from typing import Literal

from ..hookspecs import hookimpl
from .base import Backend, FatalError, RateLimited, RequestError, Response, TransientError, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers take any key; the SDK insists on having one.
NO_KEY = "no-key-needed"


@hookimpl
def atk_register_model_backends(register):
    register("openai", OpenAIBackend)


class OpenAIBackend(Backend):
    """Any OpenAI-compatible server (OpenAI, llama.cpp server, vLLM...) via base_url."""

    name = "openai"

    def __init__(self, model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None,
                 structured_output: Literal["json_schema", "json_object", "none"] = "json_schema",
                 headers: dict | None = None):
        # Options are checked against these annotations before a run starts
        # (Backend.check_options); one made in code is checked here too.
        self.check_options(model=model, base_url=base_url, api_key=api_key,
                           structured_output=structured_output, headers=headers)
        super().__init__(model=model, base_url=base_url)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or "default"
        self.structured_output = structured_output
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or NO_KEY
        self._headers = dict(headers or {})
        self._client = None

    def identity(self):
        return {"backend": self.name, "model": self.model, "endpoint": self.base_url}

    def _get_client(self):
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._api_key, base_url=self.base_url, max_retries=0,
                default_headers=self._headers or None,
                timeout=None,  # the core's per-request timeout applies
            )
        return self._client

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling):
        arguments = self._arguments(sampling, extra)
        if json_schema is not None:
            response_format = self._response_format(json_schema)
            if response_format is not None:
                arguments["response_format"] = response_format
        completion = await self._call(
            self._get_client().chat.completions.create, messages=messages, **arguments
        )
        return self._response(completion, lambda choice: choice.message.content)

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling):
        arguments = self._arguments(sampling, extra)
        if json_schema is not None and self.structured_output == "json_object":
            arguments["extra_body"] = dict(arguments.get("extra_body") or {},
                                           response_format=self._response_format(json_schema))
        completion = await self._call(
            self._get_client().completions.create, prompt=prompt, **arguments
        )
        return self._response(completion, lambda choice: choice.text)

    def _response(self, completion, text_of) -> Response:
        try:
            choice = completion.choices[0]
            text = text_of(choice)
            return Response(text=text or "", finish_reason=choice.finish_reason,
                            usage=_usage(completion))
        except (AttributeError, IndexError, TypeError):
            raise TransientError(f"{self.base_url} sent a response without an answer") from None

    def _arguments(self, sampling, extra):
        arguments = {"model": self.model, **{k: v for k, v in sampling.items() if v is not None}}
        if extra:
            arguments["extra_body"] = dict(extra)
        return arguments

    def _response_format(self, schema):
        if self.structured_output == "json_schema":
            return {"type": "json_schema",
                    "json_schema": {"name": "answer", "schema": schema, "strict": False}}
        if self.structured_output == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    async def _call(self, method, **arguments):
        import openai

        try:
            return await method(**arguments)
        except openai.RateLimitError as exc:
            raise RateLimited(_describe(exc), _retry_after(exc)) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise FatalError(f"{self.base_url}: {_describe(exc)}") from None
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            raise RequestError(_describe(exc)) from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise TransientError(_describe(exc)) from None
            raise RequestError(_describe(exc)) from None
        except openai.APITimeoutError:
            raise TransientError(f"{self.base_url}: the request timed out") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise TransientError(f"cannot reach {self.base_url}: {cause}") from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            # A body that is not the JSON the API promises: a broken or overloaded server.
            raise TransientError(f"{self.base_url} sent a malformed response: {exc}") from None

    async def aclose(self):
        if self._client is not None:
            await self._client.close()
            self._client = None


def _usage(completion) -> Usage:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(exc) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else str(error)
    message = message or getattr(exc, "message", None) or str(exc)
    message = " ".join(str(message).split())[:300]
    return f"HTTP {status}: {message}" if status else message
