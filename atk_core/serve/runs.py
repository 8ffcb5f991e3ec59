"""Runs as tasks: ``atk serve`` starts, watches, cancels and resumes ``atk run`` processes.

A run is a folder in the runs folder::

    RUNS_DIR/tasks.sqlite          the task store (every run, its status and events)
    RUNS_DIR/RUN_ID/config.yaml    the config text exactly as submitted
    RUNS_DIR/RUN_ID/settings.txt   the server's overrides (--set-file): output_dir, progress
    RUNS_DIR/RUN_ID/log.txt        the run's stdout and stderr
    RUNS_DIR/RUN_ID/output/        output_dir, forced here; downloads are confined to it

and a process, ``python -m atk_core run RUN_ID/config.yaml --set-file
RUN_ID/settings.txt``, in a session of its own. The overrides are in a private
file rather than on the command line, which every user of the machine can
read (a reporter's URL may carry a password), and config.yaml stays what the
user wrote (comments, ``${VAR}`` references and all); ``progress`` keeps the
config's reporters, adds ``console`` (its lines go to log.txt) and
``taskstore`` (progress into the task store, which is what the page shows).

The task store says which runs there are and in what state; it is never
trusted with what a run executes: a run's folder is the runs folder and its
id, and its command is made again from its checked config each time it starts.

This module is the queue of processes. What a submitted config may do is checked in
``vetting.py``, what a run wrote is read in ``outputs.py``, and where its files lie is
``layout.py``. Nothing here imports FastAPI: the web layer is ``app.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..engine.confinement import ENV as READ_ONLY_UNDER
from ..errors import AtkError, ConfigError, one_line
from .folder import claim, open_private, read_private
from .layout import CONFIG_FILE, LOG_FILE, OUTPUT_DIR, SETTINGS_FILE, RunError, last_error_line, run_folder
from .outputs import RunOutputs
from .processes import is_alive, launch, signal_group, stop_groups
from .store import ACTIVE, RESUMABLE, TASKS_FILE, TaskStore
from .vetting import ConfigVetter, Prepared

log = logging.getLogger("atk")

CANCEL_GRACE = 5.0  # seconds between SIGINT and SIGKILL
MAX_QUEUED = 100  # runs waiting to start; more are refused (429) until some have started


class RunManager:
    """The runs of one runs folder as processes: queue, start, watch, cancel, resume, recover
    after a restart. What a config may do is ``vetter``'s (a ``ConfigVetter``); what a run
    wrote is read through ``outputs`` (a ``RunOutputs``)."""

    def __init__(self, runs_dir, *, registry=None, cancel_grace: float = CANCEL_GRACE,
                 allow_env=(), allow_input=None, max_running: int = 1, allow_scripted: bool = False,
                 max_queued: int = MAX_QUEUED, claimed: tuple[int, int] | None = None):
        self.runs_dir = Path(runs_dir).resolve()
        # Ours and private, or ConfigError saying why; ``claimed``: atk serve has just checked.
        self._identity = claimed or claim(self.runs_dir)
        self.allow_env = frozenset(allow_env)
        self.allow_input = [Path(f).resolve() for f in (allow_input or [os.getcwd()])]
        self.max_running = max(1, int(max_running))
        self.max_queued = max(1, int(max_queued))
        self.db_path = self.runs_dir / TASKS_FILE
        self.store = TaskStore(self.db_path)
        self.vetter = ConfigVetter(self.runs_dir, self.db_path, registry=registry, allow_env=self.allow_env,
                                   allow_input=self.allow_input, allow_scripted=allow_scripted)
        self.outputs = RunOutputs(self.runs_dir)
        self.cancel_grace = cancel_grace
        self._procs: dict[str, subprocess.Popen] = {}
        self._watchers: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()
        self._stopping = False
        self._pending: dict[str, str] = {}  # queued run -> what its start is called (started, resumed)

    def run_dir(self, run_id: str) -> Path:
        return run_folder(self.runs_dir, run_id)

    # -- starting ---------------------------------------------------------------------------

    def start(self, text: str) -> dict:
        from ..toolkit.files import atomic_write_text

        if self._stopping:
            raise RunError("the server is stopping", 503)
        self._check_queue()
        prepared = self.vetter.prepare(text)
        run_id = prepared.run_id
        run_dir = self.run_dir(run_id)
        run_dir.mkdir(mode=0o700)
        (run_dir / OUTPUT_DIR).mkdir(mode=0o700)
        atomic_write_text(run_dir / CONFIG_FILE, text, mode=0o600)  # it may hold literal secrets
        with self._lock:
            self._check_queue()
            self.store.add_run(id=run_id, pipeline=prepared.pipeline, run_dir=str(run_dir),
                               cwd=os.getcwd(), command=self._command(run_dir),
                               config_redacted=prepared.redacted_yaml)
            self.store.add_event(run_id, "queued", 0.0, "waiting to start")
            self._pending[run_id] = "started"
            self._schedule()
        return self.store.run(run_id)

    def _check_queue(self) -> None:
        waiting = len(self.store.runs(("queued",)))
        if waiting >= self.max_queued:
            raise RunError(f"{waiting} runs are waiting to start, the most this server queues;"
                           " send it again when some have started", 429)

    def resume(self, run_id: str) -> dict:
        run = self._resumable(run_id)
        self._check_queue()
        try:
            text = read_private(self.run_dir(run_id) / CONFIG_FILE)
        except OSError as exc:
            raise RunError(f"cannot read the run's config: {exc.strerror}", 409) from None
        # The same checks (the environment may have changed), outside the lock: a slow
        # pipeline check must not hold up cancels and finishing runs. Values naming
        # relative paths are checked only where the run will run; else the run checks them.
        same_folder = os.path.realpath(run["cwd"]) == os.path.realpath(os.getcwd())
        prepared = self.vetter.prepare(text, run_id, values=same_folder, cwd=run["cwd"])
        # One lock from the second status check to the new process: of two resumes sent at
        # once, the second finds the run running and is refused, rather than starting a twin.
        with self._lock:
            self._resumable(run_id)
            self._check_queue()
            self.store.update_run(run_id, config_redacted=prepared.redacted_yaml,
                                  status="queued", queued=time.time(), pid=None, finished=None,
                                  exit_code=None, error=None, message="waiting to start",
                                  cancel_requested=0)
            self.store.add_event(run_id, "queued", run["progress"], "waiting to start")
            self._pending[run_id] = "resumed"
            self._schedule()
            return self.store.run(run_id)

    def _schedule(self) -> None:
        """Start queued runs, oldest in the queue first, while fewer than ``max_running`` run.
        Each is checked again as it starts (its config, inputs and environment may have
        changed while it waited), and what it runs is made from that check, never taken from
        the task store. Called (under the lock) whenever a run is queued or ends."""
        with self._lock:
            while not self._stopping:
                running = self.store.runs(("running",))
                waiting = sorted(self.store.runs(("queued",)),
                                 key=lambda r: (r["queued"] or r["created"], r["id"]))
                if not waiting or len(running) >= self.max_running:
                    return
                run = waiting[0]
                note = self._pending.pop(run["id"], "started")
                try:
                    self._check_runs_dir()
                    if not os.path.isdir(run["cwd"]):
                        raise ConfigError(f"the folder it runs in, {run['cwd']}, is gone")
                    run_dir = self.run_dir(run["id"])
                    prepared = self.vetter.prepare(read_private(run_dir / CONFIG_FILE), run["id"],
                                            values=False, cwd=run["cwd"])
                    self._write_settings(run_dir, prepared)
                except Exception as exc:  # whatever it is, this run fails; the queue goes on
                    error = one_line(exc) if isinstance(exc, AtkError) else f"{type(exc).__name__}: {exc}"
                    self.store.update_run(run["id"], status="failed", finished=time.time(), error=error)
                    self.store.add_event(run["id"], "failed", 0.0, error)
                    continue
                try:
                    self._launch(run["id"], self._command(run_dir), prepared.env, note=note)
                except RunError:
                    continue  # marked failed; the next one may start

    def _check_runs_dir(self) -> None:
        """The runs folder is still the one this server claimed (nobody swapped it)."""
        try:
            info = os.lstat(self.runs_dir)
        except OSError as exc:
            raise ConfigError(f"the runs folder {self.runs_dir} is gone: {exc.strerror}") from None
        if (info.st_dev, info.st_ino) != self._identity or info.st_uid != os.geteuid():
            raise ConfigError(f"the runs folder {self.runs_dir} was replaced while the server ran;"
                              " restart the server")

    def _resumable(self, run_id: str) -> dict:
        run = self._get(run_id)
        if run["status"] not in RESUMABLE:
            raise RunError(f"run {run_id} is {run['status']}; only interrupted, failed or cancelled"
                           " runs can be resumed", 409)
        if self._stopping:
            raise RunError("the server is stopping", 503)
        return run

    @staticmethod
    def _command(run_dir: Path) -> list:
        return [sys.executable, "-m", "atk_core", "run", str(run_dir / CONFIG_FILE), "--debug",
                "--set-file", str(run_dir / SETTINGS_FILE)]

    @staticmethod
    def _write_settings(run_dir: Path, prepared: Prepared) -> None:
        """The server's overrides for the run, where only this user can read them."""
        text = "".join(override + "\n" for override in prepared.overrides)
        path = run_dir / SETTINGS_FILE
        try:
            os.unlink(path)  # a new file, never one that something else holds open or links to
        except FileNotFoundError:
            pass
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    def _launch(self, run_id: str, command: list, extra_env: dict, note: str) -> None:
        run = self.store.run(run_id)
        run_dir = self.run_dir(run_id)
        # Not the server's whole environment: only what a process needs to run, and the
        # variables configs may use (an API key a backend would pick up unasked stays out).
        env = {k: v for k, v in os.environ.items()
               if (k in _RUN_ENVIRONMENT or k.startswith(("LC_", "XDG_")) or k in self.allow_env)
               and k != "ATK_SERVE_TOKEN"}
        env.update(extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        # What the run may open: the allowed folders and its own, not what a link there leads to.
        env[READ_ONLY_UNDER] = os.pathsep.join([*map(str, self.allow_input), str(run_dir)])
        cwd = run["cwd"] if os.path.isdir(run["cwd"]) else os.getcwd()
        with self._lock:
            # Running before the process exists, so that nothing the run reports is overwritten.
            self.store.update_run(
                run_id, status="running", pid=None, started=time.time(), finished=None,
                exit_code=None, error=None, progress=0.0, message="starting",
                cancel_requested=0, attempts=run["attempts"] + 1,
            )
            self.store.add_event(run_id, note, 0.0, None)
            try:
                proc = launch(command, cwd=cwd, env=env, log_path=run_dir / LOG_FILE, note=note)
            except OSError as exc:
                error = f"could not start the run: {exc.strerror or exc}"
                self.store.update_run(run_id, status="failed", finished=time.time(), error=error)
                self.store.add_event(run_id, "failed", 0.0, error)
                raise RunError(error, 500) from None
            self._procs[run_id] = proc
            self.store.update_run(run_id, pid=proc.pid)
            watcher = threading.Thread(target=self._watch, args=(run_id, proc),
                                       name=f"atk-run-{run_id}", daemon=True)
            self._watchers[run_id] = watcher
            watcher.start()

    # -- watching -------------------------------------------------------------------------

    def _watch(self, run_id: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        signal_group(proc.pid, signal.SIGKILL)  # whatever the run left behind in its group
        with self._lock:
            self._procs.pop(run_id, None)
            self._finish(run_id, code)
            self._schedule()

    def _adopt(self, run_id: str, pid: int, marker: str) -> None:
        """Watch a run that a previous server started and that is still going."""
        while is_alive(pid, marker):
            time.sleep(0.25)
        with self._lock:
            self._finish(run_id, None)
            self._schedule()

    def _finish(self, run_id: str, code: int | None) -> None:
        run = self.store.run(run_id)
        if run is None or run["status"] not in ACTIVE:
            return
        now = time.time()
        if code is None:  # adopted: no exit status, only what the run reported
            status, message, error = self._outcome_from_events(run)
        elif run["cancel_requested"]:
            status, message, error = "cancelled", "cancelled", None
        elif self._stopping:
            status, message, error = "interrupted", "interrupted: the server stopped", None
        elif code == 0:
            status, message, error = "done", run["message"], None
        else:
            error = last_error_line(self.run_dir(run_id) / LOG_FILE) or f"exited with status {code}"
            status, message = "failed", run["message"]
        values = dict(status=status, message=message, error=error, finished=now, exit_code=code)
        if status == "done":
            values["progress"] = 1.0
        self.store.update_run(run_id, **values)
        self.store.add_event(run_id, status, values.get("progress", run["progress"]), error or message)

    def _outcome_from_events(self, run) -> tuple:
        last = self.store.last_event(run["id"])
        if run["cancel_requested"]:
            return "cancelled", "cancelled", None
        if last and last["kind"] == "finish":
            return "done", last["message"], None
        if last and last["kind"] == "fail" and last["message"] != "interrupted":
            return "failed", run["message"], last_error_line(self.run_dir(run["id"]) / LOG_FILE) or last["message"]
        return "interrupted", "interrupted: its process ended while the server was not watching", None

    # -- cancelling ---------------------------------------------------------------------------

    def cancel(self, run_id: str) -> dict:
        with self._lock:  # not while a launch is half done
            run = self._get(run_id)
            if run["status"] not in ACTIVE:
                raise RunError(f"run {run_id} is {run['status']}, not running", 409)
            self.store.update_run(run_id, cancel_requested=1, message="cancelling")
            pid = run["pid"]
            if pid is None:  # still in the queue: it leaves it
                self._pending.pop(run_id, None)
                self._finish(run_id, None)
                return self.store.run(run_id)
        threading.Thread(target=stop_groups, args=([pid], self.cancel_grace), daemon=True).start()
        return self.store.run(run_id)

    # -- after a restart, and at the end ---------------------------------------------------------

    def recover(self) -> list[str]:
        """Find out what became of the runs that were active when the last server stopped."""
        adopted = []
        for run in self.store.runs(("running",)):
            marker = str(self.run_dir(run["id"]) / CONFIG_FILE)
            if run["pid"] and is_alive(run["pid"], marker):
                thread = threading.Thread(target=self._adopt, args=(run["id"], run["pid"], marker),
                                          name=f"atk-run-{run['id']}", daemon=True)
                self._watchers[run["id"]] = thread
                thread.start()
                adopted.append(run["id"])
            else:
                with self._lock:
                    self._finish(run["id"], None)
        self._schedule()  # the queue a previous server left, in its order
        return adopted

    def shutdown(self, grace: float | None = None) -> int:
        """Interrupt every run still going (they can be resumed later) and wait for them.

        Returns how many there were.
        """
        with self._lock:  # no run starts between this and the list of runs to stop
            self._stopping = True
            active = [r for r in self.store.runs(ACTIVE) if r["pid"]]
        grace = self.cancel_grace if grace is None else grace
        stop_groups([run["pid"] for run in active], grace)
        for watcher in list(self._watchers.values()):
            watcher.join(timeout=2.0)
        return len(active)

    # -- reading a run ------------------------------------------------------------------------------

    def _get(self, run_id: str) -> dict:
        run = self.store.run(run_id)
        if run is None:
            raise RunError(f"no run {run_id!r}", 404)
        return run

    def get(self, run_id: str) -> dict:
        return self._get(run_id)


# What a run started by the server gets of its environment (besides LC_* and XDG_*, and the
# variables the server was started to allow).
_RUN_ENVIRONMENT = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "TEMP",
    "TMP", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SYSTEMROOT", "LD_LIBRARY_PATH",
    "ATK_LOAD_PLUGINS", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
})
