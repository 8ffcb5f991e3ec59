"""Test patterns every pipeline package repeats: a config file, a config mistake, a killed
run resumed, the ``atk`` of a fresh venv. Each raises ``AssertionError`` saying what went
wrong, so a pipeline's test is one call."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .running import read_jsonl, run_pipeline
from .subprocesses import kill_midway, run_cli, stderr_lines


def write_config(path, pipeline: str, **fields) -> Path:
    """Write a config file for ``atk run``: ``pipeline``, ``progress: [jsonl]`` and
    ``fields`` (each as JSON, which YAML reads as is); return its path."""
    path = Path(path)
    lines = [f"pipeline: {pipeline}", "progress: [jsonl]"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config_error(config, *, env=None, cwd=None, python=None) -> str:
    """Run ``atk run CONFIG``, which must refuse the config as a user needs it refused:
    exit status 2 and exactly one line on stderr, ``atk: error: ...``. Returns that line."""
    result = run_cli("run", config, env=env, cwd=cwd, python=python)
    assert result.returncode == 2, f"exit status {result.returncode}, not 2:\n{result.stderr}"
    lines = stderr_lines(result)
    assert len(lines) == 1, f"{len(lines)} lines on stderr, not one:\n{result.stderr}"
    assert lines[0].startswith("atk: error: "), lines[0]
    return lines[0]


def resume_after_kill(pipeline: str, *, respond: str, input_dir=None, outputs, cwd, helpers=None,
                      concurrency: int = 2, **fields) -> int:
    """The resume promise, end to end: ``pipeline`` run clean, then run again in another
    folder, killed with SIGKILL halfway through its model calls, and run once more. Both
    roles (``small``, ``large``) are the scripted backend answering with ``respond``
    (``"module:function"``, importable from ``helpers``), slowed a little and ``concurrency``
    at a time; ``fields`` are the rest of the config. Nothing of ``outputs`` (file names)
    may exist after the kill; after the last run they must be the clean run's bytes, and
    at most the calls in flight at the kill (``2 * concurrency``) may have been repeated.
    Returns how many were. (A pipeline that reads no ``input_dir`` gets its inputs in
    ``fields``.)"""
    cwd = Path(cwd)
    env = dict(os.environ)
    if helpers is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(helpers), env.get("PYTHONPATH")]))

    def config(name: str, log: str) -> Path:
        model = {"backend": "scripted", "respond": respond, "log": str(cwd / log), "delay": 0.05,
                 "concurrency": concurrency}
        inputs = {"input_dir": str(input_dir)} if input_dir is not None else {}
        return write_config(cwd / f"{name}-{log}.yaml", pipeline, **inputs,
                            output_dir=str(cwd / name), models={"small": model, "large": model},
                            **fields)

    def calls(log) -> int:
        path = cwd / log
        return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0

    clean = run_cli("run", config("clean", "clean.jsonl"), env=env, cwd=cwd)
    assert clean.returncode == 0, clean.stderr
    total = calls("clean.jsonl")
    assert total >= 2, f"the clean run made {total} model calls: too few to kill it halfway"
    logged = kill_midway(config("resumed", "first.jsonl"), log=cwd / "first.jsonl",
                         calls=total // 2, env=env, cwd=cwd)
    written = [name for name in outputs if (cwd / "resumed" / name).exists()]
    assert not written, f"a killed run left {', '.join(written)} behind"
    again = run_cli("run", config("resumed", "second.jsonl"), env=env, cwd=cwd)
    assert again.returncode == 0, again.stderr
    repeated = logged + calls("second.jsonl") - total
    in_flight = 2 * concurrency
    assert 0 <= repeated <= in_flight, f"{repeated} calls repeated, more than the {in_flight} in flight"
    for name in outputs:
        assert (cwd / "resumed" / name).read_bytes() == (cwd / "clean" / name).read_bytes(), \
            f"{name} differs after the resumed run"
    return repeated


def write_documents(folder, texts: dict) -> Path:
    """Write ``{file name: text}`` into ``folder`` (made if needed), each text ending in a
    newline; return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return folder


