"""Plugin discovery and isolation, shown through the real CLI with real distributions."""

import json

from support import stderr_lines

BROKEN_IMPORT = {
    "broken_import/__init__.py": '''
        import a_module_that_does_not_exist
    ''',
}

RAISING_HOOK = {
    "raising_hook/__init__.py": '''
        from atk_core import hookimpl, Pipeline

        def never(**kwargs):
            pass

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="half-registered", function=never))

        @hookimpl
        def atk_register_progress_reporters(register):
            raise RuntimeError("reporter setup exploded")
    ''',
}


def colliding(dist_module):
    return {
        f"{dist_module}/__init__.py": '''
            from atk_core import hookimpl, Pipeline

            def shared(**kwargs):
                pass

            @hookimpl
            def atk_register_pipelines(register):
                register(Pipeline(name="shared", function=shared))
        ''',
    }


def list_json(atk, site, **env):
    result = atk("list", "--json", env=site.env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result


def names(listing, kind):
    return [entry["name"] for entry in listing[kind]]


def test_atk_register_pipelines_shows_pipeline_with_its_distribution(atk, demo_site):
    listing, result = list_json(atk, demo_site)
    (echo,) = [e for e in listing["pipelines"] if e["name"] == "echo"]
    assert echo == {"name": "echo", "distribution": "atk-pipeline-demo", "version": "2.3",
                    "description": "Echo the input text", "outputs": []}
    assert result.stderr == ""


def test_builtin_reporters_register_through_the_same_hook(atk, site):
    plugins = json.loads(atk("plugins", "--json", env=site.env()).stdout)
    (builtin,) = [p for p in plugins if p["name"] == "atk_core.engine.reporters"]
    assert builtin["builtin"] and builtin["hooks"] == ["atk_register_progress_reporters"]
    listing, _ = list_json(atk, site)
    assert {"console", "jsonl"} <= set(names(listing, "reporters"))


def test_import_error_disables_only_that_plugin(atk, demo_site):
    demo_site.add("atk-broken", BROKEN_IMPORT, {"broken": "broken_import"})
    listing, result = list_json(atk, demo_site)
    assert "echo" in names(listing, "pipelines")
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert "'broken'" in lines[0] and "atk-broken" in lines[0]
    assert "a_module_that_does_not_exist" in lines[0]

    plugins = json.loads(atk("plugins", "--json", env=demo_site.env()).stdout)
    by_name = {p["name"]: p for p in plugins}
    assert "ModuleNotFoundError" in by_name["broken"]["error"]
    assert by_name["demo"]["error"] is None
    assert by_name["demo"]["hooks"] == ["atk_register_pipelines"]


def test_hook_that_raises_disables_the_whole_plugin(atk, demo_site):
    demo_site.add("atk-raising", RAISING_HOOK, {"raising": "raising_hook"})
    listing, result = list_json(atk, demo_site)
    # Its pipeline registered before the other hook raised, and is discarded with it.
    assert "half-registered" not in names(listing, "pipelines")
    assert "echo" in names(listing, "pipelines")
    (line,) = stderr_lines(result)
    assert "atk_register_progress_reporters raised RuntimeError: reporter setup exploded" in line

    table = atk("plugins", env=demo_site.env())
    row = [r for r in table.stdout.splitlines() if r.startswith("raising")]
    assert row and "ERROR" in row[0] and "reporter setup exploded" in row[0]


def test_same_name_from_two_distributions_is_an_error_naming_both(atk, site, tmp_path):
    site.add("atk-pipeline-one", colliding("one_plugin"), {"one": "one_plugin"})
    site.add("atk-pipeline-two", colliding("two_plugin"), {"two": "two_plugin"}, version="0.5")
    result = atk("list", env=site.env())
    assert any("'shared'" in line and "atk-pipeline-one 1.0" in line
               and "atk-pipeline-two 0.5" in line for line in stderr_lines(result))

    config = tmp_path / "shared.yaml"
    config.write_text(f"pipeline: shared\noutput_dir: {tmp_path / 'out'}\n")
    run = atk("run", config, env=site.env())
    assert run.returncode == 2
    last = stderr_lines(run)[-1]
    assert last.startswith("atk: error: ")
    assert "atk-pipeline-one" in last and "atk-pipeline-two" in last
    assert not (tmp_path / "out").exists()


def test_atk_load_plugins_selects_entry_points(atk, demo_site):
    demo_site.add("atk-pipeline-other", colliding("other_plugin"), {"other": "other_plugin"})
    builtin = "exam-eval"  # atk-core's own pipeline (atk eval): built-ins always load
    listing, _ = list_json(atk, demo_site, ATK_LOAD_PLUGINS="demo")
    assert names(listing, "pipelines") == ["echo", builtin]

    listing, _ = list_json(atk, demo_site, ATK_LOAD_PLUGINS="")
    assert names(listing, "pipelines") == [builtin]
    assert "console" in names(listing, "reporters")  # built-ins still load

    # A distribution name works as well as an entry point name.
    listing, _ = list_json(atk, demo_site, ATK_LOAD_PLUGINS="atk-pipeline-other")
    assert names(listing, "pipelines") == [builtin, "shared"]

    listing, result = list_json(atk, demo_site, ATK_LOAD_PLUGINS="demo,nosuch")
    assert names(listing, "pipelines") == ["echo", builtin]
    assert any("nosuch" in line for line in stderr_lines(result))


def test_misspelled_hook_is_caught(atk, site):
    site.add("atk-typo", {"typo_plugin.py": '''
        from atk_core import hookimpl

        @hookimpl
        def atk_register_pipeline(register):
            pass
    '''}, {"typo": "typo_plugin"})
    result = atk("plugins", "--json", env=site.env())
    (typo,) = [p for p in json.loads(result.stdout) if p["name"] == "typo"]
    assert "unknown hook 'atk_register_pipeline'" in typo["error"]
    assert "did you mean 'atk_register_pipelines'" in typo["error"]


def test_unmarked_hook_function_is_caught(atk, site):
    site.add("atk-unmarked", {"unmarked_plugin.py": '''
        def atk_register_pipelines(register):
            pass
    '''}, {"unmarked": "unmarked_plugin"})
    result = atk("plugins", "--json", env=site.env())
    (plugin,) = [p for p in json.loads(result.stdout) if p["name"] == "unmarked"]
    assert "not marked with @atk_core.hookimpl" in plugin["error"]


def test_register_with_wrong_arguments_is_a_plugin_error(atk, site):
    site.add("atk-wrong", {"wrong_plugin.py": '''
        from atk_core import hookimpl

        @hookimpl
        def atk_register_pipelines(register):
            register("not a Pipeline")
    '''}, {"wrong": "wrong_plugin"})
    result = atk("plugins", "--json", env=site.env())
    (plugin,) = [p for p in json.loads(result.stdout) if p["name"] == "wrong"]
    assert "register() takes a Pipeline, not str" in plugin["error"]


IMPORT_MARKER = {
    "marker_plugin/__init__.py": '''
        import os
        from pathlib import Path
        Path(os.environ["ATK_TEST_MARKER"]).write_text("imported")

        import click
        from atk_core import hookimpl

        @hookimpl
        def atk_register_commands(cli):
            @cli.command()
            @click.argument("name")
            def hello(name):
                """Greet NAME (a plugin command)."""
                click.echo(f"hello {name} from a plugin")
    ''',
}


def test_help_and_version_import_no_plugin(atk, site, tmp_path):
    marker = tmp_path / "imported"
    site.add("atk-marker", IMPORT_MARKER, {"marker": "marker_plugin"})
    env = site.env(ATK_TEST_MARKER=str(marker))
    for args in (["--help"], ["--version"], ["run", "--help"]):
        result = atk(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert not marker.exists(), f"atk {' '.join(args)} imported a plugin"
    assert atk("list", env=env).returncode == 0
    assert marker.exists()


def test_atk_register_commands_adds_a_command_lazily(atk, site, tmp_path):
    site.add("atk-marker", IMPORT_MARKER, {"marker": "marker_plugin"})
    env = site.env(ATK_TEST_MARKER=str(tmp_path / "m"))
    result = atk("hello", "world", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello world from a plugin\n"
    unknown = atk("nosuchcommand", env=env)
    assert unknown.returncode == 2
    assert "No such command 'nosuchcommand'" in unknown.stderr


def test_third_party_reporter_receives_every_event_in_order(atk, demo_site, tmp_path):
    demo_site.add("atk-reporter-record", {"record_reporter.py": '''
        import json
        from atk_core import hookimpl

        class RecordReporter:
            """Appends each event to a file."""
            def __init__(self, path, output_dir=None):
                self.file = open(path, "a")
            def handle(self, event):
                self.file.write(json.dumps(event.to_dict()) + "\\n")
            def close(self):
                self.file.write("closed\\n")
                self.file.close()

        @hookimpl
        def atk_register_progress_reporters(register):
            register("record", RecordReporter)
    '''}, {"record": "record_reporter"})
    events_file = tmp_path / "events.txt"
    config = tmp_path / "echo.yaml"
    config.write_text(
        "pipeline: echo\ninput_text: hi\n"
        f"output_dir: {tmp_path / 'out'}\n"
        f"progress:\n  - record: {{path: {events_file}}}\n"
    )
    result = atk("run", config, env=demo_site.env())
    assert result.returncode == 0, result.stderr
    *lines, closed = events_file.read_text().splitlines()
    assert closed == "closed"
    events = [json.loads(line) for line in lines]
    assert [e["kind"] for e in events] == ["start"] + ["progress"] * 4 + ["finish"]
    assert [e["progress"] for e in events] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [e["message"] for e in events[1:5]] == [f"step {i} of 4" for i in range(1, 5)]
    assert len({e["task_id"] for e in events}) == 1
    assert all(e["pipeline"] == "echo" for e in events)
    times = [e["time"] for e in events]
    assert times == sorted(times)
