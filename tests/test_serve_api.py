"""`atk serve`'s API, against a real server process with real `atk run` processes behind it."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pathlib import Path

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from atk_core.testing import read_jsonl, run_cli  # noqa: E402
from eval_exam import ITEMS, write_exam  # noqa: E402
from serve_helpers import (  # noqa: E402
    AtkServer, factual_config, factual_folder, wait_gone, with_fakes,
)

SLOW = {"delay": 0.4, "concurrency": 1}  # about 24 calls: some 10 s, time to cancel or restart


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return factual_folder(tmp_path_factory.mktemp("serve-work"))


@pytest.fixture(scope="module")
def server(work):
    # An allowed variable that is not set is refused as `atk run` refuses it.
    server = AtkServer(work / "runs", "--allow-env", "ATK_TEST_SURELY_UNSET", cwd=work)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished_run(server, work):
    """A factual-qa run on the scripted backend, run to the end."""
    text = factual_config(work, hf_token="literal-secret-value-123")
    run = server.start_run(text)
    return server.wait_for_status(run["id"], "done", "failed")


def cli_error(folder, text) -> str:
    """The one line `atk run config.yaml` prints for a config, without its prefix."""
    (folder / "config.yaml").write_text(text)
    result = run_cli("run", "config.yaml", cwd=folder, env=with_fakes(dict(os.environ)))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("atk: error: "), lines
    return lines[0][len("atk: error: "):]


# -- pipelines, templates, the schema -----------------------------------------------------------


def test_lists_installed_pipelines_with_descriptions(server):
    status, pipelines, _ = server.get("/api/pipelines")
    assert status == 200
    factual = next(p for p in pipelines if p["name"] == "factual-qa")
    assert factual["description"]
    assert factual["distribution"] == "atk-pipeline-factual"


def test_gives_a_pipelines_config_template(server, work):
    status, body, _ = server.get("/api/pipelines/factual-qa/template")
    assert status == 200
    assert body["template"] == (work / "factual-qa.yaml").read_text()  # what `atk init` writes
    status, body, _ = server.get("/api/pipelines/no-such-thing/template")
    assert status == 404 and "unknown pipeline 'no-such-thing'" in body["detail"]


@pytest.mark.parametrize("name, distribution", [
    ("factual-qa", "atk-pipeline-factual"), ("repvar", "atk-pipeline-repvar"),
    ("rag-data", "atk-pipeline-rag"), ("correction", "atk-pipeline-correction"),
    ("domain-expert", "atk-pipeline-expert")])
def test_every_pipeline_of_the_family_is_offered_with_its_template(server, tmp_path, name, distribution):
    status, pipelines, _ = server.get("/api/pipelines")
    assert {p["name"]: p["distribution"] for p in pipelines}[name] == distribution
    status, body, _ = server.get(f"/api/pipelines/{name}/template")
    assert status == 200
    assert run_cli("init", name, cwd=tmp_path).returncode == 0
    assert body["template"] == (tmp_path / f"{name}.yaml").read_text()


def test_openapi_schema_documents_the_api(server):
    status, schema, _ = server.get("/openapi.json")
    assert status == 200
    paths = schema["paths"]
    for path, method in [("/api/pipelines", "get"), ("/api/runs", "post"), ("/api/runs", "get"),
                         ("/api/runs/{run_id}", "get"), ("/api/runs/{run_id}/cancel", "post"),
                         ("/api/runs/{run_id}/resume", "post"), ("/api/runs/{run_id}/log", "get"),
                         ("/api/runs/{run_id}/files/{path}", "get"), ("/api/validate", "post")]:
        assert paths[path][method]["summary"], (path, method)
    start = paths["/api/runs"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ConfigText")
    assert start["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunDetail")
    assert "RunSummary" in schema["components"]["schemas"]


# -- validation: the CLI's checks and messages ------------------------------------------------------


@pytest.mark.parametrize("text", [
    "pipeline: factual-qq\noutput_dir: ./out\n",
    "pipeline: factual-qa\noutput_dir: ./out\n",
    "pipeline: factual-qa\ninput_dir: ./documents\noutput_dir: ./out\nmodels:\n  large: {backend: nope}\n",
    "pipeline: factual-qa\ninput_dir: ./documents\noutput_dir: ./out\nprogress: [no-such-reporter]\n",
    "pipeline: factual-qa\ninput_dir: [unclosed\n",
    "input_dir: ./documents\n",
    "pipeline: factual-qa\ninput_dir: ${ATK_TEST_SURELY_UNSET}\noutput_dir: ./out\n",
    "pipeline: factual-qa\ninput_dir: ./nowhere\noutput_dir: ./out\n",
    "pipeline: factual-qa\ninput_dir: ./documents\noutput_dir: ./out\nmodels:\n"
    "  large: {backend: scripted, api_key: sk-abc}\n",
    "pipeline: factual-qa\ninput_dir: ./documents\noutput_dir: ./out\nmodels:\n"
    "  large: {backend: scripted, respond: 'no_such_module_xyz:answer'}\n",
    "pipeline: factual-qa\ninput_dir: ./documents\noutput_dir: ./out\nchunk_size: lots\n",
], ids=["unknown-pipeline", "missing-field", "unknown-backend", "unknown-reporter", "bad-yaml",
        "no-pipeline", "unset-env", "pipeline-check-input-dir", "pipeline-check-value",
        "backend-option", "backend-option-value"])
def test_config_mistakes_are_refused_with_the_clis_message(server, work, tmp_path, text):
    expected = cli_error(tmp_path, text)
    runs_before = server.get("/api/runs")[1]
    status, body, _ = server.post("/api/runs", {"config": text})
    assert status == 400
    assert body["detail"] == expected
    status, body, _ = server.post("/api/validate", {"config": text})
    assert status == 200 and body == {"ok": False, "pipeline": None, "error": expected,
                                      "warnings": []}
    assert server.get("/api/runs")[1] == runs_before  # nothing was started
    assert not (tmp_path / "out").exists()  # nor did the CLI write anything


def test_a_good_config_validates(server, work):
    status, body, _ = server.post("/api/validate", {"config": factual_config(work)})
    assert status == 200 and body == {"ok": True, "pipeline": "factual-qa", "error": None,
                                      "warnings": []}


def test_a_field_that_looks_misspelt_is_a_warning_as_in_the_cli(server, work, tmp_path):
    text = factual_config(work, chunk_sise=3)
    status, body, _ = server.post("/api/validate", {"config": text})
    warning = ("config.yaml: pipeline 'factual-qa' has no field 'chunk_sise'; did you mean"
               " 'chunk_size'? (it is passed on unused)")
    assert status == 200 and body == {"ok": True, "pipeline": "factual-qa", "error": None,
                                      "warnings": [warning]}
    (tmp_path / "config.yaml").write_text(text)
    result = run_cli("run", "config.yaml", "--progress", "jsonl", cwd=tmp_path,
                     env=with_fakes(dict(os.environ)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "atk: warning: " + warning


# -- a run, start to finish ------------------------------------------------------------------------------


def test_runs_factual_qa_to_done_and_serves_its_outputs(server, work, finished_run):
    run = finished_run
    assert run["status"] == "done", server.log_of(run["id"])
    assert run["progress"] == 1.0 and run["exit_code"] == 0 and run["error"] is None
    run_dir = server.runs_dir / run["id"]
    # The config as written is kept; output_dir is forced into the run's folder.
    assert (run_dir / "config.yaml").read_text() == factual_config(work, hf_token="literal-secret-value-123")
    assert run["output_dir"] == str(run_dir / "output")
    assert (run_dir / "output" / "manifest.json").is_file()
    assert not (work / "output").exists()
    # Secrets are redacted wherever the config is shown, and never logged.
    assert "literal-secret-value-123" not in run["config"]
    assert "hf_token: <redacted>" in run["config"]
    assert "literal-secret-value-123" not in server.log_of(run["id"])
    # Manifest counts per step.
    steps = {s["name"]: s for s in run["manifest"]["steps"]}
    assert steps["read"]["inputs"] == 3 and steps["read"]["outputs"] == 3
    assert run["manifest"]["primary_output"] == "conversations.sharegpt.jsonl"
    # The API's counts are the manifest's, notes included (as `atk inspect` shows them).
    written = json.loads((run_dir / "output" / "manifest.json").read_text())
    assert [(s["name"], s["inputs"], s["outputs"], s["dropped"], s["notes"])
            for s in run["manifest"]["steps"]] == [
        (s["name"], s["in"], s["out"], s.get("dropped", {}), s.get("notes", {}))
        for s in written["steps"]]
    # Files, listed and downloaded.
    status, files, _ = server.get(f"/api/runs/{run['id']}/files")
    assert status == 200
    names = [f["path"] for f in files]
    assert "conversations.sharegpt.jsonl" in names and "manifest.json" in names
    status, data, headers = server.get(f"/api/runs/{run['id']}/files/conversations.sharegpt.jsonl")
    assert status == 200
    assert "attachment" in headers["content-disposition"]
    assert data == (run_dir / "output" / "conversations.sharegpt.jsonl").read_bytes()
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert records and all(r["conversations"][0]["from"] == "system" for r in records)
    assert len(records) == len(read_jsonl(run_dir / "output" / "conversations.sharegpt.jsonl"))
    # Its events and its log.
    status, events, _ = server.get(f"/api/runs/{run['id']}/events")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "queued" and "start" in kinds and "finish" in kinds and kinds[-1] == "done"
    status, log, _ = server.get(f"/api/runs/{run['id']}/log")
    assert status == 200 and "factual-qa finished" in log["text"]
    # A finished run can be neither cancelled nor resumed.
    assert server.post(f"/api/runs/{run['id']}/cancel")[0] == 409
    assert server.post(f"/api/runs/{run['id']}/resume")[0] == 409


def test_a_runs_records_and_failures_are_read_a_page_at_a_time(server, finished_run):
    run_id = finished_run["id"]
    output = server.runs_dir / run_id / "output"
    pairs = read_jsonl(output / "qa_pairs.jsonl")
    assert len(pairs) >= 3
    status, page, _ = server.get(f"/api/runs/{run_id}/records?file=qa_pairs.jsonl&offset=1&limit=2")
    assert status == 200
    assert page == {"file": "qa_pairs.jsonl", "total": len(pairs), "offset": 1, "records": pairs[1:3]}
    status, page, _ = server.get(f"/api/runs/{run_id}/records?file=failures.jsonl")
    assert status == 200 and page["records"] == read_jsonl(output / "failures.jsonl")
    assert all({"step", "kind", "reason"} <= set(f) for f in page["records"])
    for query, expected in (("file=manifest.json", 400), ("file=../config.yaml", 400),
                            ("file=nothing.jsonl", 404), ("file=qa_pairs.jsonl&limit=0", 422),
                            ("offset=0", 422)):
        assert server.get(f"/api/runs/{run_id}/records?{query}")[0] == expected, query


def atk_eval(exam, *args, cwd):
    """The real `atk eval`, its scripted models answering from tests/eval_exam.py."""
    tests = str(Path(__file__).resolve().parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))
    result = run_cli("eval", exam, *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr


SCORE_KEYS = ("correct", "total", "accuracy", "interval")


def test_a_runs_evals_are_read_from_its_output_folder(server, work, tmp_path):
    run = server.wait_for_status(server.start_run(factual_config(work))["id"], "done", "failed")
    assert run["status"] == "done" and run["evals"] == []
    output = server.runs_dir / run["id"] / "output"
    exam = write_exam(output)  # output/exam/exam.jsonl, so `atk eval` writes output/eval/
    atk_eval(exam, "--open-book", "--model", "knows=scripted", "--model", "wrong=scripted",
             "--judge", "scripted", "--set", "models.knows.respond=eval_exam:from_reference",
             "--set", "models.wrong.respond=eval_exam:other_reference",
             "--set", "models.judge.respond=eval_exam:judge_by_rule", cwd=tmp_path)
    # A second eval, in a folder of the output folder that the user chose.
    atk_eval(exam, "--model", "again=scripted", "--set", "models.again.respond=eval_exam:from_reference",
             "--output", output / "another", cwd=tmp_path)
    report = json.loads((output / "eval" / "eval.json").read_text())

    run = server.run(run["id"])
    assert [e["name"] for e in run["evals"]] == ["eval", "another"]
    found = run["evals"][0]
    assert {k: found[k] for k in ("exam", "questions", "seen", "held_out", "books", "rule")} == {
        "exam": str(exam), "questions": len(ITEMS), "seen": sum(seen for *_, seen in ITEMS),
        "held_out": sum(not seen for *_, seen in ITEMS), "books": ["closed", "open"],
        "rule": report["rule"]}
    rows = {(r["name"], r["book"]): r for r in found["results"]}
    assert list(rows) == [("knows", "closed"), ("knows", "open"), ("wrong", "closed"), ("wrong", "open")]
    for (name, book), row in rows.items():
        written = report["models"][name][book]
        assert row["model"] == report["models"][name]["model"]
        assert {k: row[k] for k in SCORE_KEYS} == {k: written[k] for k in SCORE_KEYS}
        assert row["seen"] == {k: written["seen"][k] for k in SCORE_KEYS}
        assert row["held_out"] == {k: written["held_out"][k] for k in SCORE_KEYS}
        assert row["judge"] == {k: written["judge"][k] for k in (*SCORE_KEYS, "agrees_with_rule")}
        assert row["total"] == len(ITEMS) and row["seen"]["total"] + row["held_out"]["total"] == len(ITEMS)
    assert rows[("knows", "closed")]["accuracy"] > rows[("wrong", "closed")]["accuracy"]
    [again] = run["evals"][1]["results"]
    assert (again["name"], again["book"], again["judge"]) == ("again", "closed", None)
    assert again["accuracy"] == rows[("knows", "closed")]["accuracy"]

    # What is not an eval of this run is left out, and the run is still answered.
    def put(folder, text):
        (output / folder).mkdir(parents=True, exist_ok=True)
        (output / folder / "eval.json").write_text(text)

    good = json.dumps(report)
    put("broken", '{"models": ')
    put("huge", json.dumps({**report, "padding": "x" * 2_100_000}))
    put("not-a-number", json.dumps({**report, "questions": float("nan")}))
    put("deep", "[" * 100_000 + "]" * 100_000)
    put("a-list", "[]")
    put("other-shape", json.dumps({**report, "models": {"x": {"model": "m", "closed": {"correct": "many"}}}}))
    put("missing-book", json.dumps({**report, "books": ["closed", "shut"]}))
    put(".hidden", good)
    put("two/levels", good)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "eval.json").write_text(good)
    (output / "linked-folder").symlink_to(elsewhere, target_is_directory=True)
    (output / "linked-file").mkdir()
    (output / "linked-file" / "eval.json").symlink_to(elsewhere / "eval.json")
    (output / "dotdot").mkdir()
    (output / "dotdot" / "eval.json").symlink_to(os.path.relpath(elsewhere / "eval.json", output / "dotdot"))
    assert [e["name"] for e in server.run(run["id"])["evals"]] == ["eval", "another"]
    status, schema, _ = server.get("/openapi.json")
    assert {"Eval", "EvalResult", "EvalScore"} <= set(schema["components"]["schemas"])


def test_several_runs_at_once(server, work):
    runs = [server.start_run(factual_config(work, seed=seed)) for seed in (1, 2, 3)]
    finished = [server.wait_for_status(r["id"], "done", "failed") for r in runs]
    assert [r["status"] for r in finished] == ["done"] * 3
    listed = {r["id"] for r in server.get("/api/runs")[1]}
    assert {r["id"] for r in runs} <= listed


def test_a_failing_run_is_failed_with_its_error_line(server, work):
    empty = work / "no-documents"  # passes the config check; fails once the run reads it
    empty.mkdir(exist_ok=True)
    (empty / "data.bin").write_bytes(b"\x00\x01")  # not a document type factual-qa reads
    run = server.start_run(factual_config(work, input_dir=str(empty)))
    run = server.wait_for_status(run["id"], "done", "failed")
    assert run["status"] == "failed" and run["exit_code"] == 1
    assert run["error"].startswith(f"pipeline 'factual-qa' failed: no readable documents in {empty}")
    assert run["can_resume"] is True


# -- safety -------------------------------------------------------------------------------------------------


def test_downloads_stay_inside_the_runs_output_folder(server, finished_run, tmp_path):
    run_id = finished_run["id"]
    output = server.runs_dir / run_id / "output"
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours")
    (output / "escape.txt").symlink_to(secret)
    (output / "escape-dir").symlink_to(tmp_path, target_is_directory=True)
    (output / "inside-link.jsonl").symlink_to(output / "qa_pairs.jsonl")
    (output / "qa_pairs.jsonl.tmp").write_text("half written")  # as an atomic write leaves it
    (output / ".hidden").write_text("internal")
    base = f"/api/runs/{run_id}/files/"
    refused = {
        "qa_pairs.jsonl.tmp": 404, ".hidden": 404, "store.sqlite-wal": 404,
        "../config.yaml": 400, "%2e%2e/config.yaml": 400, "%2E%2E%2Fconfig.yaml": 400,
        "sub/../../config.yaml": 400, "..%2f..%2ftasks.sqlite": 400,
        "/etc/passwd": 400, "%2Fetc%2Fpasswd": 400, ".": 400,
        "escape.txt": 404, "escape-dir/outside.txt": 404, "no-such-file.jsonl": 404, "": 400,
    }
    for path, expected in refused.items():
        status, body, _ = server.get(base + path)
        assert status == expected, (path, status, body)
        assert b"not yours" not in (body if isinstance(body, bytes) else json.dumps(body).encode())
    assert server.get(base + "inside-link.jsonl")[0] == 200  # a link that stays inside is fine
    names = [f["path"] for f in server.get(f"/api/runs/{run_id}/files")[1]]
    assert "escape.txt" not in names and not any(n.startswith("escape-dir") for n in names)
    assert "qa_pairs.jsonl.tmp" not in names and ".hidden" not in names
    for name in names:  # and everything listed can be downloaded
        assert server.get(base + name)[0] == 200, name
    assert server.get("/api/runs/..%2F..%2Fetc/files/passwd")[0] == 404
    assert server.get("/api/runs/no-such-run/files/manifest.json")[0] == 404


def test_a_malformed_request_body_is_one_line(server):
    runs_before = server.get("/api/runs")[1]
    cases = [
        (b"not json", "application/json"),
        (b'{"configuration": "pipeline: x"}', "application/json"),
        (b'{"config": 42}', "application/json"),
    ]
    for body, kind in cases:
        status, answer, _ = server.request("POST", "/api/runs", body=body,
                                           headers={"Content-Type": kind})
        assert status == 422, (body, answer)
        assert isinstance(answer["detail"], str) and answer["detail"].startswith("malformed request: ")
        assert "\n" not in answer["detail"]
    assert "config: Field required" in server.post("/api/validate", {"configuration": "x"})[1]["detail"]
    assert server.get("/api/runs")[1] == runs_before


def test_oversized_bodies_are_refused(server):
    big = {"config": "pipeline: factual-qa\n# " + "x" * 1_200_000 + "\n"}
    for path in ("/api/runs", "/api/validate"):
        status, body, _ = server.post(path, big)
        assert status == 413, (path, status, body)
    # Without a Content-Length (chunked), the limit still holds.
    body = json.dumps(big).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/api/validate")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Authorization", f"Bearer {server.token}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for start in range(0, len(body), 65536):
            chunk = body[start:start + 65536]
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the whole body is sent
    assert connection.getresponse().status == 413
    connection.close()


def test_cross_origin_posts_and_foreign_hosts_are_refused(server, work):
    status, _, _ = server.post("/api/validate", {"config": "pipeline: x\n"},
                               headers={"Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = server.get("/api/runs", headers={"Host": "evil.example"})
    assert status == 403
    # Any loopback name is this machine: the same rule as for binding (--host 127.0.0.2).
    for host in ("localhost", f"127.0.0.2:{server.port}", f"[::1]:{server.port}"):
        assert server.get("/api/runs", headers={"Host": host})[0] == 200, host
    status, _, _ = server.post("/api/validate", {"config": "pipeline: x\n"},
                               headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 200


def test_literal_secrets_in_reporter_options_stay_off_the_command_line(work, tmp_path):
    from atk_core.serve.runs import RunManager

    manager = RunManager(tmp_path / "runs", allow_input=[work], allow_scripted=True)
    text = factual_config(work, progress=["console", {"webhook": {
        "url": "http://127.0.0.1:9/hook", "headers": {"Authorization": "tok-literal-9876"}}}])
    prepared = manager.vetter.prepare(text, "some-run")
    assert "tok-literal-9876" not in " ".join(prepared.overrides)
    assert list(prepared.env.values()) == ["tok-literal-9876"]
    assert "tok-literal-9876" not in prepared.redacted_yaml
    # The run's config still gets the value, through its environment.
    webhook = next(e for e in prepared.config.progress if isinstance(e, dict) and "webhook" in e)
    assert webhook["webhook"]["headers"]["Authorization"] == "tok-literal-9876"


# -- cancel, restart, resume ----------------------------------------------------------------------------------


def _underway(run):
    return run["status"] == "running" and (run["progress"] or 0) > 0


def test_cancel_stops_the_run_and_its_process_group(server, work):
    run = server.start_run(factual_config(work, **SLOW))
    run = server.wait_for(run["id"], _underway, what="progress")
    pid = run["pid"]
    status, body, _ = server.post(f"/api/runs/{run['id']}/cancel")
    assert status == 200, body
    run = server.wait_for_status(run["id"], "cancelled", "done", "failed", timeout=30)
    assert run["status"] == "cancelled"
    assert run["can_resume"] is True and run["can_cancel"] is False
    assert wait_gone(pid), "the run's process group is still there"
    assert server.post(f"/api/runs/{run['id']}/cancel")[0] == 409


def _processes_running(config_path) -> int:
    """How many processes on this machine have ``config_path`` in their command line."""
    needle = str(config_path).encode()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    count += needle in f.read()
            except OSError:
                pass
    return count


def test_resumes_sent_at_once_start_one_process(server, work):
    run = server.start_run(factual_config(work, **SLOW))
    run = server.wait_for(run["id"], _underway, what="progress")
    assert server.post(f"/api/runs/{run['id']}/cancel")[0] == 200
    run = server.wait_for_status(run["id"], "cancelled")
    assert wait_gone(run["pid"])

    barrier = threading.Barrier(4)

    def resume():
        barrier.wait()
        return server.post(f"/api/runs/{run['id']}/resume")[0]

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda _: resume(), range(4)))
    assert statuses == [200, 409, 409, 409]
    assert _processes_running(os.path.join(server.runs_dir, run["id"], "config.yaml")) == 1
    assert server.post(f"/api/runs/{run['id']}/cancel")[0] == 200
    run = server.wait_for_status(run["id"], "cancelled", "done", "failed", timeout=30)
    assert wait_gone(run["pid"])
    assert _processes_running(os.path.join(server.runs_dir, run["id"], "config.yaml")) == 0


STUBBORN_PIPELINE = {
    "stubborn_pipeline/__init__.py": '''
        import signal, subprocess, time
        from atk_core import hookimpl, Pipeline, set_progress

        def stubborn(*, output_dir, task_id=None, **kwargs):
            """Ignores Ctrl-C, and leaves a child behind in its process group."""
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            subprocess.Popen(["sleep", "600"])
            set_progress(task_id, 0.5, "ignoring SIGINT")
            time.sleep(600)

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="stubborn", function=stubborn, description="Will not stop"))
    ''',
    "stubborn_pipeline/config.yaml": "pipeline: stubborn\noutput_dir: ./out\n",
}


def test_cancel_kills_a_run_that_ignores_sigint(site, tmp_path):
    site.add("atk-pipeline-stubborn", STUBBORN_PIPELINE, {"stubborn": "stubborn_pipeline"})
    server = AtkServer(tmp_path / "runs", env=site.env(), cwd=tmp_path)
    try:
        run = server.start_run("pipeline: stubborn\noutput_dir: ./out\n")
        run = server.wait_for(run["id"], _underway, what="progress")
        assert server.post(f"/api/runs/{run['id']}/cancel")[0] == 200
        assert server.run(run["id"])["status"] == "running"  # SIGINT is ignored...
        run = server.wait_for_status(run["id"], "cancelled", "failed", timeout=30)
        assert run["status"] == "cancelled"  # ...so SIGKILL follows after the grace period
        assert wait_gone(run["pid"]), "the run's process group (with its child) is still there"
    finally:
        server.stop()


def test_a_run_cut_off_by_a_server_restart_is_interrupted_and_resumes(work, tmp_path):
    runs_dir = tmp_path / "runs"
    first = AtkServer(runs_dir, cwd=work)
    try:
        # input_dir is relative to the folder the server (and so the run) started in.
        run = first.start_run(factual_config(work, input_dir="documents", **SLOW))
        run = first.wait_for(run["id"], lambda r: _underway(r) and r["progress"] >= 0.1, what="10%")
        pid = run["pid"]
    finally:
        first.stop()  # kill PID (SIGTERM): the server stops, and so do its runs
    assert wait_gone(pid)

    elsewhere = tmp_path / "elsewhere"  # restarted from another folder: the run keeps its own
    elsewhere.mkdir()
    # Its inputs are read under the new server's rules: one started elsewhere must allow them.
    refusing = AtkServer(runs_dir, cwd=elsewhere)
    try:
        status, body, _ = refusing.post(f"/api/runs/{run['id']}/resume")
        assert status == 400 and "outside the folders this server may read" in body["detail"], body
    finally:
        refusing.stop()
    second = AtkServer(runs_dir, "--allow-input", work, cwd=elsewhere)
    try:
        listed = {r["id"]: r for r in second.get("/api/runs")[1]}
        assert listed[run["id"]]["status"] == "interrupted"
        assert listed[run["id"]]["can_resume"] is True
        status, body, _ = second.post(f"/api/runs/{run['id']}/resume")
        assert status == 200 and body["status"] == "running", body
        done = second.wait_for_status(run["id"], "done", "failed", "interrupted", timeout=120)
        assert done["status"] == "done", second.log_of(run["id"])
        assert done["progress"] == 1.0 and done["attempts"] == 2
        # Resumed into the same output folder: what was answered before came from the store.
        usage = re.findall(r"model large: \d+ requests sent, (\d+) answers from the store",
                           second.log_of(run["id"]))
        assert int(usage[-1]) > 0
        records = read_jsonl(runs_dir / run["id"] / "output" / "conversations.sharegpt.jsonl")
        assert records
    finally:
        second.stop()


def test_a_run_whose_process_died_with_the_server_is_interrupted(work, tmp_path):
    runs_dir = tmp_path / "runs"
    first = AtkServer(runs_dir, cwd=work)
    run = first.start_run(factual_config(work, **SLOW))
    run = first.wait_for(run["id"], _underway, what="progress")
    first.kill()  # a crash: SIGKILL to the server...
    os.killpg(run["pid"], signal.SIGKILL)  # ...and to its run
    assert wait_gone(run["pid"])
    second = AtkServer(runs_dir, cwd=work)
    try:
        assert second.run(run["id"])["status"] == "interrupted"
    finally:
        second.stop()


def test_a_run_that_outlives_a_killed_server_is_picked_up_again(work, tmp_path):
    runs_dir = tmp_path / "runs"
    first = AtkServer(runs_dir, cwd=work)
    run = first.start_run(factual_config(work, delay=0.1, concurrency=1))
    run = first.wait_for(run["id"], _underway, what="progress")
    first.kill()  # SIGKILL: no chance to stop the run, which goes on in its own session
    second = AtkServer(runs_dir, cwd=work)
    try:
        assert second.run(run["id"])["status"] in ("running", "done")
        done = second.wait_for_status(run["id"], "done", "failed", "interrupted", timeout=120)
        assert done["status"] == "done" and done["progress"] == 1.0
    finally:
        second.stop()


# -- binding and tokens -------------------------------------------------------------------------------------------


def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ATK_SERVE_TOKEN"}
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--runs-dir", tmp_path / "runs",
                     "--no-token", env=env, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("atk: error: refusing to listen on 0.0.0.0 without a token")


def test_without_one_given_the_server_makes_a_token_and_prints_the_url_that_carries_it(work, tmp_path):
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        assert server.token and len(server.token) >= 32
        assert f"{server.url}?token={server.token}" in server.output()
        assert server.get("/api/runs", token=False)[0] == 401
        assert server.get("/api/runs")[0] == 200
        # Not in the process list: the command line holds no token.
        command = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().decode()
        assert server.token not in command
    finally:
        server.stop()


def test_no_token_is_a_choice_that_says_what_it_allows(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--no-token", cwd=work)
    try:
        assert server.token is None
        assert server.get("/api/runs", token=False)[0] == 200
        assert "--no-token: any program or user on this machine" in server.output()
    finally:
        server.stop()


def test_a_token_on_the_command_line_works_but_warns_and_a_file_is_read(work, tmp_path):
    server = AtkServer(tmp_path / "runs", "--token", "cli-token-1234567890", token="cli-token-1234567890", cwd=work)
    try:
        assert server.get("/api/runs")[0] == 200
        assert "warning: a token given with --token can be read by other users" in server.output()
    finally:
        server.stop()
    (tmp_path / "token.txt").write_text("file-token-4567890123\n")
    os.chmod(tmp_path / "token.txt", 0o600)
    server = AtkServer(tmp_path / "runs2", "--token-file", tmp_path / "token.txt", token="file-token-4567890123",
                       cwd=work)
    try:
        assert server.get("/api/runs")[0] == 200
        assert server.get("/api/runs", headers={"Authorization": "Bearer cli-token-1234567890"})[0] == 401
        assert "warning" not in server.output() and "file-token-4567890123" not in server.output()
    finally:
        server.stop()


def test_with_a_token_every_request_but_the_page_needs_it_and_no_cookie_carries_it(work, tmp_path):
    env = dict(os.environ, ATK_SERVE_TOKEN="s3cret-token-for-tests")
    server = AtkServer(tmp_path / "runs", "--host", "0.0.0.0", token="s3cret-token-for-tests",
                       env=env, cwd=work)
    try:
        for path in ("/api/runs", "/api/pipelines", "/openapi.json", "/api/runs/x/files/a.jsonl"):
            status, body, headers = server.get(path, token=False)
            assert status == 401, path
            assert headers.get("www-authenticate") == "Bearer"
        assert server.get("/api/runs", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert server.get("/api/runs?token=s3cret-token-for-tests", token=False)[0] == 401
        # The page is HTML and script, no data: it loads without the token, takes the token
        # from its URL into the tab's storage, and sends it as a header. No cookie holds it,
        # since a browser would send that cookie to every port of the host.
        status, page, headers = server.get("/?token=s3cret-token-for-tests", token=False)
        assert status == 200 and "set-cookie" not in {k.lower() for k in headers}
        assert b"s3cret-token-for-tests" not in page
        assert server.get("/", token=False)[0] == 200
        cookie = "atk_serve=s3cret-token-for-tests; token=s3cret-token-for-tests"
        assert server.get("/api/runs", token=False, headers={"Cookie": cookie})[0] == 401
        run = server.start_run(factual_config(work))
        run = server.wait_for_status(run["id"], "done", "failed")
        path = f"/api/runs/{run['id']}/files/conversations.sharegpt.jsonl"
        assert server.get(path, token=False)[0] == 401
        assert server.get(path)[0] == 200
        assert "s3cret-token-for-tests" not in server.output()
    finally:
        server.stop()


@pytest.mark.parametrize("token", ["two words", "   ", "semi;colon", "caf\u00e9", "base64+plus"])
def test_a_token_that_cannot_travel_in_a_header_and_url_is_refused(tmp_path, token):
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--runs-dir", tmp_path / "runs",
                     "--token", token, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("atk: error: the token must be letters, digits")
    assert not (tmp_path / "runs").exists()


def test_one_server_per_runs_folder(server):
    result = run_cli("serve", "--port", "0", "--runs-dir", server.runs_dir, timeout=60)
    assert result.returncode == 2
    assert "another atk serve" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- without FastAPI, and without paying for it ------------------------------------------------------------------


def test_without_fastapi_serve_says_which_extra_to_install(tmp_path):
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
            "from atk_core.commands.cli import main; main(['serve', '--port', '0', '--runs-dir', %r])" % str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "atk-core[serve]" in lines[0], lines


def test_the_core_does_not_import_the_web_stack():
    code = ("import sys, atk_core, atk_core.commands.cli\n"
            "from atk_core.engine.plugins import get_registry; get_registry()\n"
            "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'pydantic') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert 'taskstore' in get_registry().names('reporter')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
