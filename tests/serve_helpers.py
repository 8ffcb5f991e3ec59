"""A real ``atk serve`` in a subprocess, and configs for it, for the serve tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from atk_core.testing import run_cli

_URL = re.compile(r"atk: serving http://(\S+?):(\d+)/")
_TOKEN = re.compile(r"atk: serving http://\S+?/\?token=(\S+)")
# factual-qa's test double (a scripted model that answers its prompts plausibly): runs started
# by the server import it by name, so the server's environment has its folder on PYTHONPATH.
FAKES = Path(__file__).resolve().parents[1] / "plugins" / "atk-pipeline-factual" / "tests"
SCRIPTED = {"backend": "scripted", "respond": "factual_fakes:respond"}
if str(FAKES) not in sys.path:  # configs checked in this process import it too
    sys.path.append(str(FAKES))


def with_fakes(env: dict) -> dict:
    paths = [str(FAKES), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


class AtkServer:
    """``python -m atk_core serve --port 0 --runs-dir RUNS_DIR ...``, answering on loopback."""

    def __init__(self, runs_dir, *args, token=None, env=None, cwd=None, timeout=60):
        self.runs_dir = Path(runs_dir)
        self.token = token
        self.log_path = self.runs_dir.parent / f"serve-{time.time_ns()}.log"
        self.runs_dir.parent.mkdir(parents=True, exist_ok=True)
        environment = with_fakes(dict(os.environ if env is None else env))
        environment.pop("ATK_LOAD_PLUGINS", None)
        if env is None:
            environment.pop("ATK_SERVE_TOKEN", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atk_core", "serve", "--port", "0", "--runs-dir", str(runs_dir),
                 *([] if "--no-scripted" in args else ["--allow-scripted"]),
                 *(str(a) for a in args if a != "--no-scripted")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=environment,
            )
        self.port = self._wait_for_port(timeout)
        if self.token is None:  # the one the server made, from the URL it printed
            made = _TOKEN.search(self.output())
            self.token = made.group(1) if made else None
        self._wait_until_answering(timeout)

    def _wait_for_port(self, timeout) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _URL.search(self.output())
            if match:
                return int(match.group(2))
            if self.proc.poll() is not None:
                raise RuntimeError(f"atk serve exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"atk serve did not start in {timeout}s:\n{self.output()}")

    def _wait_until_answering(self, timeout) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.request("GET", "/api/info")
                if status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"atk serve exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"atk serve did not answer in {timeout}s:\n{self.output()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def page_url(self) -> str:
        """The page's address as the server printed it: with its token, if it has one."""
        return self.url + (f"?token={self.token}" if self.token else "")

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # -- requests ------------------------------------------------------------------------

    def request(self, method, path, json_body=None, *, body=None, headers=None, token=True, timeout=30):
        """(status, parsed JSON or bytes, headers); ``path`` is sent exactly as given."""
        sent = dict(headers or {})
        if token and self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                connection.request(method, path, body=body, headers=sent)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (a body too large) and closed before all was sent
            response = connection.getresponse()
            data = response.read()
            kind = response.getheader("content-type") or ""
            value = json.loads(data) if "json" in kind and "ndjson" not in kind and data else data
            return response.status, value, dict(response.getheaders())
        finally:
            connection.close()

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json_body=None, **kwargs):
        return self.request("POST", path, json_body, **kwargs)

    def start_run(self, config_text: str) -> dict:
        status, run, _ = self.post("/api/runs", {"config": config_text})
        assert status == 201, run
        return run

    def run(self, run_id: str) -> dict:
        status, run, _ = self.get(f"/api/runs/{run_id}")
        assert status == 200, run
        return run

    def wait_for(self, run_id, condition, timeout=90, what="the condition"):
        deadline = time.monotonic() + timeout
        run = self.run(run_id)
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if condition(run):
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not reach {what} in {timeout}s: {run}\n"
                             f"log:\n{self.log_of(run_id)}")

    def wait_for_status(self, run_id, *statuses, timeout=90):
        return self.wait_for(run_id, lambda r: r["status"] in statuses, timeout, "/".join(statuses))

    def log_of(self, run_id) -> str:
        path = self.runs_dir / run_id / "log.txt"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


OTHER_UID = 65534  # nobody: another local user


def as_other_user(code: str) -> subprocess.CompletedProcess:
    """Python code run as another user of this machine (uid 65534), by the system's python3.
    Switching users needs root, which CI has; a developer's own account cannot."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    python = "/usr/bin/python3"  # Debian's, which another user may run (the venv's is ours)
    assert Path(python).exists(), f"{python} is missing: another user needs a Python to run"
    return subprocess.run([python, "-c", code], user=OTHER_UID, group=OTHER_UID, extra_groups=[],
                          capture_output=True, text=True, timeout=60, cwd="/")


def group_members(pgid: int, *, zombies: bool = True) -> list[int]:
    """The processes of process group ``pgid`` (without zombies if ``zombies`` is false)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[2] == str(pgid) and (zombies or fields[0] != "Z"):
                found.append(int(entry.name))
    return found


def group_alive(pgid: int) -> bool:
    """Whether any process that is not a zombie is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return bool(group_members(pgid, zombies=False))


def wait_gone(pgid: int, timeout=15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


def factual_folder(folder) -> Path:
    """A folder where `atk init factual-qa --samples` wrote the template and sample documents."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "factual-qa.yaml").exists():
        result = run_cli("init", "factual-qa", "factual-qa.yaml", "--samples", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def factual_config(folder, *, delay: float = 0.0, concurrency: int | None = None, **fields) -> str:
    """The factual-qa template, set to run offline on the scripted backend over the samples."""
    folder = factual_folder(folder)
    tree = yaml.safe_load((folder / "factual-qa.yaml").read_text(encoding="utf-8"))
    model = dict(SCRIPTED)
    if delay:
        model["delay"] = delay
    if concurrency:
        model["concurrency"] = concurrency
    tree.update(input_dir=str(folder / "documents"), rewrite_conversations=False,
                models={"small": dict(model), "large": dict(model)})
    tree.update(fields)
    return yaml.safe_dump(tree, sort_keys=False)
