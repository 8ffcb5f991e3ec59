"""The built-in ``openai`` backend: any OpenAI-compatible server.

Works with OpenAI itself and with local servers (llama.cpp, vLLM, Ollama...)
through ``base_url``. It speaks the API over HTTP itself (``httpx``, one
connection pool per role): the openai SDK's response models cost more CPU per
request than all the rest of atk's request path, which caps a run against a
fast server. The core's retry policy is the only one. Servers differ in how they take structured output, so the style is
an option, not a guess:

- ``structured_output: json_schema`` (default) — OpenAI's
  ``{"type": "json_schema", "json_schema": {...}}``;
- ``json_object`` — ``{"type": "json_object", "schema": {...}}``, what the
  llama.cpp server understands;
- ``none`` — send no response_format; the core still checks the answer
  against the schema.

With ``batch: true`` on the role, requests go through the provider's Batch
API instead (``batch_line``, ``create_batch``, ``find_batches``,
``batch_state``, ``batch_results``; the core's ``Batches`` collects, follows
and resumes them).
"""

from __future__ import annotations

import json
import os
from typing import Literal

from ..hookspecs import hookimpl
from .base import BatchState, RequestError, Response, TransientError, Usage
from .http import HttpBackend, json_bytes

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers take any key; a header with none would be refused by some.
NO_KEY = "no-key-needed"


@hookimpl
def atk_register_model_backends(register):
    register("openai", OpenAIBackend)


