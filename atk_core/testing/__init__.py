"""The kit for testing pipelines and plugins, the one atk's own tests use. Public API.

Nothing here is a mock of atk: runs go through the real runner, the CLI runs
in a real subprocess, HTTP goes over a real socket, plugins are installed
from real wheels.

- ``ScriptedBackend`` (the ``scripted`` backend): answers from a function, a
  dict of substrings or a JSON schema; deterministic; counts and optionally
  logs every call; injects faults on chosen calls.
- ``run_pipeline(name, output_dir=..., models=..., **fields)``: run an
  installed pipeline in-process, as ``atk run`` would; its ``RunResult``.
- ``make_model(settings, backend=None)``: one role's ``Model`` (retries,
  limits, schema checks, store) as a pipeline gets it.
- ``read_jsonl(path)``: the records of a JSON-lines output file.
- ``run_cli(*args)`` and ``stderr_lines(result)``: the real ``atk`` command
  in a subprocess; ``kill_midway(config, log=..., calls=N)`` kills one with
  SIGKILL after N model calls, ``kill_when(config, ready)`` as soon as
  ``ready()`` is true (a batch in progress...), to test resume.
- ``write_config(path, pipeline, **fields)``, ``config_error(config)`` (the one
  error line of a refused config), ``resume_after_kill(pipeline, ...)`` (a
  run killed halfway and run again gives the clean run's bytes),
  ``venv_cli(python, cwd=...)`` (the ``atk`` of a fresh venv) and
  ``write_documents(folder, texts)``: what every pipeline package's tests do;
  ``ScriptedPipeline(name, respond=..., inputs=...)`` holds them for one
  pipeline on the scripted backend (run, re-run, refused config, resume), and
  ``PipelinePromises`` turns them into the tests every pipeline must pass.
- ``PluginSite``: a folder of installed-looking distributions to put on
  PYTHONPATH, so plugin discovery in a subprocess is the real thing.
- ``build_wheel(project, dest)`` and ``make_venv(path, packages)``: install a
  plugin non-editable into a fresh virtual environment, the way users get it.
- ``write_mixed_inputs(folder)`` and ``pdf_bytes(text)``: input files of every
  kind atk reads, and of the kinds it reports as unreadable; ``TWO_DOCUMENTS``:
  two short documents of plain facts, for ``write_documents``.
- ``question_about(focus, chunk)``: a question about a sentence that finds it among the
  chunk's sentences, for a test double of a question-writing model.
- ``FakeOpenAIServer``: an OpenAI-compatible HTTP server on 127.0.0.1 that
  injects faults (``python -m atk_core.testing.openai_server`` runs one).
- ``FakeAnthropicServer``: Anthropic's Messages and Message Batches APIs on
  127.0.0.1, with prompt caching, its error shapes and the same faults
  (``python -m atk_core.testing.anthropic_server`` runs one).
"""

from ..models.scripted import FAULT_KINDS, ScriptedBackend
from ..engine.runner import RunResult
from .distributions import PluginSite, build_wheel, make_venv
from .inputs import TWO_DOCUMENTS, pdf_bytes, write_mixed_inputs
from .openai_server import FakeOpenAIServer
from .anthropic_server import FakeAnthropicServer
from .questions import question_about
from .pipelines import (
    PipelinePromises, ScriptedPipeline, config_error, resume_after_kill, venv_cli, write_config, write_documents,
)
from .running import make_model, read_jsonl, run_pipeline
from .subprocesses import kill_midway, kill_when, run_cli, stderr_lines

__all__ = [
    "FAULT_KINDS", "FakeAnthropicServer", "FakeOpenAIServer", "PipelinePromises", "PluginSite", "RunResult",
    "ScriptedBackend", "ScriptedPipeline", "TWO_DOCUMENTS",
    "build_wheel", "config_error", "kill_midway", "kill_when", "make_model", "make_venv", "pdf_bytes",
    "question_about", "read_jsonl", "resume_after_kill", "run_cli", "run_pipeline", "stderr_lines",
    "venv_cli",
    "write_config", "write_documents", "write_mixed_inputs",
]
