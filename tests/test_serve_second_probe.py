"""atk serve, attacked a second time as another local user and as a holder of the token: a runs
folder another user prepared, a task store whose commands were changed, a refused backend let
in by a ${VAR:-default}, allowed secrets in error messages, reporter options in the process
list, a model option naming any file, connections that never finish, links out of an allowed
folder, guessable tokens, an unbounded queue and a huge flat YAML list. Each test makes the
attack as it was made and checks that it no longer works."""

import json
import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from serve_helpers import (
    OTHER_UID, AtkServer, as_other_user, factual_config, factual_folder, group_members, with_fakes,
)
from atk_core.testing import run_cli

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = factual_folder(tmp_path_factory.mktemp("probe-work"))
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture
def scratch():
    """A shared scratch folder like /tmp (world-writable, sticky), that another user can reach
    (pytest's own temporary folders are private to this user)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="atk-scratch-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def serve_refused(runs_dir, cwd) -> subprocess.CompletedProcess:
    result = run_cli("serve", "--port", "0", "--runs-dir", runs_dir, cwd=cwd, timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("atk: error: cannot use the runs folder"), lines
    return result


# -- 1. a runs folder another user made first ------------------------------------------------------


def test_a_runs_folder_another_user_prepared_is_refused_and_nothing_is_written_through_it(work, tmp_path,
                                                                                           scratch):
    victim = tmp_path / "victim.txt"  # a file of the server's user
    victim.write_text("precious\n")
    runs = scratch / "runs"
    prepared = as_other_user(
        "import os, sqlite3\n"
        f"os.mkdir({str(runs)!r}, 0o777); os.chmod({str(runs)!r}, 0o777)\n"
        f"os.symlink({str(victim)!r}, {str(runs / 'serve.lock')!r})\n"
        f"open({str(runs / 'tasks.sqlite')!r}, 'w').close(); os.chmod({str(runs / 'tasks.sqlite')!r}, 0o666)\n")
    assert prepared.returncode == 0, prepared.stderr
    result = serve_refused(runs, work)
    assert f"uid {OTHER_UID}" in result.stderr and "belongs to another user" in result.stderr
    assert victim.read_text() == "precious\n"
    assert os.path.getsize(runs / "tasks.sqlite") == 0


def test_a_runs_folder_of_ones_own_with_another_users_file_in_it_is_refused(work, scratch):
    runs = scratch / "runs"
    runs.mkdir()
    os.chmod(runs, 0o777)  # made with a careless umask: others could add files
    planted = as_other_user(f"open({str(runs / 'tasks.sqlite')!r}, 'w').close()")
    assert planted.returncode == 0, planted.stderr
    result = serve_refused(runs, work)
    assert "tasks.sqlite belongs to another user" in result.stderr


def test_a_link_where_the_server_opens_a_file_is_refused(work, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "serve.lock").symlink_to(victim)  # even one of the user's own making
    result = serve_refused(runs, work)
    assert "serve.lock is a link" in result.stderr
    assert victim.read_text() == "precious\n"


def test_a_runs_folder_others_could_swap_is_refused(work, scratch):
    """Under a folder others may rename things in (world-writable without the sticky bit),
    another user could swap the runs folder for theirs between a check and a run's start."""
    shared = scratch / "team"
    shared.mkdir()
    os.chmod(shared, 0o777)
    result = serve_refused(shared / "runs", work)
    assert f"other users can rename things in {shared}" in result.stderr
    assert not (shared / "runs").exists()


def test_a_runs_folder_given_through_another_users_link_is_refused_untouched(work, tmp_path, scratch):
    victim = tmp_path / "victim"
    victim.mkdir()
    os.chmod(victim, 0o755)
    made = as_other_user(f"import os; os.symlink({str(victim)!r}, {str(scratch / 'atk-runs')!r})")
    assert made.returncode == 0, made.stderr
    result = serve_refused(scratch / "atk-runs", work)
    assert "is a link that another user" in result.stderr
    assert victim.stat().st_mode & 0o777 == 0o755 and list(victim.iterdir()) == []


