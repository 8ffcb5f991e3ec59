"""Bad input to every command: one `atk: error:` line, a non-zero status, nothing left behind.

Each case runs the real CLI in a subprocess; the demo pipeline comes from a throw-away
distribution on PYTHONPATH.
"""

import json
import socket

import pytest

from support import stderr_lines


def one_error(result, code=2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("atk: error: "), lines
    assert "Traceback" not in result.stderr
    return lines[0][len("atk: error: "):]


@pytest.mark.parametrize("args, message", [
    (["run"], "Missing argument 'CONFIG'. (see `atk run --help`)"),
    (["run", "a.yaml", "b.yaml"], "Got unexpected extra argument (b.yaml) (see `atk run --help`)"),
    (["list", "nonsense"], "Invalid value for '[backends|executors|pipelines|readers|reporters]':"
                           " 'nonsense' is not one of 'backends', 'executors', 'pipelines', 'readers',"
                           " 'reporters'. (see `atk list --help`)"),
    (["new"], "Missing argument '{pipeline|backend|reporter|reader}'. Choose from: pipeline, backend,"
              " reporter, reader (see `atk new --help`)"),
    (["inspect", ".", "-n", "-1"], "Invalid value for '-n': -1 is not in the range x>=0."
                                   " (see `atk inspect --help`)"),
    (["serve", "--port", "99999"], "Invalid value for '--port': 99999 is not in the range"
                                   " 0<=x<=65535. (see `atk serve --help`)"),
], ids=["missing-argument", "extra-argument", "bad-choice", "group-without-command",
        "negative-count", "port-out-of-range"])
def test_usage_mistakes_are_one_line(atk, tmp_path, args, message):
    assert one_error(atk(*args, cwd=tmp_path)) == message
    assert list(tmp_path.iterdir()) == []


def test_init_names_the_file_it_cannot_write_and_takes_a_folder(atk, demo_site, tmp_path):
    (tmp_path / "afile").write_text("")
    message = one_error(atk("init", "echo", "afile/echo.yaml", cwd=tmp_path, env=demo_site.env()), 1)
    assert message == "cannot write afile/echo.yaml: afile is not a folder"
    result = atk("init", "echo", "configs/", cwd=tmp_path, env=demo_site.env())
    assert result.returncode == 0, result.stderr
    assert "pipeline: echo" in (tmp_path / "configs" / "echo.yaml").read_text()


def test_init_with_samples_checks_their_folder_before_writing_the_config(atk, tmp_path):
    (tmp_path / "documents").write_text("a file, not a folder")
    message = one_error(atk("init", "factual-qa", "f.yaml", "--samples", cwd=tmp_path))
    assert message == "./documents exists and is not a folder; the sample documents go there"
    assert not (tmp_path / "f.yaml").exists()


@pytest.mark.parametrize("manifest, message", [
    ("[]", "o/manifest.json is not an atk manifest (a JSON object)"),
    ('{"steps": 5}', "o/manifest.json is not an atk manifest: its fields have the wrong shape"),
    ('{"models": [1], "outputs": "x"}', "o/manifest.json is not an atk manifest: its fields have"
                                        " the wrong shape"),
    (b"\xff\xfe{}", "o/manifest.json is not UTF-8 text"),
])
def test_inspect_refuses_what_is_not_a_manifest(atk, tmp_path, manifest, message):
    (tmp_path / "o").mkdir()
    path = tmp_path / "o" / "manifest.json"
    path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    assert one_error(atk("inspect", "o", cwd=tmp_path)) == message


def test_inspect_a_file_that_is_missing_or_binary(atk, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "manifest.json").write_text(json.dumps({"pipeline": "x", "steps": []}))
    (tmp_path / "o" / "store.sqlite").write_bytes(b"SQLite format 3\x00\xff\xfe")
    assert one_error(atk("inspect", "o", "--file", "nope.jsonl", cwd=tmp_path)) == (
        "o has no file 'nope.jsonl' to sample from")
    assert one_error(atk("inspect", "o", "--file", "store.sqlite", cwd=tmp_path)) == (
        "o/store.sqlite is not UTF-8 text")


def test_serve_on_a_port_in_use_leaves_no_runs_folder(atk, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        message = one_error(atk("serve", "--port", port, "--runs-dir", "runs", cwd=tmp_path, timeout=60))
    finally:
        holder.close()
    assert message == f"cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not (tmp_path / "runs").exists()


def test_yaml_that_would_blow_up_is_refused(atk, demo_site, tmp_path):
    lines = ["pipeline: echo", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert one_error(atk("run", "bomb.yaml", cwd=tmp_path)) == (
        "bomb.yaml: more than 25 YAML aliases (*name); a config needs far fewer, so this one is"
        " refused")
    (tmp_path / "deep.yaml").write_text("pipeline: echo\nv: " + "[" * 5000 + "]" * 5000 + "\n")
    assert one_error(atk("run", "deep.yaml", cwd=tmp_path)) == (
        "deep.yaml: invalid YAML: nested too deeply")
    # A few aliases, as configs use them, are fine.
    (tmp_path / "shared.yaml").write_text(
        "pipeline: echo\ninput_text: hi\noutput_dir: out\nm: &m {backend: scripted}\n"
        "models: {small: *m, large: *m}\nprogress: [jsonl]\n")
    result = atk("run", "shared.yaml", cwd=tmp_path, env=demo_site.env())
    assert result.returncode == 0, result.stderr


def test_a_reporter_that_cannot_start_leaves_no_output_folder(atk, demo_site, tmp_path):
    (tmp_path / "run.yaml").write_text("pipeline: echo\ninput_text: hi\noutput_dir: out\n")
    message = one_error(atk("run", "run.yaml", "--progress", "taskstore", cwd=tmp_path,
                            env=demo_site.env()))
    assert message == ("progress reporter 'taskstore' could not start: the taskstore reporter is"
                       " atk serve's own: it needs the db and run_id that atk serve gives it")
    assert not (tmp_path / "out").exists()


def test_a_model_role_the_config_does_not_define_is_named(atk, demo_site, tmp_path):
    (tmp_path / "run.yaml").write_text(
        "pipeline: echo\ninput_text: hi\noutput_dir: out\nprogress: [jsonl]\n"
        "models: {large: {backend: scripted}}\n")
    result = atk("run", "run.yaml", "--model", "LARGE=scripted", cwd=tmp_path, env=demo_site.env())
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result)[0] == (
        "atk: warning: --model LARGE=scripted: run.yaml defines no model role 'LARGE'; did you"
        " mean 'large'? (it defines: large); it is added as a new role")


def test_prompts_are_not_half_copied(atk, demo_site, tmp_path):
    (tmp_path / "mine" / "greet.yaml").mkdir(parents=True)  # a folder where a prompt goes
    message = one_error(atk("prompts", "echo", "mine", "--force", cwd=tmp_path, env=demo_site.env()))
    assert message == "mine/greet.yaml is a folder where a prompt file goes"
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["greet.yaml"]
