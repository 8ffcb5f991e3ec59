"""The web layer of ``atk serve``: a FastAPI app over ``RunManager``.

Imported only by ``atk_core.serve.serve()`` (FastAPI is an optional extra).
Everything is under ``/api/`` and described by the OpenAPI schema at
``/openapi.json``; ``/`` is the page (plain HTML, CSS and JS shipped as
package data, inlined into one response so that it needs no other request
that would have to carry the token).
"""

from __future__ import annotations

import mimetypes
import secrets
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from ..errors import AtkError
from ..engine.redaction import scrub
from ..version import __version__
from .api_types import (
    ConfigText, Eval, EvalResult, EvalScore, Event, JudgeScore, LogTail, ManifestSummary, ModelUse,
    OutputFile, PipelineInfo, Problem, Records, RunDetail, RunSummary, ServerInfo, StepCount, Template,
    Validation,
)
from .guard import Guard
from .layout import RunError
from .runs import RunManager
from .store import ACTIVE, RESUMABLE

MAX_BODY = 128_000  # bytes: a config is a few kilobytes

_REFUSALS = {400: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
             429: {"model": Problem}}


def create_app(runs_dir, *, token: str | None = None, loopback: bool = True,
               max_body: int = MAX_BODY, registry=None, allow_env=(), allow_input=None,
               max_running: int = 1, allow_scripted: bool = False, max_queued: int = 100,
               claimed: tuple[int, int] | None = None) -> FastAPI:
    manager = RunManager(runs_dir, registry=registry, allow_env=allow_env, allow_input=allow_input,
                         max_running=max_running, allow_scripted=allow_scripted,
                         max_queued=max_queued, claimed=claimed)

    def get_registry():
        from ..engine.plugins import get_registry as load

        return registry or load()

    @asynccontextmanager
    async def lifespan(app):
        import anyio.to_thread

        get_registry()  # load the plugins once, before the first request
        manager.recover()
        yield
        stopped = await anyio.to_thread.run_sync(manager.shutdown)
        if stopped:
            print(f"atk: interrupted {stopped} run(s) as the server stopped; resume them from the"
                  " page after the next start", file=sys.stderr, flush=True)

    app = FastAPI(
        title="atk serve",
        version=__version__,
        description="Start pipeline runs from config templates, watch their progress, read their"
                    " logs and download their outputs. When the server has a token, every request"
                    " carries `Authorization: Bearer TOKEN`.",
        lifespan=lifespan,
    )
    app.state.manager = manager

    def hidden(text):
        """Text the server answers with, every allowed variable's value hidden in it."""
        return scrub(text, manager.vetter.secrets()) if isinstance(text, str) else text

    @app.exception_handler(RunError)
    async def run_error(request, exc: RunError):
        return JSONResponse({"detail": hidden(str(exc))}, status_code=exc.status)

    @app.exception_handler(AtkError)
    async def atk_error(request, exc: AtkError):
        return JSONResponse({"detail": hidden(" ".join(str(exc).split("\n")))}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def malformed_request(request, exc: RequestValidationError):
        # One line, like every other refusal, rather than the framework's list of errors.
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return JSONResponse({"detail": "malformed request: " + "; ".join(problems)},
                            status_code=422)

    # -- server and pipelines --------------------------------------------------------------

    @app.get("/api/info", response_model=ServerInfo, summary="About this server", tags=["server"])
    def info():
        import os

        return ServerInfo(version=__version__, runs_dir=str(manager.runs_dir), cwd=os.getcwd(),
                          token_required=bool(token))

    @app.get("/api/pipelines", response_model=list[PipelineInfo], summary="Installed pipelines",
             tags=["pipelines"])
    def pipelines():
        return [PipelineInfo(name=r.name, description=r.description,
                             distribution=r.plugin.distribution, version=r.plugin.version)
                for r in get_registry().registrations("pipeline")]

    @app.get("/api/pipelines/{name}/template", response_model=Template, responses=_REFUSALS,
             summary="A pipeline's config template", tags=["pipelines"])
    def template(name: str):
        from ..errors import ConfigError

        try:
            pipeline = get_registry().pipeline(name)
        except ConfigError as exc:
            raise RunError(str(exc), 404) from None
        return Template(pipeline=pipeline.name, template=pipeline.config_template())

    @app.post("/api/validate", response_model=Validation, summary="Check a config without running it",
              tags=["runs"])
    def validate(body: ConfigText):
        try:
            prepared = manager.vetter.prepare(body.config, "validate")
            return Validation(ok=True, pipeline=prepared.pipeline, warnings=prepared.warnings)
        except AtkError as exc:
            return Validation(ok=False, error=hidden(" ".join(str(exc).split("\n"))))

    # -- runs -------------------------------------------------------------------------------------

    @app.get("/api/runs", response_model=list[RunSummary], summary="Every run, newest first",
             tags=["runs"])
    def list_runs():
        return [_summary(run, hidden) for run in manager.store.runs()]

    @app.post("/api/runs", response_model=RunDetail, status_code=201, responses=_REFUSALS,
              summary="Check a config and start a run of it", tags=["runs"])
    def start_run(body: ConfigText):
        return _detail(manager, manager.start(body.config), hidden)

    @app.get("/api/runs/{run_id}", response_model=RunDetail, responses=_REFUSALS,
             summary="One run: status, config, manifest counts, output files", tags=["runs"])
    def get_run(run_id: str):
        return _detail(manager, manager.get(run_id), hidden)

    @app.post("/api/runs/{run_id}/cancel", response_model=RunSummary, responses=_REFUSALS,
              summary="Cancel a run (SIGINT, then SIGKILL after a grace period)", tags=["runs"])
    def cancel_run(run_id: str):
        return _summary(manager.cancel(run_id), hidden)

    @app.post("/api/runs/{run_id}/resume", response_model=RunSummary, responses=_REFUSALS,
              summary="Run an interrupted, failed or cancelled run again into the same output folder",
              tags=["runs"])
    def resume_run(run_id: str):
        return _summary(manager.resume(run_id), hidden)

    @app.get("/api/runs/{run_id}/log", response_model=LogTail, responses=_REFUSALS,
             summary="The end of a run's log", tags=["runs"])
    def run_log(run_id: str, max_bytes: int = Query(64_000, ge=1, le=1_000_000)):
        tail = manager.outputs.log_tail(manager.get(run_id), max_bytes)
        return LogTail(**{**tail, "text": hidden(tail["text"])})

    @app.get("/api/runs/{run_id}/events", response_model=list[Event], responses=_REFUSALS,
             summary="A run's progress events", tags=["runs"])
    def run_events(run_id: str, after: int = Query(0, ge=0, description="Only events after this seq."),
                   limit: int = Query(500, ge=1, le=5000)):
        manager.get(run_id)
        return [Event(**{**e, "message": hidden(e["message"])})
                for e in manager.store.events(run_id, after, limit)]

    @app.get("/api/runs/{run_id}/records", response_model=Records, responses=_REFUSALS,
             summary="A page of an output file's records (JSON lines), to read in the page",
             tags=["outputs"])
    def run_records(run_id: str, file: str = Query(description="e.g. failures.jsonl"),
                    offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=500)):
        return Records(**manager.outputs.records(manager.get(run_id), file, offset, limit))

    @app.get("/api/runs/{run_id}/files", response_model=list[OutputFile], responses=_REFUSALS,
             summary="A run's output files", tags=["outputs"])
    def run_files(run_id: str):
        return [OutputFile(**f) for f in manager.outputs.files(manager.get(run_id))]

    @app.get("/api/runs/{run_id}/files/{path:path}", responses={**_REFUSALS, 200: {
        "description": "The file's bytes", "content": {"application/octet-stream": {}}}},
        summary="Download an output file (only files inside the run's output folder)",
        tags=["outputs"], response_class=FileResponse)
    def download(run_id: str, path: str):
        real = manager.outputs.file(manager.get(run_id), path)
        kind = "application/x-ndjson" if real.suffix == ".jsonl" else mimetypes.guess_type(real.name)[0]
        return FileResponse(real, filename=Path(path).name, media_type=kind or "application/octet-stream")

    # -- the page ------------------------------------------------------------------------------------

    page = _page_parts()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        nonce = secrets.token_urlsafe(16)
        html = (page["html"]
                .replace("<!--STYLE-->", f'<style nonce="{nonce}">{page["css"]}</style>')
                .replace("<!--SCRIPT-->", f'<script nonce="{nonce}">{page["js"]}</script>'))
        return HTMLResponse(html, headers={
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}';"
                " connect-src 'self'; img-src 'self' data: blob:; font-src 'self';"
                " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
            "Cache-Control": "no-store",
        })

    app.add_middleware(Guard, token=token, loopback=loopback, max_body=max_body)
    return app


