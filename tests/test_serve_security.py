"""atk serve on a shared machine, attacked as another local user would: a token by default,
none in the process list, a cookie or a file; private run folders; configs sent to the server
confined to the run's folder, the allowed inputs and the allowed environment; YAML whose
aliases expand past the cap refused at once; and runs queued under --max-running."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serve_helpers import AtkServer, as_other_user, factual_config, factual_folder

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = factual_folder(tmp_path_factory.mktemp("secure-work"))
    os.chmod(folder, 0o755)  # the work folder itself is the user's business, not the server's
    return folder


@pytest.fixture(scope="module")
def server(work):
    server = AtkServer(work / "runs", "--allow-env", "ATK_TEST_ALLOWED_KEY",
                       env={**os.environ, "ATK_TEST_ALLOWED_KEY": "allowed-value",
                            "ATK_TEST_PRIVATE": "private-value"}, cwd=work)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished(server, work):
    text = factual_config(work, hf_token="literal-secret-in-config")
    run = server.start_run(text)
    return server.wait_for_status(run["id"], "done", "failed")


# -- another local user ------------------------------------------------------------------------


def test_another_user_cannot_start_a_run_or_read_a_config_log_or_output(server, finished, work):
    assert finished["status"] == "done"
    run_dir = server.runs_dir / finished["id"]
    files = [run_dir / "config.yaml", run_dir / "log.txt", server.runs_dir / "tasks.sqlite",
             *sorted((run_dir / "output").glob("*.jsonl"))]
    assert len(files) > 4
    probe = (
        "import json, sys, urllib.request, urllib.error\n"
        f"files = {[str(f) for f in files]!r}\n"
        "readable = []\n"
        "for name in files:\n"
        "    try:\n"
        "        open(name, 'rb').read(1); readable.append(name)\n"
        "    except OSError:\n"
        "        pass\n"
        f"request = urllib.request.Request('{server.url}api/runs', method='POST',\n"
        "    data=json.dumps({'config': 'pipeline: factual-qa'}).encode(),\n"
        "    headers={'Content-Type': 'application/json'})\n"
        "try:\n"
        "    status = urllib.request.urlopen(request, timeout=10).status\n"
        "except urllib.error.HTTPError as exc:\n"
        "    status = exc.code\n"
        "print(json.dumps({'readable': readable, 'status': status}))\n"
    )
    result = as_other_user(probe)
    assert result.returncode == 0, result.stderr
    import json

    seen = json.loads(result.stdout)
    assert seen == {"readable": [], "status": 401}
    assert (run_dir.stat().st_mode & 0o777) == 0o700
    assert (server.runs_dir.stat().st_mode & 0o777) == 0o700
    for path in files:
        assert (path.stat().st_mode & 0o077) == 0, (path, oct(path.stat().st_mode))


def test_the_token_is_in_no_process_list_cookie_or_file(server, finished):
    token = server.token.encode()
    for pid in (server.proc.pid, *_children(server.proc.pid)):
        assert token not in Path(f"/proc/{pid}/cmdline").read_bytes()
    status, _, headers = server.get(f"/?token={server.token}", token=False)
    assert status == 200 and "set-cookie" not in {k.lower() for k in headers}
    holding = [p for p in server.runs_dir.rglob("*") if p.is_file() and token in p.read_bytes()]
    assert holding == []


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


# -- configs sent to the server ---------------------------------------------------------------------


def test_a_reporter_cannot_write_outside_the_run_folder(server, work, tmp_path):
    outside = tmp_path / "stolen.jsonl"
    for path in (str(outside), "../../elsewhere.jsonl"):
        text = factual_config(work, progress=[{"jsonl": {"path": path}}])
        status, body, _ = server.post("/api/runs", {"config": text})
        assert status == 400, body
        assert "progress: jsonl.path" in body["detail"] and "outside the run's output folder" in body["detail"]
    assert not outside.exists()
    # A relative path is the run's own: inside its output folder.
    run = server.start_run(factual_config(work, progress=[{"jsonl": {"path": "events/progress.jsonl"}}]))
    run = server.wait_for_status(run["id"], "done", "failed")
    assert run["status"] == "done"
    assert (server.runs_dir / run["id"] / "output" / "events" / "progress.jsonl").stat().st_size > 0


def test_only_allowed_environment_variables_expand(server, work):
    text = factual_config(work, hf_token="${ATK_TEST_PRIVATE}")
    status, body, _ = server.post("/api/runs", {"config": text})
    assert status == 400
    assert body["detail"] == ("config.yaml: ${ATK_TEST_PRIVATE} is not an environment variable this server"
                              " lets a config use (allowed: ATK_TEST_ALLOWED_KEY); start atk serve with"
                              " --allow-env ATK_TEST_PRIVATE to allow it")
    text = factual_config(work, hf_token="${HOME:-fallback}")  # a default does not make it allowed
    assert server.post("/api/runs", {"config": text})[0] == 400
    status, body, _ = server.post("/api/validate", {"config": factual_config(work, hf_token="${ATK_TEST_ALLOWED_KEY}")})
    assert body["ok"], body


def test_inputs_outside_the_allowed_folders_are_refused(server, work, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.txt").write_text("The launch code is 1234.\n")
    status, body, _ = server.post("/api/runs", {"config": factual_config(work, input_dir=str(private))})
    assert status == 400
    assert body["detail"] == (f"config.yaml: input_dir names a path outside the folders this server may"
                              f" read ({work}); start atk serve with --allow-input FOLDER to let configs"
                              " read a folder")
    status, body, _ = server.post("/api/runs", {"config": factual_config(work, input_dir="../")})
    assert status == 400 and "outside the folders" in body["detail"]


def test_an_allowed_input_folder_may_be_read(work, tmp_path):
    other = factual_folder(tmp_path / "other")
    server = AtkServer(tmp_path / "runs", "--allow-input", work, "--allow-input", other, cwd=work)
    try:
        run = server.start_run(factual_config(work, input_dir=str(other / "documents")))
        assert server.wait_for_status(run["id"], "done", "failed")["status"] == "done"
    finally:
        server.stop()


def test_the_cli_keeps_its_full_power(work, tmp_path):
    """`atk run` is the user's own: any input, any variable, any reporter path."""
    config = tmp_path / "cli.yaml"
    events = tmp_path / "anywhere" / "events.jsonl"
    text = factual_config(work, hf_token="${ATK_TEST_PRIVATE}", progress=[{"jsonl": {"path": str(events)}}],
                          output_dir=str(tmp_path / "out"))
    config.write_text(text)
    from serve_helpers import with_fakes

    result = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)], cwd=tmp_path,
                            env=with_fakes({**os.environ, "ATK_TEST_PRIVATE": "x"}),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert events.stat().st_size > 0