def venv_cli(python, *, cwd, helpers=None):
    """``atk(*args)`` that runs the ``atk`` of a fresh venv (``python``, from ``make_venv``)
    with none of this process's plugin paths, and ``helpers`` (a folder of test modules,
    say a scripted model's answers) on PYTHONPATH. It fails with the command's stderr when
    the command fails; else returns the ``CompletedProcess``. Its home folder is ``.home``
    in ``cwd``: what the command or a library it starts keeps in ``~`` (Ray's token and
    sessions, caches) stays with the test, not in the user's home."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    home = Path(cwd) / ".home"
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    if helpers is not None:
        env["PYTHONPATH"] = str(helpers)

    def atk(*args, timeout: float = 300):
        result = run_cli(*args, python=python, env=env, cwd=cwd, timeout=timeout)
        assert result.returncode == 0, f"atk {' '.join(map(str, args))}:\n{result.stderr}"
        return result

    return atk


class ScriptedPipeline:
    """A pipeline on the scripted backend, as its package's tests run it again and again.

    ``respond`` is the scripted model's answers as ``"module:function"`` (a module
    beside the tests, importable in-process and, through ``helpers``, in a subprocess);
    ``inputs(folder)`` writes the test documents and returns the folder; ``defaults``
    are fields every run gets unless a test sets them::

        kit = ScriptedPipeline("rag-data", respond="rag_fakes:respond", inputs=write_inputs,
                               helpers=TESTS)
        result = kit.run(tmp_path, failure_share=0.5)

    ``input_fields(folder)`` says which fields name the folder ``inputs`` wrote (default:
    ``{"input_dir": folder}``), for a pipeline that reads its inputs another way.
    """

    def __init__(self, pipeline: str, *, respond: str, inputs, helpers=None, input_fields=None,
                 **defaults):
        self.pipeline, self.respond, self.inputs = pipeline, respond, inputs
        self.helpers, self.defaults = helpers, defaults
        self.input_fields = input_fields or (lambda folder: {"input_dir": str(folder)})

    def models(self, *, small: dict | None = None, large: dict | None = None, **options) -> dict:
        """Both roles (``small``, ``large``) on the scripted backend, with ``options``
        (``log=``, ``delay=``...) for both and ``small``/``large`` for one."""
        model = {"backend": "scripted", "respond": self.respond, **options}
        return {"small": {**model, **(small or {})}, "large": {**model, **(large or {})}}

    def run(self, tmp_path, name: str = "out", models=None, again: bool = False, **fields):
        """The pipeline in-process over the test documents (written to ``tmp_path/in`` on
        first use) into ``tmp_path/name``; its ``RunResult`` (``again``: even if the folder
        is up to date)."""
        tmp_path = Path(tmp_path)
        named = self.input_fields(tmp_path / "in")
        if not set(named) & set(fields) and not (tmp_path / "in").exists():
            self.inputs(tmp_path / "in")
        fields = {**named, **self.defaults, **fields}
        return run_pipeline(self.pipeline, output_dir=tmp_path / name,
                            models=models or self.models(), again=again, **fields)

    def assert_rerun_is_free(self, tmp_path, outputs, **fields) -> None:
        """A finished run run again is up to date (nothing runs); run anyway (``again``) it
        sends no request; and a second run of the same config into another folder writes the
        same bytes."""
        tmp_path = Path(tmp_path)
        calls = tmp_path / "calls.jsonl"
        logged = self.models(log=str(calls))
        first = self.run(tmp_path, "a", models=logged, **fields)
        assert first.exit_code == 0, first.error
        sent = len(calls.read_text(encoding="utf-8").splitlines())
        other = self.run(tmp_path, "b", **fields)
        assert other.exit_code == 0, other.error
        rerun = self.run(tmp_path, "a", models=logged, **fields)
        assert rerun.exit_code == 0 and rerun.up_to_date, "a finished run run again was not up to date"
        replay = self.run(tmp_path, "a", models=logged, again=True, **fields)
        assert replay.exit_code == 0 and not replay.up_to_date, replay.error
        again = len(calls.read_text(encoding="utf-8").splitlines()) - sent
        assert again == 0, f"the re-run sent {again} request(s)"
        for name in outputs:
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), \
                f"{name} differs between two runs of the same config"

    def assert_shards_change_no_byte(self, tmp_path, outputs, **fields) -> None:
        """A run with every input file a shard of its own (``shard_bytes: 1``) writes the same
        bytes, and the same manifest counts, as a run reading the corpus in one piece."""
        tmp_path = Path(tmp_path)
        whole = self.run(tmp_path, "whole", shard_bytes=10**15, **fields)
        sharded = self.run(tmp_path, "sharded", shard_bytes=1, **fields)
        assert whole.exit_code == sharded.exit_code == 0, sharded.error or whole.error
        for name in outputs:
            assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), \
                f"{name} differs when the corpus goes a shard at a time"
        manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("whole", "sharded")]
        for fact in ("steps", "outputs", "reading"):
            assert manifests[0].get(fact) == manifests[1].get(fact), fact

    def refused(self, tmp_path, **fields) -> str:
        """``atk run`` of a config with ``fields`` (scripted roles, output ``tmp_path/out``,
        one document in ``tmp_path/docs``, which ``input_dir: docs`` names) must be refused
        in one line with exit status 2, writing nothing. Returns the line."""
        tmp_path = Path(tmp_path)
        write_documents(tmp_path / "docs", {"a.txt": "A document about the sea."})
        fields.setdefault("models", {"small": {"backend": "scripted"}, "large": {"backend": "scripted"}})
        fields.setdefault("output_dir", str(tmp_path / "out"))
        line = config_error(write_config(tmp_path / "refused.yaml", self.pipeline, **fields), cwd=tmp_path)
        assert not Path(fields["output_dir"]).exists(), "a refused config wrote its output folder"
        return line

    def assert_resumes_after_kill(self, tmp_path, outputs, **fields) -> int:
        """``resume_after_kill`` over the test documents, with this kit's answers."""
        tmp_path = Path(tmp_path)
        fields = {**self.defaults, **fields}
        if not set(self.input_fields(tmp_path / "in")) & set(fields):
            fields = {**self.input_fields(self.inputs(tmp_path / "in")), **fields}
        input_dir = fields.pop("input_dir", None)
        return resume_after_kill(self.pipeline, respond=self.respond, input_dir=input_dir,
                                 outputs=outputs, cwd=tmp_path, helpers=self.helpers, **fields)

    def run_from_wheel(self, python, tmp_path, *, distribution: str, **fields) -> Path:
        """The pipeline as a user installs it, in a fresh venv (``python``, from
        ``make_venv``): listed as ``distribution``'s; ``atk init NAME --samples`` writes its
        template and copies its sample documents; ``atk prompts NAME my_prompts`` copies its
        prompts out; ``atk run`` of the template succeeds with both roles scripted, the
        copied prompts as overrides and ``fields`` set. Returns the output folder."""
        import json

        tmp_path = Path(tmp_path)
        atk = venv_cli(python, cwd=tmp_path, helpers=self.helpers)
        listed = {p["name"]: p for p in json.loads(atk("list", "pipelines", "--json").stdout)}
        assert listed[self.pipeline]["distribution"] == distribution, listed.get(self.pipeline)
        atk("init", self.pipeline, "--samples")
        atk("prompts", self.pipeline, "my_prompts")
        role = f"{{backend: scripted, respond: '{self.respond}'}}"
        settings = [f"--set=models.{name}={role}" for name in ("small", "large")]
        settings += [f"--set={key}={json.dumps(value)}" for key, value in fields.items()]
        atk("run", f"{self.pipeline}.yaml", "--set=prompt_overrides=my_prompts", *settings)
        return tmp_path / "output"