def _summary_values(run: dict, hidden) -> dict:
    return dict(
        id=run["id"], pipeline=run["pipeline"], status=run["status"], progress=run["progress"],
        message=hidden(run["message"]), created=run["created"], started=run["started"],
        finished=run["finished"], exit_code=run["exit_code"], error=hidden(run["error"]),
        attempts=run["attempts"], can_cancel=run["status"] in ACTIVE,
        can_resume=run["status"] in RESUMABLE,
    )


def _summary(run: dict, hidden) -> RunSummary:
    return RunSummary(**_summary_values(run, hidden))


def _detail(manager: RunManager, run: dict, hidden) -> RunDetail:
    return RunDetail(
        **_summary_values(run, hidden), config=hidden(run["config_redacted"]), pid=run["pid"],
        output_dir=str(manager.outputs.output_dir(run)), manifest=_manifest(manager.outputs.manifest(run)),
        files=[OutputFile(**f) for f in manager.outputs.files(run)], usage=_usage(run.get("usage")),
        evals=_evals(manager.outputs.evals(run)),
    )


def _usage(data) -> list[ModelUse]:
    """A progress event's ``usage`` as the API gives it; nothing when it has another shape."""
    try:
        return [ModelUse(role=str(role), requests_sent=int(use.get("requests_sent") or 0),
                         answers_from_store=int(use.get("answers_from_store") or 0),
                         prompt_tokens=int(use.get("prompt_tokens") or 0),
                         completion_tokens=int(use.get("completion_tokens") or 0),
                         cost=use.get("cost"), projected_cost=use.get("projected_cost"))
                for role, use in sorted((data or {}).items())]
    except (TypeError, ValueError, AttributeError):
        return []


