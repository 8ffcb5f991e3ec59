"""Running pipelines through the real CLI: outputs, events, failures and their exit status."""

import json
import re
import sys
import zipfile

import pytest
import yaml

from atk_core import Pipeline
from atk_core.errors import PluginError
from support import stderr_lines

MORE_PIPELINES = {
    "more_pipelines/__init__.py": '''
        import asyncio, os
        from atk_core import hookimpl, Pipeline, set_progress, current_run

        async def slow_echo(*, text, output_dir, task_id=None, **kwargs):
            await asyncio.sleep(0)
            set_progress(task_id, 0.5, "halfway")
            set_progress(task_id, 1.7, "overshoot")
            set_progress(task_id, 2.0, "overshoot again")
            run = current_run()
            with open(os.path.join(output_dir, "async.txt"), "w") as f:
                f.write(f"{text} {run.pipeline.name} {run.task_id == task_id}")

        def strict(*, output_dir, value):
            """No **kwargs: unknown config fields are dropped with a warning."""
            with open(os.path.join(output_dir, "strict.txt"), "w") as f:
                f.write(str(value))

        def leaky(*, output_dir, api_key, **kwargs):
            raise RuntimeError(f"server refused key {api_key}")

        class Exploding:
            """Raises on the second event it sees."""
            def __init__(self, **options):
                self.seen = 0
            def handle(self, event):
                self.seen += 1
                if self.seen == 2:
                    raise OSError("disk full")
            def close(self):
                pass

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="slow-echo", function=slow_echo, description="async"))
            register(Pipeline(name="strict", function=strict))
            register(Pipeline(name="leaky", function=leaky))

        @hookimpl
        def atk_register_progress_reporters(register):
            register("exploding", Exploding)
    ''',
}


def config(tmp_path, body):
    path = tmp_path / "run.yaml"
    path.write_text(body + f"\noutput_dir: {tmp_path / 'out'}\n")
    return path


def events(tmp_path):
    lines = (tmp_path / "out" / "progress.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_run_writes_outputs_and_the_resolved_config(atk, demo_site, tmp_path):
    cfg = config(tmp_path, "pipeline: echo\ngroup:\n  input_text: hi\nunknown_field: 1")
    result = atk("run", cfg, "--set", "repeat=3", "--progress", "jsonl", env=demo_site.env())
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    record = json.loads((out / "echo.json").read_text())
    assert record["text"] == "hihihi"
    assert "unknown_field" in record["extra"]  # passed through **kwargs
    saved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert saved["group"] == {"input_text": "hi"} and saved["repeat"] == 3
    kinds = [e["kind"] for e in events(tmp_path)]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert f"outputs in {out}" in result.stderr


def test_quiet_prints_nothing_of_atks_own_but_an_error(atk, demo_site, tmp_path):
    """A reporter that owns stderr is not mixed with atk's warnings and closing lines."""
    cfg = config(tmp_path, "pipeline: echo\ngroup:\n  input_text: hi\nrepaet: 2")
    loud = atk("run", cfg, "--progress", "jsonl", env=demo_site.env())
    assert loud.returncode == 0 and "did you mean 'repeat'" in loud.stderr and "finished in" in loud.stderr
    quiet = atk("run", cfg, "--quiet", "--progress", "jsonl", env=demo_site.env())
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert events(tmp_path)[-1]["kind"] == "finish"  # the reporters report as before
    failing = atk("run", cfg, "-q", "--set", "group.input_text=explode", "--progress", "jsonl",
                  env=demo_site.env())
    assert failing.returncode == 1
    assert failing.stderr.splitlines() == ["atk: error: pipeline 'echo' failed: ValueError: the input"
                                           " asked me to explode (--debug shows the traceback)"]


def test_async_pipeline_with_clamped_progress(atk, site, tmp_path):
    site.add("atk-more", MORE_PIPELINES, {"more": "more_pipelines"})
    cfg = config(tmp_path, "pipeline: slow-echo\ntext: hey\nprogress: [jsonl]")
    result = atk("run", cfg, env=site.env())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "async.txt").read_text() == "hey slow-echo True"
    progress = [e["progress"] for e in events(tmp_path)]
    assert progress == [0.0, 0.5, 1.0, 1.0, 1.0]
    warnings = [line for line in stderr_lines(result) if "outside 0..1" in line]
    assert len(warnings) == 1  # once per run, not once per call


