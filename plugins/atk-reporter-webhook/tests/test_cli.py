"""End to end: `atk run` with the installed webhook reporter and a tiny pipeline distribution.

The reporter is the one installed in this environment (scripts/setup.sh
installs every plugin); the pipeline is a throw-away distribution on
PYTHONPATH. ATK_LOAD_PLUGINS keeps other installed plugins out of the run.
"""

from __future__ import annotations

import pytest

from atk_core.testing import PluginSite, run_cli, stderr_lines

TICK_PIPELINE = {
    "webhook_tick_pipeline/__init__.py": '''
        from atk_core import hookimpl, Pipeline, set_progress

        def tick(*, steps, output_dir, task_id=None, **kwargs):
            """Reports progress `steps` times."""
            for i in range(steps):
                set_progress(task_id, (i + 1) / steps, f"step {i + 1} of {steps}")

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="tick", function=tick, description="Reports progress"))
    ''',
    "webhook_tick_pipeline/config.yaml": '''
        pipeline: tick
        steps: 5
        output_dir: ./out
    ''',
}

TOKEN = "hook-token-5f3a9c1e"


@pytest.fixture
def site(tmp_path) -> PluginSite:
    site = PluginSite(tmp_path / "site")
    site.add("atk-pipeline-webhook-tick", TICK_PIPELINE, {"webhooktick": "webhook_tick_pipeline"})
    return site


def env(site):
    return site.env(HOOK_TOKEN=TOKEN, ATK_LOAD_PLUGINS="webhooktick,webhook")


def write_config(tmp_path, url):
    config = tmp_path / "tick.yaml"
    config.write_text(
        "pipeline: tick\n"
        "steps: 5\n"
        f"output_dir: {tmp_path / 'out'}\n"
        "progress:\n"
        "  - webhook:\n"
        f"      webhook_url: {url}\n"
        '      headers: {Authorization: "Bearer ${HOOK_TOKEN}"}\n'
        "      interval: 0.2\n"
    )
    return config


def webhook_lines(result):
    return [line for line in stderr_lines(result) if "webhook" in line]


def test_a_run_posts_every_event_with_the_header_and_never_shows_the_token(
        site, receiver, tmp_path):
    result = run_cli("run", write_config(tmp_path, receiver.url), env=env(site))
    assert result.returncode == 0, result.stderr
    events = receiver.events()
    assert [e["kind"] for e in events] == ["start"] + ["progress"] * 5 + ["finish"]
    assert [e["progress"] for e in events] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    assert [e["message"] for e in events[1:6]] == [f"step {i} of 5" for i in range(1, 6)]
    assert len({e["task_id"] for e in events}) == 1 and events[0]["pipeline"] == "tick"
    assert len(receiver.posts) < len(events)  # batched
    assert {p["headers"]["Authorization"] for p in receiver.posts} == {f"Bearer {TOKEN}"}
    assert webhook_lines(result) == []
    saved = (tmp_path / "out" / "config.resolved.yaml").read_text()
    assert "Bearer ${HOOK_TOKEN}" in saved
    for text in (result.stdout, result.stderr, saved):
        assert TOKEN not in text


def test_a_run_with_the_receiver_down_succeeds_with_one_warning_and_a_summary(
        site, dead_url, tmp_path):
    result = run_cli("run", write_config(tmp_path, dead_url), env=env(site))
    assert result.returncode == 0, result.stderr
    assert webhook_lines(result) == [
        f"atk: warning: webhook reporter: {dead_url} is not answering (ConnectionRefusedError);"
        " progress events are being dropped",
        f"atk: warning: webhook reporter: 7 of 7 progress events were not delivered to {dead_url}",
    ]
    assert stderr_lines(result)[-1].startswith("atk: tick finished in ")
    assert TOKEN not in result.stdout + result.stderr


def test_a_bad_webhook_url_is_a_config_error(site, tmp_path):
    result = run_cli("run", write_config(tmp_path, "ftp://127.0.0.1/hook"), env=env(site))
    assert result.returncode == 2
    assert stderr_lines(result) == [
        "atk: error: progress reporter 'webhook' could not start:"
        " webhook_url must start with http:// or https://, not ftp:"
    ]
    assert not (tmp_path / "out" / "config.resolved.yaml").exists()


def test_a_misspelt_or_wrong_option_is_refused_before_anything_starts(site, tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    for setting, problem in (
            ("progress.0.webhook.intervall=2",
             "unknown option(s) intervall; the webhook reporter takes webhook_url, url, headers,"
             " interval, timeout, retries, max_queue, close_timeout"),
            ("progress.0.webhook.retries=lots", "retries must be a whole number of at least 0, not 'lots'")):
        result = run_cli("run", config, "--set", setting, env=env(site))
        assert result.returncode == 2
        assert stderr_lines(result) == [
            f"atk: error: {config}: progress reporter 'webhook': {problem}"]
        assert not (tmp_path / "out").exists()


def test_progress_webhook_without_options_names_the_missing_url(site, receiver, tmp_path):
    config = write_config(tmp_path, receiver.url)
    result = run_cli("run", config, "--progress", "webhook", env=env(site))
    assert result.returncode == 2
    assert stderr_lines(result) == [
        "atk: error: progress reporter 'webhook' could not start: the webhook reporter needs"
        " webhook_url: the http:// or https:// URL to POST progress events to"
    ]


def test_webhook_is_listed_as_a_reporter(site):
    result = run_cli("list", "reporters", env=env(site))
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("webhook ")]
    assert "atk-reporter-webhook" in line and "POSTs progress events as JSON" in line
