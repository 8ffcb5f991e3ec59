"""Running pipelines and models in-process, as ``atk run`` would, for tests."""

from __future__ import annotations

import json
from pathlib import Path

_SILENT = {"jsonl": {}}  # a quiet default: events go to progress.jsonl, not the terminal


def run_pipeline(pipeline: str, *, output_dir, models: dict | None = None, progress=(),
                 prompt_overrides=None, again: bool = False, **fields):
    """Run an installed pipeline in-process through the real runner; return its ``RunResult``.

    ``models`` maps roles to settings as in a config (``{"large": {"backend":
    "scripted"}}``); ``progress`` lists reporters as a config's ``progress:``
    does (default: only ``jsonl``, so test output stays quiet);
    ``prompt_overrides`` is a folder of prompt files; every other keyword is
    a field of the pipeline. The result's ``exit_code`` is what ``atk run``
    would exit with: 0 done, 1 failed, 2 refused (a config mistake, found
    before anything was written: ``status == "refused"``), 130 interrupted;
    ``error`` is its one line, ``value`` what the pipeline returned and
    ``models`` the roles' ``Model``\\ s with their token counts. A finished run whose
    outputs are up to date returns at once (``up_to_date``), unless ``again``.
    """
    from ..engine.config import RunConfig
    from ..errors import AtkError, one_line
    from ..engine.runner import RunResult, run

    tree = {"pipeline": pipeline, "output_dir": str(output_dir), **fields}
    if models:
        tree["models"] = models
    if prompt_overrides:
        tree["prompt_overrides"] = str(prompt_overrides)
    config = RunConfig(source=f"<run_pipeline {pipeline}>", tree=tree)
    try:
        return run(config, progress=list(progress) or [_SILENT], again=again)
    except AtkError as exc:  # refused before it started, as `atk run` refuses with exit 2
        return RunResult(None, pipeline, Path(output_dir), "refused", exc.exit_code, one_line(exc))


def make_model(settings="scripted", backend=None, *, role: str = "large", store=None):
    """A role's ``Model`` as a pipeline gets it, from settings written as in a config.

    ``settings`` is ``{backend: NAME, ...options and policy}`` (or
    ``"NAME:MODEL"``); with a ``backend`` instance given, the settings hold
    only the policy (``{"retry_base_delay": 0}``). ``store`` (a ``Store``)
    makes it keep and reuse answers.
    """
    from ..models import Model, build_models, parse_spec
    from ..engine.plugins import get_registry
    from ..toolkit.constraints import vetter_of

    if backend is not None:
        settings = {"backend": getattr(backend, "name", "backend"), **dict(settings or {})}
        model = Model(parse_spec(role, settings), backend)
    else:
        spec = parse_spec(role, settings)
        registry = get_registry()
        vetter = vetter_of(registry.backend(spec.backend))
        if vetter is not None:
            vetter(**spec.options)
        model = build_models({role: spec}, registry)[role]
    model.store = store
    return model


def read_jsonl(path) -> list:
    """The records of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
