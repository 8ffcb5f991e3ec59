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

Nothing here imports FastAPI: the web layer is ``app.py``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.confinement import ENV as READ_ONLY_UNDER
from ..errors import AtkError, ConfigError, one_line
from ..engine.redaction import REDACTED, move_to_environment, scrub, secret_strings
from .folder import claim, open_private, read_private
from .processes import is_alive, launch, signal_group, stop_groups
from .store import ACTIVE, RESUMABLE, TASKS_FILE, TaskStore

log = logging.getLogger("atk")

CONFIG_FILE = "config.yaml"
SETTINGS_FILE = "settings.txt"
LOG_FILE = "log.txt"
OUTPUT_DIR = "output"
SECRET_ENV = "ATK_SERVE_SECRET_"
CANCEL_GRACE = 5.0  # seconds between SIGINT and SIGKILL
MAX_QUEUED = 100  # runs waiting to start; more are refused (429) until some have started

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")

_HIDDEN_SUFFIXES = (".tmp", "-wal", "-shm", "-journal")


class RunError(Exception):
    """A request about a run that cannot be done; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Prepared:
    """A submitted config, checked, with what its process needs."""

    config: object  # RunConfig, with the server's overrides applied
    pipeline: str
    run_id: str
    overrides: list  # --set texts
    env: dict  # extra environment: literal reporter secrets moved off the command line
    warnings: list = field(default_factory=list)  # what `atk run` would warn about

    @property
    def redacted_yaml(self) -> str:
        text = self.config.redacted_yaml()
        for name in self.env:
            text = text.replace("${" + name + "}", REDACTED)
        return text


class RunManager:
    """The runs of one runs folder: start, watch, cancel, resume, recover after a restart."""

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
        self.allow_scripted = allow_scripted
        self.db_path = self.runs_dir / TASKS_FILE
        self.store = TaskStore(self.db_path)
        self.registry = registry
        self.cancel_grace = cancel_grace
        self._procs: dict[str, subprocess.Popen] = {}
        self._watchers: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()
        self._stopping = False
        self._pending: dict[str, str] = {}  # queued run -> what its start is called (started, resumed)

    # -- checking a config ---------------------------------------------------------------

    def prepare(self, text: str, run_id: str | None = None, values: bool = True,
                cwd: str | None = None) -> Prepared:
        """Check config text as ``atk run`` would, with the server's overrides for ``run_id``
        (a new run's id, named after its pipeline, when None), and confine it: only allowed
        ``${VAR}``\\ s, inputs inside the allowed folders (relative to ``cwd``, the folder the
        run runs in; default: the server's), writes inside the run's folder.

        Raises ``ConfigError``/``PluginError`` with the CLI's one-line messages, with every
        value of an allowed variable and every literal secret of the config hidden.
        ``values=False`` leaves out the backends' and the pipeline's own checks,
        which read paths relative to the folder the run will run in.
        """
        hidden = self.secrets()
        try:
            prepared = self._prepare(text, run_id, values, cwd, hidden)
        except AtkError as exc:
            message = scrub(str(exc), hidden)
            if message == str(exc):
                raise
            raise type(exc)(message) from None
        prepared.warnings = [scrub(w, hidden) for w in prepared.warnings]
        return prepared

    def secrets(self) -> list[str]:
        """What no answer of the server may show: the values of the allowed variables."""
        return secret_strings({}, [os.environ[name] for name in self.allow_env if os.environ.get(name)])

    def _prepare(self, text, run_id, values, cwd, hidden: list) -> Prepared:
        from ..engine.config import config_from_text, parse_yaml, plain
        from ..engine.plugins import get_registry
        from ..engine.runner import check, new_task_id

        registry = self.registry or get_registry()
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{CONFIG_FILE}: the config is empty; it needs at least 'pipeline:'")
        raw = parse_yaml(text, CONFIG_FILE)  # before ${VAR} substitution: references stay references
        literal = [v for v in secret_strings(raw if isinstance(raw, dict) else {}) if "${" not in v]
        hidden[:] = secret_strings({}, [*hidden, *literal])
        self._check_references(raw)
        environ = {k: v for k, v in os.environ.items() if k in self.allow_env}
        written = config_from_text(text, CONFIG_FILE, environ=environ)  # as written: its mistakes first
        self._check_backends(written.tree)  # after substitution: ${X:-scripted} is scripted
        run_id = run_id or new_task_id(written.pipeline)
        run_dir = self.run_dir(run_id)
        entries = raw.get("progress") if isinstance(raw, dict) else None
        entries = [] if entries is None else (entries if isinstance(entries, list) else [entries])
        env: dict[str, str] = {}
        progress = [_confined(plain(e), run_dir) for e in entries if _reporter_name(e) != "taskstore"]
        progress = [move_to_environment(e, env, SECRET_ENV) for e in progress]
        if "console" not in [_reporter_name(e) for e in progress]:
            progress.insert(0, "console")
        progress.append({"taskstore": {"db": str(self.db_path), "run_id": run_id}})
        output_dir = run_dir / OUTPUT_DIR
        overrides = [f"output_dir={json.dumps(str(output_dir))}", f"progress={_flow_yaml(progress)}"]
        config = config_from_text(text, CONFIG_FILE, overrides, {**environ, **env})
        self._check_backends(config.tree)  # what the run will start with
        self._check_inputs(config.tree, run_dir, cwd or os.getcwd(), registry)
        plan = check(config, registry=registry, values=values)
        return Prepared(config, config.pipeline, run_id, overrides, env, plan.warnings)

    def run_dir(self, run_id: str) -> Path:
        """A run's folder: the runs folder and its id (never a path the task store holds)."""
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
            raise RunError(f"not a run id: {str(run_id)[:80]!r}", 404)
        return self.runs_dir / run_id

    def _check_references(self, raw) -> None:
        """A config sent to the server may use only the ``${VAR}``\\ s it was started to allow
        (``--allow-env``): anything else could send the server's environment anywhere."""
        from ..engine.config import env_references

        refused = sorted({name for name in env_references(raw) if name not in self.allow_env})
        if refused:
            allowed = ", ".join(sorted(self.allow_env)) or "none"
            raise ConfigError(f"{CONFIG_FILE}: ${{{refused[0]}}} is not an environment variable this"
                              f" server lets a config use (allowed: {allowed}); start atk serve with"
                              f" --allow-env {refused[0]} to allow it")

    def _check_backends(self, tree) -> None:
        """The scripted backend runs a Python function the config names: a test tool, refused
        in configs sent to the server unless it was started with ``--allow-scripted``. Checked
        on the tree after ``${VAR}`` substitution, where a default can name a backend."""
        models = tree.get("models") if isinstance(tree, dict) else None
        for role, spec in (models.items() if isinstance(models, dict) else ()):
            backend = spec.get("backend") if isinstance(spec, dict) else spec
            if str(backend).partition(":")[0].strip() == "scripted" and not self.allow_scripted:
                raise ConfigError(f"{CONFIG_FILE}: models.{role}: the scripted backend runs code a config"
                                  " names, so a config sent to this server may not use it (start atk"
                                  " serve with --allow-scripted for tests and demos)")

    def _check_inputs(self, tree, run_dir: Path, cwd: str, registry) -> None:
        """Every text value of the config, taken as a path, lies inside the folders the
        server may read (``--allow-input``) or the run's own folder, and not in another
        run's. A value that leads out of ``cwd`` (the folder the run runs in: absolute, ``~``
        or ``..``) is checked whether or not it exists yet, so that nothing can be put there
        later; one inside ``cwd`` only if it names something there (most values are no path:
        a model name, a prompt). A role's ``model`` is a file to load for some backends
        (llama.cpp's): it is held to the same rule, except that a backend which only sends
        the name on (``Backend.model_is_a_name``) may name a file that is not there."""
        from ..models.specs import as_mapping

        runs = self.runs_dir
        own = run_dir.resolve()
        models = tree.get("models")
        if isinstance(models, dict):  # "llamacpp:/x.gguf" read as {backend: llamacpp, model: /x.gguf}
            models = {role: as_mapping(v) if isinstance(v, (str, dict)) else v for role, v in models.items()}
            tree = {**tree, "models": models}
        names_only = self._roles_naming_models(
            {r: v for r, v in (models or {}).items() if isinstance(v, dict)} if isinstance(models, dict) else {},
            registry)
        for where, value in _strings(tree):
            if where and where[0] in ("output_dir", "progress"):
                continue  # set by the server, or confined above
            if len(where) == 3 and where[0] == "models" and where[2] == "base_url":
                continue  # an address
            name_only = len(where) == 3 and where[0] == "models" and where[2] == "model" \
                and where[1] in names_only
            try:
                expanded = os.path.expanduser(value)
                # Links first, then "..": "link/../x" is the folder above the link's target,
                # wherever that is, not the working folder.
                real = Path(os.path.realpath(os.path.join(cwd, expanded)))
                home = os.path.realpath(cwd)
                escapes = os.path.isabs(expanded) or not (str(real) == home
                                                          or str(real).startswith(os.path.join(home, "")))
                named = os.path.lexists(os.path.join(cwd, expanded))
                if not named and (name_only or not escapes or any(c.isspace() for c in value)):
                    continue  # names nothing, here or as a path (a model name, a prompt)
            except (OSError, ValueError):  # a NUL byte...: no file can be opened by that name
                continue
            if real == own or own in real.parents:
                continue
            allowed = any(real == f or f in real.parents for f in self.allow_input)
            other_run = real == runs or runs in real.parents or real in runs.parents
            if not allowed or other_run:
                shown = ".".join(str(part) for part in where)
                folders = ", ".join(str(f) for f in self.allow_input)
                where_it_is = (f"outside the folders this server may read ({folders})" if not allowed
                               else "in the runs folder, or holding it (other runs' files)")
                raise ConfigError(f"{CONFIG_FILE}: {shown} names a path {where_it_is}; start atk"
                                  " serve with --allow-input FOLDER to let configs read a folder")
            if real.is_dir():
                self._check_links(real, where)

    def _check_links(self, folder: Path, where, limit: int = 100_000) -> None:
        """No link inside an allowed folder a config names leads out of the allowed folders
        (the run would read through it). The first ``limit`` entries are looked at here; the
        run itself skips any such file it finds later (``ATK_READ_ONLY_UNDER``)."""
        from ..engine.confinement import outside_readable

        seen = 0
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                seen += 1
                if seen > limit:
                    return
                path = os.path.join(root, name)
                if os.path.islink(path) and outside_readable(path, self.allow_input):
                    shown = ".".join(str(part) for part in where)
                    inside = Path(path).relative_to(folder).as_posix()
                    raise ConfigError(f"{CONFIG_FILE}: {shown} holds {inside}, a link to a path"
                                      " outside the folders this server may read; start atk serve"
                                      " with --allow-input FOLDER to let configs read it")

    @staticmethod
    def _roles_naming_models(models: dict, registry) -> set:
        """The roles whose backend only sends ``model`` on as a name, never opens it."""
        roles = set()
        for role, settings in models.items():
            try:
                backend = registry.backend(settings.get("backend"))
            except Exception:  # the config's own check names what is wrong with it
                continue
            if getattr(backend, "model_is_a_name", False):
                roles.add(role)
        return roles

    # -- starting ---------------------------------------------------------------------------

    def start(self, text: str) -> dict:
        from ..toolkit.files import atomic_write_text

        if self._stopping:
            raise RunError("the server is stopping", 503)
        self._check_queue()
        prepared = self.prepare(text)
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
        prepared = self.prepare(text, run_id, values=same_folder, cwd=run["cwd"])
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
                    prepared = self.prepare(read_private(run_dir / CONFIG_FILE), run["id"],
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

    def output_dir(self, run: dict) -> Path:
        return self.run_dir(run["id"]) / OUTPUT_DIR

    def log_tail(self, run: dict, max_bytes: int = 64_000) -> dict:
        path = self.run_dir(run["id"]) / LOG_FILE
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                handle.seek(max(0, size - max_bytes))
                data = handle.read(max_bytes)
        except OSError:
            return {"text": "", "size": 0, "truncated": False}
        truncated = size > max_bytes
        if truncated and b"\n" in data:
            data = data.split(b"\n", 1)[1]  # start at a whole line
        return {"text": data.decode("utf-8", errors="replace"), "size": size, "truncated": truncated}

    def records(self, run: dict, relative: str, offset: int = 0, limit: int = 20) -> dict:
        """A page of an output file's JSON-lines records (confined like ``file``)."""
        path = self.file(run, relative)
        if path.suffix != ".jsonl":
            raise RunError(f"{relative!r} is not a JSON-lines file (.jsonl) to page through", 400)
        total, page = 0, []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                if offset <= total < offset + limit:
                    try:
                        page.append(json.loads(line))
                    except ValueError:
                        page.append(line.rstrip("\n"))
                total += 1
        return {"file": relative, "total": total, "offset": offset, "records": page}

    def files(self, run: dict) -> list[dict]:
        """The run's output files (inside its output folder only), by path."""
        root = self.output_dir(run)
        try:
            real_root = root.resolve(strict=True)
        except OSError:
            return []
        found = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in names:
                if _hidden(name):
                    continue
                path = Path(folder) / name
                try:
                    real = path.resolve(strict=True)
                    stat = real.stat()
                except OSError:
                    continue
                if not real.is_file() or not _inside(real, real_root):
                    continue
                found.append({"path": path.relative_to(root).as_posix(), "size": stat.st_size,
                              "modified": stat.st_mtime})
        return sorted(found, key=lambda f: f["path"])

    def file(self, run: dict, relative: str) -> Path:
        """The output file ``relative`` names; ``RunError`` unless it is inside the output folder."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise RunError("not a valid file path", 400)
        if relative.startswith("/") or Path(relative).is_absolute():
            raise RunError("file paths are relative to the run's output folder", 400)
        parts = relative.split("/")
        if any(part in ("..", ".") for part in parts):
            raise RunError("file paths may not contain '.' or '..'", 400)
        if _hidden(parts[-1]):  # what the listing leaves out: half-written or internal files
            raise RunError(f"no output file {relative!r}", 404)
        root = self.output_dir(run)
        try:
            real_root = root.resolve(strict=True)
            real = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            raise RunError(f"no output file {relative!r}", 404) from None
        if not _inside(real, real_root) or not real.is_file():
            raise RunError(f"no output file {relative!r}", 404)
        return real

    def manifest(self, run: dict) -> dict | None:
        from ..errors import AtkError, ConfigError, one_line
        from ..commands.inspection import load_manifest

        try:
            data = load_manifest(self.output_dir(run))  # the same reading as `atk inspect`
        except (ConfigError, OSError, ValueError):
            return None  # not written yet, or a run that failed before its end
        return data if isinstance(data, dict) else None


# -- helpers ---------------------------------------------------------------------------------------


def _hidden(name: str) -> bool:
    """Files a run's listing leaves out: dotfiles, and atomic writes or SQLite journals in progress."""
    return name.startswith(".") or name.endswith(_HIDDEN_SUFFIXES)


def last_error_line(path) -> str | None:
    """The last ``atk: error:`` line of a log (else its last line), without the prefix."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 32_000))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    lines = [line.strip() for line in lines if line.strip() and not line.startswith("# ")]
    for line in reversed(lines):
        if line.startswith("atk: error: "):
            return line[len("atk: error: "):][:1000]
    return lines[-1][:1000] if lines else None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return path != root


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

# Options of a reporter that name a file or folder it writes (the jsonl reporter's ``path``).
_WRITES = ("path", "file", "dir", "folder")


def _confined(entry, run_dir: Path):
    """A reporter entry of a config sent to the server, its write paths kept inside the run's
    folder: a relative one is taken from the run's output folder, and one that leads out of
    the run's folder is refused."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return entry
    name, options = next(iter(entry.items()))
    if not isinstance(options, dict):
        return entry
    confined = dict(options)
    root = (run_dir / OUTPUT_DIR).resolve()  # not the run's config, settings or log beside it
    for key, value in options.items():
        if not isinstance(value, str) or not (key in _WRITES or key.endswith(tuple("_" + w for w in _WRITES))):
            continue
        if "$" in value:  # checked as written: ${VAR} would change it after the check
            raise ConfigError(f"{CONFIG_FILE}: progress: {name}.{key} may not use ${{...}} in a config"
                              " sent to the server")
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else root / path
        real = Path(os.path.realpath(path))
        if root not in real.parents:
            raise ConfigError(f"{CONFIG_FILE}: progress: {name}.{key} {value!r} is outside the run's"
                              f" output folder; a config sent to the server writes only there (give a"
                              f" path relative to it)")
        confined[key] = str(real)
    return {name: confined}


def _strings(node, where=()):
    """Every text value of a config tree, with the keys and indices that lead to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*where, index))
    elif isinstance(node, str):
        yield where, node


def _reporter_name(entry):
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        return next(iter(entry))
    return None


def _flow_yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True).strip()
