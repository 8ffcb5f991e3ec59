"""Shared fixtures: throw-away plugin distributions on disk and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class PluginSite:
    """A folder on PYTHONPATH holding installed-looking distributions.

    Each distribution is a ``<name>-<version>.dist-info`` folder with METADATA
    and ``entry_points.txt`` beside its modules: exactly what importlib.metadata
    reads from site-packages, so discovery is the real thing.
    """

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, files: dict[str, str], entry_points: dict[str, str],
            version: str = "1.0") -> None:
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

    def env(self, **extra) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("ATK_LOAD_PLUGINS", None)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.path), env.get("PYTHONPATH", "")) if p
        )
        env.update(extra)
        return env


@pytest.fixture
def site(tmp_path) -> PluginSite:
    return PluginSite(tmp_path / "site")


def run_atk(*args, env=None, cwd=None, timeout=120, input=None):
    """The real CLI in a subprocess (``python -m atk_core``, the same interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "atk_core", *map(str, args)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input,
    )


@pytest.fixture
def atk():
    return run_atk


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# A pipeline distribution used by many tests: package data included.
DEMO_PIPELINE = {
    "demo_pipeline/__init__.py": '''
        import json, os, threading
        from atk_core import hookimpl, Pipeline, set_progress

        def echo(*, input_text, output_dir, repeat=1, task_id=None, **kwargs):
            """Writes its input to output_dir/echo.json, reporting progress from a thread."""
            def work():
                for i in range(4):
                    set_progress(task_id, (i + 1) / 4, f"step {i + 1} of 4")
            worker = threading.Thread(target=work)
            worker.start(); worker.join()
            record = {"text": input_text * repeat, "extra": sorted(kwargs)}
            with open(os.path.join(output_dir, "echo.json"), "w") as handle:
                json.dump(record, handle)
            if input_text == "explode":
                raise ValueError("the input asked me to explode")
            return record

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="echo", function=echo, description="Echo the input text"))
    ''',
    "demo_pipeline/config.yaml": '''
        pipeline: echo
        # the text to echo
        input_text: hello
        output_dir: ./out
    ''',
    "demo_pipeline/prompts/greet.yaml": '''
        - role: user
          content: "Say hello to {name}"
    ''',
}


@pytest.fixture
def demo_site(site) -> PluginSite:
    site.add("atk-pipeline-demo", DEMO_PIPELINE, {"demo": "demo_pipeline"}, version="2.3")
    return site


# A one-step pipeline over generated questions: what resume and dispatch tests run.
ANSWERS_PIPELINE = {
    "answers_pipeline/__init__.py": '''
        import os
        from atk_core import hookimpl, Pipeline, PipelineStep, set_progress
        from atk_core.files import atomic_write_jsonl

        SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
                  "required": ["answer"]}
        ANSWER = PipelineStep(name="answer", prompt="answer", model="large",
                              json_schema=SCHEMA, max_attempts=2, temperature=0.0)

        async def answer_questions(*, count, output_dir, task_id=None, **kwargs):
            questions = [{"id": f"q{i:05d}", "question": f"What is item {i}?"} for i in range(count)]
            results = await ANSWER.run(questions)
            atomic_write_jsonl(os.path.join(output_dir, "answers.jsonl"),
                               [{"id": r.sample_id, **r.value} for r in results if r.ok])
            atomic_write_jsonl(os.path.join(output_dir, "failures.jsonl"),
                               [{"id": r.sample_id, "reason": r.reason} for r in results if not r.ok])

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="answers", function=answer_questions,
                              description="Answer generated questions"))
    ''',
    "answers_pipeline/config.yaml": '''
        pipeline: answers
        count: 10
        output_dir: ./out
        models:
          large: {backend: scripted}
    ''',
    "answers_pipeline/prompts/answer.yaml": '''
        - role: system
          content: 'Answer in JSON: {"answer": "..."}'
        - role: user
          content: "{question}{error_message}"
    ''',
}


@pytest.fixture
def answers_site(site) -> PluginSite:
    site.add("atk-pipeline-answers", ANSWERS_PIPELINE, {"answers": "answers_pipeline"})
    return site