class OpenAIBackend(HttpBackend):
    """Any OpenAI-compatible server (OpenAI, llama.cpp server, vLLM...) via base_url."""

    name = "openai"
    model_is_a_name = True  # sent to the server; never opened here

    def __init__(self, model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None,
                 structured_output: Literal["json_schema", "json_object", "none"] = "json_schema",
                 headers: dict | None = None):
        # Options are checked against these annotations before a run starts
        # (Backend.vet_options); one made in code is checked here too.
        self.vet_options(model=model, base_url=base_url, api_key=api_key,
                           structured_output=structured_output, headers=headers)
        super().__init__(model=model, base_url=base_url)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or "default"
        self.structured_output = structured_output
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or NO_KEY
        self.http_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                             "Accept": "application/json", **dict(headers or {})}

    def identity(self):
        return {"backend": self.name, "model": self.model, "endpoint": self.base_url}

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling):
        data = await self._post("chat/completions", self._chat_body(messages, json_schema, sampling), extra)
        return self._response(data, _chat_text)

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling):
        data = await self._post("completions", self._completion_body(prompt, json_schema, sampling), extra)
        return self._response(data, _completion_text)

    def _chat_body(self, messages, json_schema, sampling) -> dict:
        body = {"model": self.model, "messages": list(messages), **_present(sampling)}
        if json_schema is not None:
            response_format = self._response_format(json_schema)
            if response_format is not None:
                body["response_format"] = response_format
        return body

    def _completion_body(self, prompt, json_schema, sampling) -> dict:
        body = {"model": self.model, "prompt": prompt, **_present(sampling)}
        if json_schema is not None and self.structured_output == "json_object":
            body["response_format"] = self._response_format(json_schema)
        return body

    # -- the Batch API ----------------------------------------------------------------------

    def batch_line(self, request) -> dict:
        """The line of a batch input file that asks ``request`` (a core ``Request``), less its
        ``custom_id``."""
        sampling = request.sampling()
        if request.mode == "chat":
            url, body = "/v1/chat/completions", self._chat_body(
                [dict(m) for m in request.messages], request.json_schema, sampling)
        else:
            url, body = "/v1/completions", self._completion_body(request.prompt, request.json_schema, sampling)
        body.update(request.extra or {})
        return {"method": "POST", "url": url, "body": body}

    async def create_batch(self, lines: list[dict], digest: str) -> str:
        """Upload ``lines`` (with their ``custom_id``) as a batch input file and create the
        batch, ``digest`` in its metadata; its id."""
        data = b"".join(json_bytes(line) + b"\n" for line in lines)
        boundary = "atk-batch-" + os.urandom(8).hex()
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"atk-batch.jsonl\"\r\n"
                f"Content-Type: application/jsonl\r\n\r\n").encode("utf-8") + data + \
            f"\r\n--{boundary}--\r\n".encode("utf-8")
        uploaded = await self._call("POST", "files", form,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        batch = await self._call("POST", "batches", body={
            "input_file_id": uploaded["id"], "endpoint": lines[0]["url"], "completion_window": "24h",
            "metadata": {"made_by": "atk", "atk_requests": digest}})
        return str(batch["id"])

    async def find_batches(self, digest: str, size: int, since: float | None) -> list[str]:
        """Recent batches of these requests (``digest`` in their metadata) that have not ended:
        one whose creation was answered too late to hear, or by a run killed before it noted
        it."""
        listed = await self._call("GET", "batches?limit=100")
        return [str(batch["id"]) for batch in (listed.get("data") or [] if isinstance(listed, dict) else [])
                if isinstance(batch, dict) and (batch.get("metadata") or {}).get("atk_requests") == digest
                and batch.get("status") in ("validating", "in_progress", "finalizing")]

    async def batch_state(self, batch_id: str):
        """The batch as the core follows it (its status, ``request_counts``; the object, with
        its ``output_file_id`` and ``error_file_id``, as ``details``). A batch the provider
        does not know (any more) is a ``RequestError``."""
        batch = await self._call("GET", f"batches/{batch_id}", missing=RequestError(
            f"{self.base_url} does not know batch {batch_id} (HTTP 404)"))
        status = str(batch.get("status"))
        counts = batch.get("request_counts") or {}
        reason = "; ".join(str(e.get("message")) for e in ((batch.get("errors") or {}).get("data") or [])
                           if isinstance(e, dict) and e.get("message"))
        return BatchState(batch_id, status, status in ("completed", "expired", "failed", "cancelled"),
                          done=(counts.get("completed") or 0) + (counts.get("failed") or 0),
                          total=counts.get("total"), reason=reason, details=batch)

    async def batch_results(self, state) -> dict:
        """From a finished batch's files: ``custom_id`` -> a ``Response``, or the error its
        line came back with (typed as the same request sent directly would fail: a refused
        line is a ``RequestError``; an expired, cancelled or failed one a ``TransientError``)."""
        results: dict = {}
        for name in ("error_file_id", "output_file_id"):
            file_id = state.details.get(name)
            if not file_id:
                continue
            content = await self._call("GET", f"files/{file_id}/content", raw=True)
            for text in content.decode("utf-8").splitlines():
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                    results[str(line["custom_id"])] = self._batch_answer(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line we cannot read is a line without an answer
        return results

    def _batch_answer(self, line):
        error = line.get("error")
        if error:
            return TransientError(f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip())
        response = line.get("response") or {}
        status, body = response.get("status_code"), response.get("body") or {}
        if status != 200:
            return self._error(int(status or 0), self._describe(int(status or 0), json_bytes(body)))
        text_of = _chat_text if "message" in ((body.get("choices") or [{}])[0]) else _completion_text
        try:
            return self._response(body, text_of)
        except TransientError as exc:
            return exc

    def _response(self, data, text_of) -> Response:
        try:
            choice = data["choices"][0]
            text = text_of(choice)
            return Response(text=text or "", finish_reason=choice.get("finish_reason"),
                            usage=_usage(data))
        except (KeyError, IndexError, TypeError, AttributeError):
            raise TransientError(f"{self.base_url} sent a response without an answer") from None

    def _response_format(self, schema):
        if self.structured_output == "json_schema":
            return {"type": "json_schema",
                    "json_schema": {"name": "answer", "schema": schema, "strict": False}}
        if self.structured_output == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    async def _post(self, path: str, body: dict, extra) -> dict:
        """One request, straight over HTTP (the SDK's response models cost more CPU than the
        rest of atk's request path): the answer's JSON, or the typed error its status means."""
        if extra:
            body.update(extra)  # what the SDK calls extra_body: merged into the request
        return await self._call("POST", path, body=body)


def _chat_text(choice):
    return choice["message"]["content"]


def _completion_text(choice):
    return choice["text"]


def _present(sampling: dict) -> dict:
    return {k: v for k, v in sampling.items() if v is not None}


def _usage(data) -> Usage:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    # OpenAI caches long prompt prefixes by itself and says how much of the prompt it read
    # from there (priced at price_cache_read where one is given).
    details = usage.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0,
                 cache_read_tokens=cached)