def test_pipeline_without_kwargs_gets_only_its_fields(atk, site, tmp_path):
    site.add("atk-more", MORE_PIPELINES, {"more": "more_pipelines"})
    cfg = config(tmp_path, "pipeline: strict\nvalue: 42\nstray: 1\nprogress: [jsonl]")
    result = atk("run", cfg, env=site.env())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "strict.txt").read_text() == "42"
    assert any("ignored: stray" in line for line in stderr_lines(result))


def test_failing_pipeline_is_exit_1_with_one_line_and_a_fail_event(atk, demo_site, tmp_path):
    cfg = config(tmp_path, "pipeline: echo\ninput_text: explode")
    result = atk("run", cfg, "--progress", "jsonl", env=demo_site.env())
    assert result.returncode == 1
    lines = stderr_lines(result)
    assert lines == ["atk: error: pipeline 'echo' failed: ValueError: the input asked me to explode"
                     " (--debug shows the traceback)"]
    last = events(tmp_path)[-1]
    assert last["kind"] == "fail" and "explode" in last["message"] and last["progress"] == 1.0

    debug = atk("run", cfg, "--progress", "jsonl", "--debug", env=demo_site.env())
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and 'raise ValueError("the input asked me to explode")' in debug.stderr


def test_secrets_never_reach_files_or_messages(atk, site, tmp_path):
    site.add("atk-more", MORE_PIPELINES, {"more": "more_pipelines"})
    cfg = config(tmp_path, "pipeline: leaky\napi_key: ${ATK_TEST_KEY}\nprogress: [jsonl]")
    secret = "sk-test-0123456789"
    result = atk("run", cfg, env=site.env(ATK_TEST_KEY=secret))
    assert result.returncode == 1
    assert secret not in result.stderr + result.stdout
    assert "server refused key <redacted>" in result.stderr
    for file in (tmp_path / "out").iterdir():
        assert secret not in file.read_text(), file.name
    assert "api_key: ${ATK_TEST_KEY}" in (tmp_path / "out" / "config.resolved.yaml").read_text()


def test_a_reporter_that_raises_is_disabled_and_the_run_goes_on(atk, site, tmp_path):
    site.add("atk-more", MORE_PIPELINES, {"more": "more_pipelines"})
    cfg = config(tmp_path, "pipeline: slow-echo\ntext: x")
    result = atk("run", cfg, "--progress", "exploding", "--progress", "jsonl", env=site.env())
    assert result.returncode == 0, result.stderr
    warnings = [line for line in stderr_lines(result) if "exploding" in line]
    assert warnings == ["atk: warning: progress reporter 'exploding' failed and is disabled"
                        " for this run: OSError: disk full"]
    assert events(tmp_path)[-1]["kind"] == "finish"  # the other reporter saw everything


def test_console_reporter_prints_plain_timestamped_lines_when_not_a_terminal(atk, demo_site, tmp_path):
    cfg = config(tmp_path, "pipeline: echo\ninput_text: a")
    result = atk("run", cfg, env=demo_site.env())
    lines = result.stdout.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  echo"
    assert re.match(stamp + r" +0%  started  output in ", lines[0]), lines[0]
    assert re.match(stamp + r" +100%  finished  done in ", lines[-1]), lines[-1]
    assert all(re.match(stamp, line) for line in lines)
    assert "\x1b[" not in result.stdout  # no terminal control codes in a log


