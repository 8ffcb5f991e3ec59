"""The ``scripted`` backend: a model for tests, answering from a script, never from a network.

It answers from a function of the request, a dict of substrings, or a small
value that fits the request's JSON schema; it is deterministic, counts its
calls (and can log them to a file, to count across processes), and injects
faults on chosen calls. Registered through the same hook as every backend,
so a config can say ``{backend: scripted, ...}``::

    models:
      large:
        backend: scripted
        respond: my_tests.fakes:answer     # a function of the Request
        answers: {"capital of France": "Paris"}
        log: calls.jsonl                   # one line per call, to count them
        faults: [{kind: malformed, calls: [1, 2]}]
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from pathlib import Path
from typing import Annotated, Any, Callable

from ..toolkit.constraints import Between
from ..hookspecs import hookimpl
from ..toolkit.schemas import value_for_schema
from .base import (
    Backend, FatalError, RateLimited, Request, RequestError, Response, TransientError, Usage,
)

FAULT_KINDS = ("rate_limited", "transient", "request", "fatal", "malformed", "truncated", "hang")


@hookimpl
def atk_register_model_backends(register):
    register("scripted", ScriptedBackend)


class ScriptedBackend(Backend):
    """Scripted answers for tests: from a function, substrings or a schema; can inject faults."""

    name = "scripted"

    @classmethod
    def vet_options(cls, **options):
        super().vet_options(**options)  # names and types, from __init__'s annotations
        if isinstance(options.get("respond"), str):
            _resolve(options["respond"])
        for fault in options.get("faults") or []:
            _fault(fault)

    def __init__(self, respond: Callable | str | None = None, answers: dict | None = None,
                 default: Any = None, faults: list | None = None, log: str | None = None,
                 model: str = "scripted",
                 delay: Annotated[float, Between(0, 3600, maximum_open=True, unit="seconds")] = 0.0,
                 modes: list[str] = ("chat", "completion")):
        self.vet_options(respond=respond, answers=answers, default=default, faults=faults,
                           log=log, model=model, delay=delay, modes=modes)
        super().__init__(model=model)
        self.respond = _resolve(respond) if isinstance(respond, str) else respond
        self.answers = dict(answers or {})
        self.default = default
        self.faults = [_fault(f) for f in (faults or [])]
        self.log_path = Path(log) if log else None
        self.delay = float(delay)
        self.modes = tuple(modes)
        self.calls = 0
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling):
        if "chat" not in self.modes:
            raise RequestError("this scripted backend serves completions only")
        return await self._answer(Request(messages=tuple(messages), json_schema=json_schema,
                                          extra=extra or {}, **_sampling(sampling)))

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling):
        if "completion" not in self.modes:
            raise RequestError("this scripted backend serves chat only")
        return await self._answer(Request(prompt=prompt, json_schema=json_schema,
                                          extra=extra or {}, **_sampling(sampling)))

    async def _answer(self, request: Request) -> Response:
        with self._lock:
            self.calls += 1
            call = self.calls
            self.requests.append(request)
            if self.log_path is not None:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"call": call, **request.to_dict()}) + "\n")
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self._fault_for(call, request)
        if fault is not None:
            result = await _inject(fault, request)
            if result is not None:
                return result
        answer = self._scripted(request)
        if isinstance(answer, BaseException):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        words = len(text.split())
        return Response(text=text, finish_reason="stop",
                        usage=Usage(len(_request_text(request).split()), words))

    def _scripted(self, request: Request):
        if self.respond is not None:
            answer = self.respond(request)
            if answer is not None:
                return answer
        text = _request_text(request)
        for needle, answer in self.answers.items():
            if needle in text:
                return answer
        if self.default is not None:
            return self.default
        if request.json_schema is not None:
            return value_for_schema(request.json_schema)
        return "scripted answer"

    def _fault_for(self, call: int, request: Request):
        text = _request_text(request)
        for fault in self.faults:
            if fault["calls"] is not None and call not in fault["calls"]:
                continue
            if fault["match"] is not None and fault["match"] not in text:
                continue
            with self._lock:
                if fault["times"] is not None:
                    if fault["times"] <= 0:
                        continue
                    fault["times"] -= 1
            return fault
        return None


def _fault(spec) -> dict:
    if isinstance(spec, str):
        spec = {"kind": spec}
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    calls = spec.get("calls")
    return {"kind": kind, "calls": set(calls) if calls is not None else None,
            "match": spec.get("match"), "times": spec.get("times"),
            "retry_after": spec.get("retry_after", 0)}


async def _inject(fault, request):
    kind = fault["kind"]
    if kind == "rate_limited":
        raise RateLimited("scripted: rate limited", retry_after=fault["retry_after"])
    if kind == "transient":
        raise TransientError("scripted: transient failure")
    if kind == "request":
        raise RequestError("scripted: request refused")
    if kind == "fatal":
        raise FatalError("scripted: fatal failure")
    if kind == "hang":
        await asyncio.sleep(3600)
    if kind == "malformed":
        return Response(text='{"this is": not json', finish_reason="stop")
    if kind == "truncated":
        return Response(text='{"cut off mid', finish_reason="length")
    return None


def _sampling(sampling: dict) -> dict:
    values = {k: v for k, v in sampling.items() if k in ("temperature", "top_p", "max_tokens", "seed")}
    if sampling.get("stop"):
        values["stop"] = tuple(sampling["stop"])
    return values


def _request_text(request: Request) -> str:
    if request.messages is not None:
        return "\n".join(m["content"] for m in request.messages)
    return request.prompt or ""


def _resolve(path: str):
    module_name, _, attr = path.partition(":")
    if not attr or not module_name:
        raise ValueError(f"respond must be 'module:function', not {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"respond {path!r}: cannot import {module_name!r} ({exc}); the module"
                         " must be installed or on PYTHONPATH") from None
    if not callable(getattr(module, attr, None)):
        raise ValueError(f"respond {path!r}: {module_name} has no function {attr!r}")
    return getattr(module, attr)
