"""Executors are plugins: a config or ``--executor`` picks one, and none changes what a run writes.

The executor plugin here is installed the way a user's would be (an entry point
in a distribution on PYTHONPATH) and runs the samples the way a remote executor
must: its "worker" is another thread with its own event loop and its own
backend, built from the role's spec, which sees nothing of the driver's store
but the answers sent with each sample, and sends every new answer home, holding
its request slot until the driver has stored it. The real remote executor (Ray) is tested in plugins/atk-executor-ray.
"""

import json
from pathlib import Path

import pytest

from atk_core.testing import config_error, read_jsonl, run_cli, write_config

HERE = Path(__file__).resolve().parent
FAKES = HERE.parent / "plugins" / "atk-pipeline-factual" / "tests"

RELAY = '''
import asyncio, json, os, threading
from atk_core import Executor, NewAnswer, hookimpl, make_backend

class Relay(Executor):
    """Runs samples on a worker thread with its own backend, as a remote worker would."""

    def __init__(self, batch_size: int = 3):
        self.batch_size = batch_size
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.models = {}

    async def run(self, task, samples, *, on_done=None):
        with open(os.environ["RELAY_LOG"], "a") as log:
            log.write(json.dumps({"step": task.name, "role": task.role}) + "\\n")
        collected, todo = task.results(len(samples), on_done), []
        for index, sample in enumerate(samples):
            result, answers = await task.replay(sample)
            if result is not None:
                collected.finish(index, result, answers)
            else:
                todo.append((index, sample, answers))
        driver = asyncio.get_running_loop()
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            events = asyncio.Queue()

            async def emit(event):  # on the worker: home to the driver
                if isinstance(event, NewAnswer):  # the slot waits until the driver has stored it
                    stored = asyncio.run_coroutine_threadsafe(task.keep(event), driver)
                    await asyncio.wrap_future(stored)
                else:
                    driver.call_soon_threadsafe(events.put_nowait, event)

            async def work(batch=batch, emit=emit):
                work = task.work  # the worker side: the task itself stays on the driver
                model = self.models.get(work.role)
                if model is None:
                    model = self.models[work.role] = work.worker_model(make_backend(work.spec))
                await work.run_batch(model, batch, emit)

            job = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(), self.loop))
            answers = {index: known for index, _, known in batch}
            left = len(batch)
            while left:
                getter = asyncio.ensure_future(events.get())
                ready, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in ready:
                    getter.cancel()
                    job.result()
                    continue
                index, result, retries = getter.result()
                collected.finish(index, result, answers[index], retries)
                left -= 1
            await job
        return collected.values()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

@hookimpl
def atk_register_executors(register):
    register("relay", Relay)
'''


@pytest.fixture
def relay(site, tmp_path):
    site.add("atk-executor-relay", {"atk_executor_relay.py": RELAY}, {"relay": "atk_executor_relay"})
    paths = site.env()["PYTHONPATH"]
    return site.env(PYTHONPATH=f"{paths}:{FAKES}", RELAY_LOG=str(tmp_path / "relay.log"))


def factual(tmp_path, name, log, **extra):
    from atk_core.testing import write_mixed_inputs

    documents = tmp_path / "documents"
    if not documents.exists():
        write_mixed_inputs(documents)
    role = {"backend": "scripted", "respond": "factual_fakes:respond", "log": str(log)}
    return write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(tmp_path / name), models={"small": role, "large": role},
                        **extra)


def data(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl")) if p.name != "progress.jsonl"}


def lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_local_executor_is_built_in_and_listed(tmp_path):
    result = run_cli("list", "executors", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    local = next(e for e in json.loads(result.stdout) if e["name"] == "local")
    assert local["distribution"] == "atk-core"


def test_a_plugin_executor_writes_the_local_bytes_and_resumes_from_the_store(relay, tmp_path):
    listed = json.loads(run_cli("list", "executors", "--json", env=relay, cwd=tmp_path).stdout)
    assert {"local", "relay"} <= {e["name"] for e in listed}

    local_log, relay_log = tmp_path / "local.calls", tmp_path / "relay.calls"
    result = run_cli("run", factual(tmp_path, "local", local_log), env=relay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = factual(tmp_path, "relayed", relay_log, executor={"relay": {"batch_size": 2}})
    result = run_cli("run", config, env=relay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    assert data(tmp_path / "relayed") == data(tmp_path / "local")
    assert data(tmp_path / "local")["qa_pairs.jsonl"]
    assert lines(relay_log) == lines(local_log)
    steps = [json.loads(line)["step"] for line in (tmp_path / "relay.log").read_text().splitlines()]
    assert {"judge", "generate", "check_question", "check_answer", "conversation"} <= set(steps)
    manifest = json.loads((tmp_path / "relayed" / "manifest.json").read_text())
    assert sum(m["requests_sent"] for m in manifest["models"].values()) == lines(relay_log)

    # Again, on the local executor this time: the relayed run's store answers everything.
    result = run_cli("run", config, "--executor", "local", env=relay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert lines(relay_log) == lines(local_log)
    assert data(tmp_path / "relayed") == data(tmp_path / "local")
    resolved = (tmp_path / "relayed" / "config.resolved.yaml").read_text()
    assert "executor: local" in resolved  # what ran is what is saved
    manifest = json.loads((tmp_path / "relayed" / "manifest.json").read_text())
    assert sum(m["requests_sent"] for m in manifest["models"].values()) == 0


def test_a_run_killed_on_a_plugin_executor_resumes_without_asking_again(relay, tmp_path):
    from atk_core.testing import kill_midway

    local_log, relay_log = tmp_path / "local.calls", tmp_path / "relay.calls"
    assert run_cli("run", factual(tmp_path, "local", local_log), env=relay, cwd=tmp_path).returncode == 0
    config = factual(tmp_path, "relayed", relay_log, executor="relay")
    text = config.read_text().replace('"log":', '"delay": 0.05, "concurrency": 2, "log":')
    config.write_text(text)
    kill_midway(config, log=relay_log, calls=lines(local_log) // 2, env=relay, cwd=tmp_path)
    result = run_cli("run", config, env=relay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert data(tmp_path / "relayed") == data(tmp_path / "local")
    # The relay runs one batch at a time: at most its in-flight requests are asked twice.
    assert lines(relay_log) <= lines(local_log) + 2


@pytest.mark.parametrize("executor, message", [
    ("nonesuch", "unknown executor 'nonesuch'"),
    ("loca", "did you mean 'local'"),
    ({"local": {"workers": 2}}, "executor 'local': unknown option(s) workers; the local executor"
                                " takes none"),
    (["local", "ray"], "'executor:' is an executor's name or {name: {options}}"),
])
def test_a_wrong_executor_is_refused_before_anything_is_written(tmp_path, executor, message):
    config = factual(tmp_path, "refused", tmp_path / "calls", executor=executor)
    line = config_error(config, cwd=tmp_path)
    assert message in line, line
    assert not (tmp_path / "refused").exists()


def test_executor_on_the_command_line_is_checked_like_the_config(tmp_path):
    config = factual(tmp_path, "out", tmp_path / "calls")
    result = run_cli("run", config, "--executor", "{local: {x: 1", cwd=tmp_path)
    assert result.returncode == 2 and "--executor" in result.stderr
    result = run_cli("run", config, "--executor", "nonesuch", cwd=tmp_path)
    assert result.returncode == 2 and "unknown executor 'nonesuch'" in result.stderr
    assert not (tmp_path / "out").exists()