def test_console_reporter_draws_a_live_bar_on_a_terminal(demo_site, tmp_path):
    """Run atk under a real pseudo-terminal and look for the bar, the ETA and the message."""
    import os
    import pty
    import subprocess

    cfg = config(tmp_path, "pipeline: echo\ninput_text: a")
    leader, follower = pty.openpty()
    env = demo_site.env(TERM="xterm", COLUMNS="120")
    process = subprocess.Popen([sys.executable, "-m", "atk_core", "run", str(cfg)],
                               stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(leader)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0
    assert "━" in text and "100%" in text and "eta" in text and "done in" in text
    assert "echo finished" in text


def test_init_writes_the_template_and_never_overwrites(atk, demo_site, tmp_path):
    result = atk("init", "echo", env=demo_site.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "echo.yaml").read_text()
    assert "# the text to echo" in written and "pipeline: echo" in written

    (tmp_path / "echo.yaml").write_text("mine")
    again = atk("init", "echo", env=demo_site.env(), cwd=tmp_path)
    assert again.returncode == 2
    assert stderr_lines(again) == ["atk: error: echo.yaml already exists; use --force to overwrite it"]
    assert (tmp_path / "echo.yaml").read_text() == "mine"

    forced = atk("init", "echo", "custom/path.yaml", "--force", env=demo_site.env(), cwd=tmp_path)
    assert forced.returncode == 0 and (tmp_path / "custom/path.yaml").read_text() == written

    unknown = atk("init", "ech", env=demo_site.env(), cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unknown pipeline 'ech'; did you mean 'echo'?" in unknown.stderr


def test_prompts_are_copied_out_for_overrides(atk, demo_site, tmp_path):
    dest = tmp_path / "my_prompts"
    result = atk("prompts", "echo", dest, env=demo_site.env())
    assert result.returncode == 0, result.stderr
    assert "Say hello to {name}" in (dest / "greet.yaml").read_text()
    again = atk("prompts", "echo", dest, env=demo_site.env())
    assert again.returncode == 2 and "already exist" in again.stderr
    assert atk("prompts", "echo", dest, "--force", env=demo_site.env()).returncode == 0


def test_package_data_is_read_from_a_zip(tmp_path, monkeypatch):
    """Pipelines read config.yaml and prompts/ through importlib resources, not the file system."""
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_pipeline/__init__.py", "def run(**kwargs):\n    pass\n")
        z.writestr("zipped_pipeline/config.yaml", "pipeline: zipped\n")
        z.writestr("zipped_pipeline/prompts/ask.yaml", "- {role: user, content: hi}\n")
    monkeypatch.syspath_prepend(str(archive))
    import zipped_pipeline

    pipeline = Pipeline(name="zipped", function=zipped_pipeline.run)
    assert pipeline.package == "zipped_pipeline"
    assert pipeline.config_template() == "pipeline: zipped\n"
    assert [p.name for p in pipeline.prompts().iterdir()] == ["ask.yaml"]
    assert pipeline.required_fields() == []


def test_model_roles_come_from_config_and_model_flag(atk, answers_site, tmp_path):
    cfg = tmp_path / "answers.yaml"
    cfg.write_text(
        f"pipeline: answers\ncount: 3\noutput_dir: {tmp_path / 'out'}\nprogress: [jsonl]\n"
        "models:\n  large: {backend: openai, model: gpt-x, concurrency: 2}\n"
    )
    only_ours = answers_site.env(ATK_LOAD_PLUGINS="answers")  # whatever else is installed
    unknown = atk("run", cfg, "--model", "large=nosuch", env=only_ours)
    assert unknown.returncode == 2
    assert stderr_lines(unknown) == [
        f"atk: error: {cfg}: models.large: unknown backend 'nosuch' (installed: openai, scripted)"]

    bad_flag = atk("run", cfg, "--model", "large", env=answers_site.env())
    assert bad_flag.returncode == 2 and "expected ROLE=BACKEND" in bad_flag.stderr

    # The openai role's options (model: gpt-x) are not handed to the scripted backend,
    # which would refuse an option it does not know; the pipeline code is untouched.
    swapped = atk("run", cfg, "--model", "large=scripted:fake-model", env=answers_site.env())
    assert swapped.returncode == 0, swapped.stderr
    assert len((tmp_path / "out" / "answers.jsonl").read_text().splitlines()) == 3
    # What the run saves about itself is what ran: the backend that answered, the role's policy kept.
    resolved = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())
    assert resolved["models"] == {"large": {"backend": "scripted", "model": "fake-model", "concurrency": 2}}
    swapped_hash = json.loads((tmp_path / "out" / "manifest.json").read_text())["config_hash"]
    other = atk("run", cfg, "--model", "large=scripted:another-model", env=answers_site.env())
    assert other.returncode == 0, other.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["config_hash"] != swapped_hash


def test_progress_from_the_command_line_takes_options_and_is_saved(atk, answers_site, tmp_path):
    cfg = config(tmp_path, "pipeline: answers\ncount: 2\nmodels: {large: {backend: scripted}}")
    events_file = tmp_path / "events.jsonl"
    result = atk("run", cfg, "--progress", f"{{jsonl: {{path: '{events_file}'}}}}",
                 env=answers_site.env())
    assert result.returncode == 0, result.stderr
    kinds = [json.loads(line)["kind"] for line in events_file.read_text().splitlines()]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    resolved = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())
    assert resolved["progress"] == [{"jsonl": {"path": str(events_file)}}]
    for value, problem in (
            ("{jsonl: {pth: x.jsonl}}",
             f"{cfg}: progress reporter 'jsonl': unknown option(s) pth; the jsonl reporter takes path"),
            ("{jsonl: x, console: y}", "--progress '{jsonl: x, console: y}': give a reporter name,"
                                       " or {name: {option: value}} with one name, e.g."
                                       " --progress '{jsonl: {path: events.jsonl}}'"),
            ("{jsonl: {path: [", "--progress '{jsonl: {path: [': invalid YAML")):
        refused = atk("run", cfg, "--progress", value, env=answers_site.env())
        assert refused.returncode == 2
        (line,) = stderr_lines(refused)
        assert line.startswith(f"atk: error: {problem}"), line