def test_a_runs_folder_in_a_shared_place_is_made_private_and_used(work, scratch):
    server = AtkServer(scratch / "runs", cwd=work)
    try:
        run = server.wait_for_status(server.start_run(factual_config(work))["id"], "done", "failed")
        assert run["status"] == "done"
        assert (scratch / "runs").stat().st_mode & 0o777 == 0o700
        assert "can be changed by other users" not in server.output()  # sticky, like /tmp
    finally:
        server.stop()


def test_a_command_written_into_the_task_store_is_never_run(work, tmp_path):
    """What a queued run executes is made again from its id and its checked config."""
    mark = tmp_path / "pwned"
    server = AtkServer(tmp_path / "runs", "--max-running", "1", cwd=work)
    try:
        first = server.start_run(factual_config(work, delay=0.3, concurrency=1))["id"]
        second = server.start_run(factual_config(work))["id"]
        assert server.run(second)["status"] == "queued"
    finally:
        server.stop()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with sqlite3.connect(tmp_path / "runs" / "tasks.sqlite") as db:
        db.execute("UPDATE runs SET command = ?, run_dir = ? WHERE id = ?",
                   (json.dumps(["/bin/sh", "-c", f"touch {mark}"]), str(elsewhere), second))
    again = AtkServer(tmp_path / "runs", "--max-running", "1", cwd=work)
    try:
        assert again.run(first)["status"] in ("interrupted", "done")
        done = again.wait_for_status(second, "done", "failed", timeout=240)
        assert done["status"] == "done", again.log_of(second)
        assert (tmp_path / "runs" / second / "output" / "qa_pairs.jsonl").stat().st_size > 0
    finally:
        again.stop()
    assert not mark.exists()
    assert list(elsewhere.iterdir()) == []


# -- 2. a refused backend through a ${VAR:-default} ----------------------------------------------------


