"""The package as a user gets it: Ray is optional for atk, and the wheel works on its own."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from atk_core.testing import venv_cli, write_config, write_documents
from ray_fakes import DOCUMENTS

HERE = Path(__file__).resolve().parent
DATA_FILES = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl",
              "failures.jsonl")


def test_atk_help_and_atk_list_do_not_import_ray(tmp_path):
    # atk's own entry point (python -m atk_core), in a process that reports at exit whether
    # Ray was imported.
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print('ray imported:', 'ray' in sys.modules, file=sys.stderr))\n"
             "sys.argv[0] = 'atk'\n"
             "runpy.run_module('atk_core', run_name='__main__', alter_sys=True)\n")
    env = {k: v for k, v in os.environ.items() if k != "ATK_LOAD_PLUGINS"}

    def atk(*args):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                                text=True, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().splitlines()[-1] == "ray imported: False", result.stderr
        return result.stdout

    assert "run" in atk("--help")
    atk("list")
    (listed,) = [e for e in json.loads(atk("list", "executors", "--json")) if e["name"] == "ray"]
    assert listed["distribution"] == "atk-executor-ray"  # the executor is there, Ray is not


def test_runs_from_its_wheel_on_a_local_ray_instance(installed_python, tmp_path):
    """No address: the executor starts a Ray instance of its own for the run, and stops it."""
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=HERE)
    listed = json.loads(atk("list", "executors", "--json").stdout)
    (ray,) = [e for e in listed if e["name"] == "ray"]
    assert ray["distribution"] == "atk-executor-ray"

    documents = write_documents(tmp_path / "documents", DOCUMENTS)
    role = {"backend": "scripted", "respond": "ray_fakes:respond"}
    for name, executor in (("local", "local"), ("on_ray", {"ray": {"workers": 2}})):
        config = write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                              output_dir=str(tmp_path / name), executor=executor,
                              models={"small": role, "large": role})
        atk("run", config, timeout=600)
    for name in DATA_FILES:
        assert (tmp_path / "on_ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    manifest = json.loads((tmp_path / "on_ray" / "manifest.json").read_text())
    assert sum(m["requests_sent"] for m in manifest["models"].values()) > 0
    # The instance the run started ended with it: no process of that venv's Ray is left.
    venv = str(Path(installed_python).parent.parent).encode()
    deadline = time.monotonic() + 30
    while left := ray_processes(venv):
        assert time.monotonic() < deadline, f"Ray processes left after the run: {left}"
        time.sleep(0.2)


def ray_processes(venv: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if venv in command and b"/ray/" in command:
            found.append(int(entry.name))
    return found