def _manifest(data: dict | None) -> ManifestSummary | None:
    """The counts of a manifest.json; None when there is none or it has another shape."""
    from ..toolkit.outputs import described

    if not data:
        return None
    try:
        steps = [StepCount(name=str(s["name"]), inputs=int(s.get("in", 0)), outputs=int(s.get("out", 0)),
                           dropped={str(k): int(v) for k, v in (s.get("dropped") or {}).items()},
                           notes={str(k): int(v) for k, v in (s.get("notes") or {}).items()})
                 for s in data.get("steps") or []]
        models = []
        for role, use in sorted((data.get("models") or {}).items()):
            identity = use.get("identity") or {}
            usage = use.get("usage_sent") or {}
            models.append(ModelUse(
                role=role, backend=identity.get("backend"), model=identity.get("model"),
                requests_sent=int(use.get("requests_sent") or 0),
                answers_from_store=int(use.get("answers_from_store") or 0),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cost=use.get("cost_total")))
        outputs = {str(k): int(v) for k, v in (data.get("outputs") or {}).items()}
        declared = data.get("declared_outputs") or {}
        kinds = {str(k): described(v) for k, v in declared.items() if described(v)} \
            if isinstance(declared, dict) else {}
        return ManifestSummary(steps=steps, outputs=outputs, primary_output=data.get("primary_output"),
                               kinds=kinds, wall_seconds=data.get("wall_seconds"), models=models)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None


def _evals(found: list[tuple[str, dict]]) -> list[Eval]:
    """Each eval.json (``atk_core/evaluation/pipeline.py``'s ``report_of``) as the API gives it,
    a row per model and book; one of another shape is left out."""
    evals = []
    for name, data in found:
        try:
            books = [str(book) for book in data["books"]]
            results = []
            for role, entry in data["models"].items():
                for book in books:
                    scores = entry[book]
                    judge = scores.get("judge")
                    results.append(EvalResult(
                        name=role, model=entry.get("model"), book=book, **_score(scores),
                        seen=EvalScore(**_score(scores["seen"])),
                        held_out=EvalScore(**_score(scores["held_out"])),
                        judge=None if judge is None else JudgeScore(
                            **_score(judge), agrees_with_rule=judge.get("agrees_with_rule"))))
            evals.append(Eval(name=name, exam=data.get("exam"), questions=data["questions"],
                              seen=data["seen"], held_out=data["held_out"], books=books,
                              rule=data.get("rule"), results=results))
        except (TypeError, ValueError, AttributeError, KeyError):  # a ValidationError is a ValueError
            continue
    return evals


def _score(data: dict) -> dict:
    return {key: data.get(key) for key in ("correct", "total", "accuracy", "interval")}


def _page_parts() -> dict:
    from ..engine.resources import files

    static = files("atk_core.serve") / "static"
    return {name: (static / f"app.{name}").read_text(encoding="utf-8") for name in ("html", "css", "js")}