def test_scripted_backend_from_config_logs_every_call(atk, answers_site, tmp_path):
    calls = tmp_path / "calls.jsonl"
    cfg = tmp_path / "answers.yaml"
    cfg.write_text(
        f"pipeline: answers\ncount: 4\noutput_dir: {tmp_path / 'out'}\nprogress: [jsonl]\n"
        f"models:\n  large: {{backend: scripted, log: '{calls}',"
        " faults: [{kind: malformed, match: 'item 2?', times: 1}]}\n"
    )
    result = atk("run", cfg, env=answers_site.env())
    assert result.returncode == 0, result.stderr
    assert len(calls.read_text().splitlines()) == 5  # four questions, one retried
    answers = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl").read_text().splitlines()]
    assert [a["id"] for a in answers] == ["q00000", "q00001", "q00002", "q00003"]
    again = atk("run", cfg, env=answers_site.env())
    assert again.returncode == 0 and len(calls.read_text().splitlines()) == 5


CHECKED_PIPELINE = {
    "checked_pipeline/__init__.py": '''
        import json, os
        from atk_core import ConfigError, hookimpl, Pipeline

        def sized(*, output_dir, size=10, label="x", api_key=None, **kwargs):
            with open(os.path.join(output_dir, "sized.txt"), "w") as f:
                f.write(label * size)

        def vet(*, size, label, output_dir, api_key, **kwargs):
            with open(os.environ["CHECK_LOG"], "a") as f:  # what the check was given
                f.write(json.dumps({"size": size, "label": label, "extra": sorted(kwargs),
                                    "has_output_dir": bool(output_dir)}) + "\\n")
            if label == "bug":
                return {}["missing"]
            if not isinstance(size, int) or size < 1:
                raise ConfigError(f"size must be a whole number of at least 1, not {size!r}")
            if label == "":
                raise ValueError(f"label must not be empty (key {api_key})")

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="sized", function=sized, vet=vet))
    ''',
}


def test_a_pipelines_check_refuses_bad_values_before_anything_is_written(atk, site, tmp_path):
    site.add("atk-checked", CHECKED_PIPELINE, {"checked": "checked_pipeline"})
    log = tmp_path / "check.jsonl"
    env = site.env(CHECK_LOG=str(log), ATK_TEST_KEY="sk-hidden-42")
    cases = [
        ("size: lots", "size must be a whole number of at least 1, not 'lots'"),
        ("label: ''\napi_key: ${ATK_TEST_KEY}", "label must not be empty (key <redacted>)"),
    ]
    for body, message in cases:
        result = atk("run", config(tmp_path, "pipeline: sized\n" + body), env=env)
        assert result.returncode == 2, result.stderr
        assert stderr_lines(result) == [f"atk: error: {tmp_path / 'run.yaml'}: {message}"]
        assert not (tmp_path / "out").exists()  # nothing half-written

    # A bug in a check is the plugin's, said as such, in one line.
    result = atk("run", config(tmp_path, "pipeline: sized\nlabel: bug"), env=env)
    assert result.returncode != 0
    assert stderr_lines(result) == [
        "atk: error: pipeline 'sized': its vetter failed: KeyError: 'missing'"]
    assert not (tmp_path / "out").exists()

    # A good config passes, and the check saw the defaults and the extra fields.
    result = atk("run", config(tmp_path, "pipeline: sized\nsize: 3\nmore: 1"), "--progress", "jsonl",
                 env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "sized.txt").read_text() == "xxx"
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert seen[-1] == {"size": 3, "label": "x", "extra": ["models", "more", "prompt_overrides"], "has_output_dir": True}