class PipelinePromises:
    """The promises every pipeline keeps, as tests: subclass it in a pipeline package's tests
    as ``class TestPromises(PipelinePromises)``, with

    - ``kit``: the pipeline's ``ScriptedPipeline``;
    - ``outputs``: the files it writes (JSON lines; ``failures.jsonl`` too, if you like);
    - ``fields``: fields these runs set (say, to reach every step), default none;
    - ``mistakes``: ``(fields, part of the error line)`` pairs of config mistakes only this
      pipeline can make (the shared fields' are checked once for every pipeline).

    pytest then checks that a re-run sends nothing and changes no byte, that a run killed
    with SIGKILL and run again repeats at most the calls in flight, that each mistake is
    refused in one line with nothing written, and that every output loads with Hugging
    Face ``datasets`` (skipped where it is not installed).
    """

    kit: ScriptedPipeline
    outputs: tuple = ()
    fields: dict = {}
    mistakes: tuple = ()

    def test_a_rerun_sends_nothing_and_changes_no_byte(self, tmp_path):
        self.kit.assert_rerun_is_free(tmp_path, self.outputs, **self.fields)

    def test_killed_with_sigkill_then_run_again_repeats_only_the_calls_in_flight(self, tmp_path):
        self.kit.assert_resumes_after_kill(tmp_path, self.outputs, **self.fields)

    def test_a_shard_at_a_time_writes_what_one_pass_writes(self, tmp_path):
        # shard_bytes: 1 makes every input file a shard of its own (a pipeline that reads its
        # corpus in one piece ignores it)
        self.kit.assert_shards_change_no_byte(tmp_path, self.outputs, **self.fields)

    def test_its_config_mistakes_are_refused_in_one_line(self, tmp_path):
        for index, (fields, message) in enumerate(self.mistakes):
            named = self.kit.input_fields(Path("docs"))  # the pipeline's own input fields
            line = self.kit.refused(tmp_path / f"mistake{index}", **{**named, **fields})
            assert message in line, f"{fields}: {line}"

    def test_every_output_loads_with_hugging_face_datasets(self, tmp_path):
        import pytest

        datasets = pytest.importorskip("datasets")
        result = self.kit.run(tmp_path, **self.fields)
        assert result.exit_code == 0, result.error
        for name in self.outputs:
            path = tmp_path / "out" / name
            rows = read_jsonl(path)
            if not rows:
                continue
            loaded = datasets.load_dataset("json", data_files=str(path), split="train",
                                           cache_dir=str(tmp_path / "hf-cache"))
            assert len(loaded) == len(rows), name
            assert set(loaded.column_names) == {key for row in rows for key in row}, name