def test_yaml_whose_aliases_expand_past_the_cap_is_refused_at_once(server):
    lines = ["pipeline: factual-qa", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 13)]  # 24 aliases: under the cap
    text = "\n".join(lines) + "\n"
    assert len(text) < 8192
    started = time.monotonic()
    status, body, _ = server.post("/api/validate", {"config": text}, timeout=30)
    assert status == 200 and not body["ok"]
    assert "values once its aliases (*name) are expanded" in body["error"]
    status, body, _ = server.post("/api/runs", {"config": text}, timeout=30)
    assert status == 400 and "once its aliases" in body["detail"]
    print(f"refused in {time.monotonic() - started:.3f}s")  # the figure; not asserted (shared machine)


# -- the queue ---------------------------------------------------------------------------------------


def test_runs_wait_in_a_queue_and_start_in_order(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--max-running", "1", cwd=work)
    try:
        ids = [server.start_run(factual_config(work, delay=0.05, concurrency=1))["id"] for _ in range(3)]
        statuses = [server.run(i)["status"] for i in ids]
        assert statuses[0] == "running" and statuses[1:] == ["queued", "queued"]
        runs = [server.wait_for_status(i, "done", "failed", timeout=240) for i in ids]
        assert [r["status"] for r in runs] == ["done"] * 3
        for earlier, later in zip(runs, runs[1:]):
            assert later["started"] >= earlier["finished"]  # one at a time, in order
    finally:
        server.stop()


def test_a_queued_run_can_be_cancelled_and_a_restart_keeps_the_queue(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--max-running", "1", cwd=work)
    try:
        first, second, third = (server.start_run(factual_config(work, delay=0.2, concurrency=1))["id"]
                                for _ in range(3))
        status, run, _ = server.post(f"/api/runs/{second}/cancel")
        assert status == 200 and run["status"] == "cancelled"
        assert server.run(second)["started"] is None  # it never ran
        assert server.run(third)["status"] == "queued"
    finally:
        server.stop()
    again = AtkServer(tmp_path / "runs", "--max-running", "1", cwd=work)
    try:
        assert again.run(first)["status"] in ("interrupted", "done")
        done = again.wait_for_status(third, "done", "failed", timeout=240)
        assert done["status"] == "done"
        assert again.run(second)["status"] == "cancelled"
    finally:
        again.stop()


def test_paths_that_only_look_inside_or_do_not_exist_yet_are_refused(server, work, tmp_path):
    sneaky = "/" + "./" * 2100 + "etc"  # long, and /etc once normalised
    later = str(tmp_path / "not-yet" / "data.jsonl")  # could be a symlink by the time it is read
    for value in (sneaky, later):
        status, body, _ = server.post("/api/runs", {"config": factual_config(work, input_dir=value)})
        assert status == 400 and "outside the folders this server may read" in body["detail"], body
    # Another run's files are not inputs, though the runs folder is inside the working folder.
    first = server.start_run(factual_config(work))
    server.wait_for_status(first["id"], "done", "failed")
    other = str(server.runs_dir / first["id"] / "output")
    status, body, _ = server.post("/api/runs", {"config": factual_config(work, input_dir=other)})
    assert status == 400 and "in the runs folder, or holding it" in body["detail"], body


def test_a_reporter_path_may_not_use_a_variable(server, work):
    text = factual_config(work, progress=[{"jsonl": {"path": "${ATK_TEST_ALLOWED_KEY:-x}/../../e.jsonl"}}])
    status, body, _ = server.post("/api/runs", {"config": text})
    assert status == 400 and "may not use ${...}" in body["detail"], body


def test_the_scripted_backend_needs_the_servers_consent(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--no-scripted", cwd=work)
    try:
        status, body, _ = server.post("/api/runs", {"config": factual_config(work)})
        assert status == 400 and "the scripted backend runs code a config names" in body["detail"]
    finally:
        server.stop()


def test_a_run_gets_only_the_allowed_part_of_the_servers_environment(work, tmp_path):
    """A backend that falls back on OPENAI_API_KEY must not find the server's."""
    from atk_core.testing import FakeOpenAIServer

    with FakeOpenAIServer() as model_server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-server-own-key"}
        server = AtkServer(tmp_path / "runs", env=env, cwd=work)
        try:
            role = {"backend": "openai", "model": "m", "base_url": model_server.url}
            text = factual_config(work, models={"small": role, "large": role}, verdicts="skip",
                                  answers="sentence")
            run = server.start_run(text)
            server.wait_for_status(run["id"], "done", "failed")
        finally:
            server.stop()
        sent = {r["authorization"] for r in model_server.requests}
    assert sent and "Bearer sk-server-own-key" not in sent


def test_a_token_file_others_can_read_is_refused(work, tmp_path):
    from atk_core.testing import run_cli

    path = tmp_path / "token.txt"
    path.write_text("file-token-7890123456\n")
    os.chmod(path, 0o644)
    result = run_cli("serve", "--port", "0", "--runs-dir", tmp_path / "runs", "--token-file", path, timeout=60)
    assert result.returncode == 2 and "can be read by other users (mode 0o644)" in result.stderr


def test_a_value_that_is_no_path_is_no_trouble_when_the_working_folder_is_not_allowed(work, tmp_path):
    other = factual_folder(tmp_path / "other")
    server = AtkServer(tmp_path / "runs", "--allow-input", other, cwd=work)
    try:
        text = factual_config(work, input_dir=str(other / "documents"), base_model="HuggingFaceTB/SmolLM2-135M",
                              note="see ./notes/today for why")
        status, body, _ = server.post("/api/validate", {"config": text})
        assert body["ok"], body
        status, body, _ = server.post("/api/validate", {"config": factual_config(work, input_dir="documents")})
        assert not body["ok"] and "outside the folders this server may read" in body["error"]
    finally:
        server.stop()


def test_model_names_like_paths_pass_and_the_working_folder_itself_does_not(server, work):
    role = {"backend": "openai", "model": "/models/Qwen3-8B-Q4_K_M.gguf", "base_url": "http://127.0.0.1:9/v1"}
    text = factual_config(work, models={"small": role, "large": role}, note="/no_think answer briefly")
    status, body, _ = server.post("/api/validate", {"config": text})
    assert body["ok"], body
    status, body, _ = server.post("/api/validate", {"config": factual_config(work, input_dir=".")})
    assert not body["ok"] and "in the runs folder, or holding it" in body["error"], body


def test_the_short_form_of_the_scripted_backend_needs_consent_too(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--no-scripted", cwd=work)
    try:
        text = factual_config(work, models={"small": "scripted:x", "large": "scripted"})
        status, body, _ = server.post("/api/validate", {"config": text})
        assert not body["ok"] and "the scripted backend runs code" in body["error"], body
    finally:
        server.stop()