def test_a_check_that_is_not_callable_is_the_plugins_error():
    with pytest.raises(PluginError, match="pipeline 'p': vet is not callable"):
        Pipeline(name="p", function=lambda **kw: None, vet="yes")


BACKENDS_WITH_OPTIONS = {
    "option_backends/__init__.py": '''
        from atk_core import Backend, Response, hookimpl

        class Fixed(Backend):
            """Names its options and takes no **kwargs: the default check applies."""
            name = "fixed"
            def __init__(self, model="m", answer="yes"):
                super().__init__(model=model)
                self.answer = answer
            async def chat(self, messages, **kwargs):
                return Response(text=self.answer)

        class Broken(Fixed):
            name = "broken"
            @classmethod
            def vet_options(cls, **options):
                raise RuntimeError("a bug in the check")

        @hookimpl
        def atk_register_model_backends(register):
            register("fixed", Fixed)
            register("broken", Broken)
    ''',
}


@pytest.mark.parametrize("models, line", [
    ("{large: {backend: fixed, temprature: 1}}",
     "{source}: models.large: backend 'fixed': unknown option(s) temprature; the fixed backend"
     " takes model, answer"),
    ("{large: {backend: scripted, faults: [{kind: explode}]}}",
     "{source}: models.large: backend 'scripted': fault kind must be one of rate_limited,"
     " transient, request, fatal, malformed, truncated, hang, not 'explode'"),
    ("{large: {backend: broken}}",
     "backend 'broken': its vet_options failed: RuntimeError: a bug in the check"),
], ids=["default-check", "backend-check", "bug-in-check"])
def test_backend_options_are_checked_before_anything_is_written(atk, demo_site, tmp_path, models, line):
    demo_site.add("atk-backends", BACKENDS_WITH_OPTIONS, {"backends": "option_backends"})
    cfg = config(tmp_path, f"pipeline: echo\ninput_text: hi\nmodels: {models}")
    result = atk("run", cfg, env=demo_site.env())
    assert result.returncode != 0
    assert stderr_lines(result) == ["atk: error: " + line.format(source=cfg)]
    assert not (tmp_path / "out").exists()



SUBCLASSED_BACKEND = {
    "subclassed_backend/__init__.py": '''
        from atk_core import hookimpl
        from atk_core import OpenAIBackend

        class Tuned(OpenAIBackend):
            """An OpenAI-compatible server with an option of its own, passed the rest."""
            name = "tuned"
            def __init__(self, gpu_memory=0.9, **options):
                super().__init__(**options)
                self.gpu_memory = gpu_memory

        @hookimpl
        def atk_register_model_backends(register):
            register("tuned", Tuned)
    ''',
}


def test_a_subclass_of_a_built_in_backend_keeps_its_own_options(atk, demo_site, tmp_path):
    # The parent's vet_options describes the parent's options, not the subclass's.
    demo_site.add("atk-tuned", SUBCLASSED_BACKEND, {"tuned": "subclassed_backend"})
    cfg = config(tmp_path, "pipeline: echo\ninput_text: hi\nmodels:\n"
                           "  large: {backend: tuned, gpu_memory: 0.5, model: m, base_url: 'http://127.0.0.1:9/v1'}")
    result = atk("run", cfg, "--progress", "jsonl", env=demo_site.env())
    assert result.returncode == 0, result.stderr
    # What neither takes is refused when the config is checked, naming both's options;
    # and the parent's annotations still hold for what is passed on.
    for options, problem in (
            ("modle: m", "unknown option(s) modle; the tuned backend takes gpu_memory, model,"
                         " base_url, api_key, structured_output, headers"),
            ("structured_output: grammar", "structured_output must be one of 'json_schema',"
                                           " 'json_object', 'none', not 'grammar'")):
        cfg = config(tmp_path, "pipeline: echo\ninput_text: hi\nmodels:\n"
                               f"  large: {{backend: tuned, {options}}}")
        result = atk("run", cfg, env=demo_site.env())
        assert result.returncode == 2
        assert stderr_lines(result) == [f"atk: error: {cfg}: models.large: backend 'tuned': {problem}"]
