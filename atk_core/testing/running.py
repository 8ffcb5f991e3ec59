"""A kit for testing pipelines and plugins without a real model.

- ``ScriptedBackend`` (registered as the ``scripted`` backend): answers from a
  function, a dict of substrings or a JSON schema; deterministic; counts and
  optionally logs every call; injects faults on chosen calls.
- ``run_pipeline(...)``: run an installed pipeline in-process through the
  real runner, as ``atk run`` would.
- ``read_jsonl(path)``: the records of a JSON-lines output file.
- ``run_cli(*args)``: the real ``atk`` command in a subprocess.
- ``PluginSite``: a folder of installed-looking distributions to put on
  PYTHONPATH, so plugin discovery in a subprocess is the real thing.
- ``build_wheel(project)`` and ``make_venv(path, packages)``: install a plugin
  non-editable into a fresh virtual environment, the way users get it.

In a config::

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
from typing import Any, Callable

from .hookspecs import hookimpl
from .models.base import (
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
    def check_options(cls, **options):
        super().check_options(**options)  # the option names, from __init__'s signature
        if isinstance(options.get("respond"), str):
            _resolve(options["respond"])
        for fault in options.get("faults") or []:
            _fault(fault)
        _delay(options.get("delay", 0.0))

    def __init__(self, respond: Callable | str | None = None, answers: dict | None = None,
                 default: Any = None, faults: list | None = None, log: str | None = None,
                 model: str = "scripted", delay: float = 0.0, modes=("chat", "completion")):
        super().__init__(model=model)
        self.respond = _resolve(respond) if isinstance(respond, str) else respond
        self.answers = dict(answers or {})
        self.default = default
        self.faults = [_fault(f) for f in (faults or [])]
        self.log_path = Path(log) if log else None
        self.delay = _delay(delay)
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
            return synthesize(request.json_schema)
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


def _delay(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 3600:
        raise ValueError(f"delay must be a number of seconds from 0, not {value!r}")
    return float(value)


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


def synthesize(schema: dict, _depth: int = 0):
    """A small value that fits a JSON schema: the scripted backend's default answer."""
    if not isinstance(schema, dict) or _depth > 20:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return synthesize(schema[key][0], _depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        return {name: synthesize(sub, _depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        if "maxItems" in schema:
            count = min(count, schema["maxItems"])
        return [synthesize(schema.get("items", {}), _depth + 1) for _ in range(count)]
    if kind == "string":
        length = max(schema.get("minLength", 0), 8)
        return ("scripted text " * 4)[:length].strip() or "scripted"
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "scripted"


def run_pipeline(pipeline: str, *, output_dir, models: dict | None = None, progress=(),
                 prompt_overrides=None, **fields):
    """Run an installed pipeline in-process through the real runner; return its RunResult.

    ``models`` maps roles to settings as in a config (``{"large": {"backend":
    "scripted"}}``); ``progress`` lists reporters (none by default, so test
    output stays quiet).
    """
    from .config import RunConfig
    from .runner import run

    tree = {"pipeline": pipeline, "output_dir": str(output_dir), **fields}
    if models:
        tree["models"] = models
    if prompt_overrides:
        tree["prompt_overrides"] = str(prompt_overrides)
    config = RunConfig(source=f"<run_pipeline {pipeline}>", tree=tree)
    return run(config, progress=list(progress) or [_SILENT])


_SILENT = {"jsonl": {}}  # a quiet default: events go to progress.jsonl, not the terminal


def read_jsonl(path) -> list:
    """The records of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


# -- the real CLI, real distributions, real wheels ---------------------------------------------


def run_cli(*args, env=None, cwd=None, timeout=300, input=None, python=None):
    """Run ``atk ARGS`` in a subprocess (``python -m atk_core``) and capture its output."""
    import subprocess
    import sys

    return subprocess.run(
        [python or sys.executable, "-m", "atk_core", *map(str, args)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input,
    )


def stderr_lines(result) -> list:
    """The non-empty lines a finished subprocess wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


class PluginSite:
    """A folder to put on PYTHONPATH holding installed-looking distributions.

    Each distribution is a ``<name>-<version>.dist-info`` folder with METADATA
    and ``entry_points.txt`` beside its modules: exactly what importlib.metadata
    reads from site-packages.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, files: dict, entry_points: dict, version: str = "1.0") -> None:
        import textwrap

        for relative, text in files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text), encoding="utf-8")
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[atk]\n{lines}", encoding="utf-8")

    def env(self, **extra) -> dict:
        import os

        env = dict(os.environ)
        env.pop("ATK_LOAD_PLUGINS", None)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.path), env.get("PYTHONPATH", "")) if p
        )
        env.update(extra)
        return env


_NOT_SOURCE = ("build", "dist", "*.egg-info", ".venv", ".git", "__pycache__", ".pytest_cache",
               "node_modules")


def build_wheel(project, dest) -> Path:
    """Build a project's wheel from a clean copy of its sources.

    The copy keeps a stale ``build/`` folder (from an earlier build) from
    slipping files into the wheel that the source no longer has. No build
    isolation: this environment's setuptools does the build.
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.whl"))
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / Path(project).resolve().name
        shutil.copytree(project, source, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "-q", "-w", str(dest), str(source)],
            capture_output=True, text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"building a wheel of {project} failed:\n{result.stderr[-3000:]}")
    (wheel,) = set(dest.glob("*.whl")) - before
    return wheel


def make_venv(path, packages, env=None) -> Path:
    """A fresh virtual environment at ``path`` with ``packages`` pip-installed; its python."""
    import subprocess
    import sys

    path = Path(path)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *map(str, packages)],
        capture_output=True, text=True, env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip install into {path} failed:\n{result.stderr[-3000:]}")
    return python