def test_a_default_cannot_name_the_scripted_backend(work, tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    mark = tmp_path / "imported"
    (modules / "atk_probe_payload.py").write_text(
        f"open({str(mark)!r}, 'w').write('ran')\ndef respond(request):\n    return 'x'\n")
    env = {**os.environ, "PYTHONPATH": str(modules)}
    env.pop("ATK_PROBE_UNSET", None)
    server = AtkServer(tmp_path / "runs", "--no-scripted", "--allow-env", "ATK_PROBE_UNSET", env=env, cwd=work)
    try:
        role = {"backend": "${ATK_PROBE_UNSET:-scripted}", "respond": "atk_probe_payload:respond"}
        text = factual_config(work, models={"small": role, "large": role})
        status, body, _ = server.post("/api/validate", {"config": text})
        assert status == 200 and not body["ok"], body
        assert "the scripted backend runs code a config names" in body["error"]
        status, body, _ = server.post("/api/runs", {"config": text})
        assert status == 400 and "the scripted backend" in body["detail"]
        short = factual_config(work, models={"small": "${ATK_PROBE_UNSET:-scripted}:x", "large": role})
        assert not server.post("/api/validate", {"config": short})[1]["ok"]
    finally:
        server.stop()
    assert not mark.exists()


# -- 3. allowed secrets in error messages ----------------------------------------------------------------


def test_allowed_secrets_never_come_back_in_an_answer(work, tmp_path):
    secret = "sk-probe-4f1e9c2b7a6d"
    env = {**os.environ, "ATK_PROBE_KEY": secret}
    server = AtkServer(tmp_path / "runs", "--allow-env", "ATK_PROBE_KEY", env=env, cwd=work)
    try:
        attempts = [
            factual_config(work, pipeline="${ATK_PROBE_KEY}"),
            factual_config(work, chunk_size="${ATK_PROBE_KEY}"),
            factual_config(work, answers="${ATK_PROBE_KEY}"),
            factual_config(work, models={"small": {"backend": "${ATK_PROBE_KEY}"},
                                         "large": {"backend": "${ATK_PROBE_KEY}"}}),
            factual_config(work, input_dir="/${ATK_PROBE_KEY}"),
        ]
        for text in attempts:
            for path in ("/api/validate", "/api/runs"):
                status, body, _ = server.post(path, {"config": text})
                assert status in (200, 400), body
                shown = json.dumps(body)
                assert (body.get("ok") is False or status == 400), body
                assert secret not in shown and "4f1e9c2b7a6d" not in shown, (path, shown)
        status, body, _ = server.post("/api/validate", {"config": attempts[0]})
        assert "unknown pipeline '<redacted>'" in body["error"], body
    finally:
        server.stop()
    # A long key that a message shows cut short is hidden too.
    secret = "sk-proj-" + "Zq81xT0pLm" * 16
    server = AtkServer(tmp_path / "runs2", "--allow-env", "ATK_PROBE_KEY", env={**os.environ, "ATK_PROBE_KEY": secret},
                       cwd=work)
    try:
        for field in ("chunk_size", "seed", "answers"):
            status, body, _ = server.post("/api/validate", {"config": factual_config(work, **{field: "${ATK_PROBE_KEY}"})})
            assert not body["ok"] and "sk-proj-Zq81" not in json.dumps(body), body
        listing = json.dumps(server.get("/api/runs")[1])
        assert secret not in listing
    finally:
        server.stop()


# -- 4. reporter options in the process list ---------------------------------------------------------------


def test_a_runs_settings_are_in_a_private_file_not_its_command_line(work, tmp_path):
    url = "http://probe-user:probe-pass-6d2@127.0.0.1:9/hook?key=probe-key-8c1"
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        text = factual_config(work, delay=0.2, concurrency=1, progress=["console", {"webhook": {"url": url}}])
        run = server.wait_for(server.start_run(text)["id"], lambda r: r["pid"] and r["status"] == "running",
                              what="a running process")
        seen = []
        for pid in [run["pid"], *group_members(run["pid"])]:
            try:
                seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace"))
            except OSError:
                pass
        assert seen and any("--set-file" in line for line in seen)
        for line in seen:
            assert "probe-pass-6d2" not in line and "probe-key-8c1" not in line and "output_dir" not in line
        settings = tmp_path / "runs" / run["id"] / "settings.txt"
        assert settings.stat().st_mode & 0o777 == 0o600
        assert "probe-key-8c1" in settings.read_text()
        done = server.wait_for_status(run["id"], "done", "failed", timeout=240)
        assert done["status"] == "done", server.log_of(run["id"])
        assert (tmp_path / "runs" / run["id"] / "output" / "qa_pairs.jsonl").exists()
    finally:
        server.stop()


# -- 5. a model option that names any file -------------------------------------------------------------------


def test_a_llamacpp_model_file_outside_the_allowed_folders_is_refused(work, tmp_path):
    outside = tmp_path / "private" / "weights.gguf"
    outside.parent.mkdir()
    outside.write_bytes(b"GGUF not really")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        for role in ({"backend": "llamacpp", "model": str(outside)},
                     {"backend": "llamacpp", "model": "/etc/hostname"},
                     {"backend": "llamacpp", "model": str(tmp_path / "later" / "x.gguf")},  # not there yet
                     f"llamacpp:{outside}"):
            text = factual_config(work, models={"small": role, "large": role})
            status, body, _ = server.post("/api/validate", {"config": text})
            assert not body["ok"] and "models.small.model names a path outside the folders" in body["error"], (role, body)
        # A model inside the allowed folder is fine to name (its check then reads the file).
        inside = work / "models" / "weights.gguf"
        inside.parent.mkdir(exist_ok=True)
        inside.write_bytes(b"GGUF not really")
        role = {"backend": "llamacpp", "model": str(inside)}
        body = server.post("/api/validate", {"config": factual_config(work, models={"small": role, "large": role})})[1]
        assert "outside the folders" not in (body.get("error") or ""), body
    finally:
        server.stop()


# -- 6. connections that never finish ------------------------------------------------------------------------


def test_connections_that_never_finish_their_headers_are_closed(work, tmp_path):
    server = AtkServer(tmp_path / "runs", cwd=work)
    held = []
    try:
        before = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
        # The server still answers others while they are held.
        assert server.get("/api/info")[0] == 200
        deadline = time.monotonic() + 90  # a hang detector; the server closes them after 10 s
        open_ = list(held)
        while open_ and time.monotonic() < deadline:
            still = []
            for sock in open_:
                sock.settimeout(0.05)
                try:
                    if sock.recv(1) == b"":
                        continue
                except socket.timeout:
                    still.append(sock)
                    continue
                except OSError:
                    continue  # reset: closed by the server
            open_ = still
            time.sleep(0.2)
        assert not open_, f"{len(open_)} connections still held"
        assert server.get("/api/info")[0] == 200
        after = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        print(f"server file handles: {before} before, {after} after")
        assert after < before + 20
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_bodies_trickled_without_the_token_or_after_a_get_are_not_waited_for(work, tmp_path):
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        for head in (b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n",
                     b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n"):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            sock.sendall(head + b"x")
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 "), answer
            sock.settimeout(60)  # a hang detector: the server closes the connection once it answered
            try:
                while True:
                    sock.sendall(b"x")
                    if sock.recv(65536) == b"":
                        break
                    time.sleep(0.05)
            except OSError:
                pass  # reset: closed by the server
            sock.close()
    finally:
        server.stop()


def test_a_body_that_never_arrives_is_cut_off(work, tmp_path):
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=90)
        sock.sendall((f"POST /api/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").encode())
        answer = sock.recv(4096)
        assert b" 408 " in answer.split(b"\r\n", 1)[0], answer
        sock.close()
    finally:
        server.stop()


# -- 7. links out of an allowed folder, guessable tokens, the queue, huge YAML ---------------------------------


def test_a_link_inside_an_allowed_folder_to_a_file_outside_is_refused(tmp_path):
    work = factual_folder(tmp_path / "work")
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.txt").write_text("The vault code is 80417 and it opens the north door.\n")
    (work / "documents" / "leak.txt").symlink_to(private / "secret.txt")
    prompts = work / "my-prompts"
    prompts.mkdir()
    (prompts / "ask_question.yaml").symlink_to(private / "secret.txt")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        status, body, _ = server.post("/api/runs", {"config": factual_config(work)})
        assert status == 400 and "input_dir holds leak.txt, a link to a path outside" in body["detail"], body
        text = factual_config(work, input_dir=str(tmp_path / "work" / "plain"), prompt_overrides=str(prompts))
        (tmp_path / "work" / "plain").mkdir()
        status, body, _ = server.post("/api/validate", {"config": text})
        assert not body["ok"] and "prompt_overrides holds ask_question.yaml, a link" in body["error"], body
        assert "80417" not in json.dumps(body)
    finally:
        server.stop()


def test_a_path_that_climbs_out_of_a_link_is_refused(tmp_path):
    work = factual_folder(tmp_path / "work")
    outside = tmp_path / "outside"
    (outside / "docs").mkdir(parents=True)
    (outside / "docs" / "secret.txt").write_text("The vault code is 80417.\n")
    (work / "outlink").symlink_to(outside / "docs")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        for value in ("outlink/../docs", "outlink/../nothing-here", "outlink/../docs/secret.txt"):
            body = server.post("/api/validate", {"config": factual_config(work, input_dir=value)})[1]
            assert not body["ok"] and "outside the folders this server may read" in body["error"], (value, body)
        # A reporter writes only in the run's output folder, not over its config or settings.
        for path in ("../config.yaml", "../settings.txt", "../log.txt"):
            text = factual_config(work, progress=[{"jsonl": {"path": path}}])
            body = server.post("/api/validate", {"config": text})[1]
            assert not body["ok"] and "outside the run's output folder" in body["error"], (path, body)
    finally:
        server.stop()


def test_a_run_the_server_starts_reads_no_file_a_link_leads_out_to(tmp_path):
    """The run's own guard, for a link that appears after the server checked the config."""
    work = factual_folder(tmp_path / "work")
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.txt").write_text("The vault code is 80417 and it opens the north door.\n")
    (work / "documents" / "leak.txt").symlink_to(private / "secret.txt")
    config = tmp_path / "run.yaml"
    config.write_text(factual_config(work, output_dir=str(tmp_path / "out")))
    env = with_fakes({**os.environ, "ATK_READ_ONLY_UNDER": f"{work}{os.pathsep}{tmp_path / 'out'}"})
    result = run_cli("run", config, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    failures = (tmp_path / "out" / "failures.jsonl").read_text()
    assert "leak.txt" in failures and "link outside the readable folders" in failures
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert b"80417" not in path.read_bytes(), path
    # The same run from a shell, where the user may read anything, reads it.
    config.write_text(factual_config(work, output_dir=str(tmp_path / "out2")))
    result = run_cli("run", config, cwd=work, env=with_fakes(dict(os.environ)))
    assert result.returncode == 0, result.stderr
    assert "leak.txt" not in (tmp_path / "out2" / "failures.jsonl").read_text()
    # A prompt override that is such a link: the run fails in one line, naming it.
    prompts = work / "my-prompts"
    prompts.mkdir()
    (prompts / "ask_question.yaml").symlink_to(private / "secret.txt")
    (work / "documents" / "leak.txt").unlink()
    config.write_text(factual_config(work, output_dir=str(tmp_path / "out3"), prompt_overrides=str(prompts)))
    env = with_fakes({**os.environ, "ATK_READ_ONLY_UNDER": f"{work}{os.pathsep}{tmp_path / 'out3'}"})
    result = run_cli("run", config, cwd=work, env=env)
    assert result.returncode != 0
    assert "link outside the readable folders" in result.stderr and "80417" not in result.stderr, result.stderr


@pytest.mark.parametrize("how, token", [("--token", "x"), ("ATK_SERVE_TOKEN", "1"),
                                        ("ATK_SERVE_TOKEN", "a" * 16), ("--token", "abcabcabcabcabcab")])
def test_a_guessable_token_is_refused(tmp_path, how, token):
    if how == "--token":
        result = run_cli("serve", "--port", "0", "--runs-dir", tmp_path / "runs", "--token", token, timeout=60)
    else:
        result = run_cli("serve", "--port", "0", "--runs-dir", tmp_path / "runs", timeout=60,
                         env={**os.environ, "ATK_SERVE_TOKEN": token})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "at least 16" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_the_queue_is_bounded(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--max-running", "1", "--max-queued", "2", cwd=work)
    try:
        slow = factual_config(work, delay=0.3, concurrency=1)
        ids = [server.start_run(slow)["id"] for _ in range(3)]  # one running, two waiting
        assert [server.run(i)["status"] for i in ids] == ["running", "queued", "queued"]
        status, body, _ = server.post("/api/runs", {"config": slow})
        assert status == 429 and "2 runs are waiting to start" in body["detail"], body
        assert len(server.get("/api/runs")[1]) == 3
        server.post(f"/api/runs/{ids[2]}/cancel")
        assert server.post("/api/runs", {"config": slow})[0] == 201
    finally:
        server.stop()


def test_a_huge_flat_yaml_list_is_refused_cheaply(work, tmp_path):
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        big = "pipeline: factual-qa\nitems: [" + ", ".join(["1"] * 200_000) + "]\n"  # 600 kB
        status, body, _ = server.post("/api/validate", {"config": big}, timeout=60)
        assert status == 413, body
        under = "pipeline: factual-qa\nitems: [" + ", ".join(["1"] * 40_000) + "]\n"  # 120 kB
        started = time.process_time()
        from atk_core.engine.config import parse_yaml
        from atk_core.errors import ConfigError

        with pytest.raises(ConfigError, match="more than 20000 values"):
            parse_yaml(under, "config.yaml")
        print(f"refused after {time.process_time() - started:.2f}s of CPU")  # a figure, not asserted
        status, body, _ = server.post("/api/validate", {"config": under}, timeout=60)
        assert status == 200 and "more than 20000 values" in body["error"], body
    finally:
        server.stop()
