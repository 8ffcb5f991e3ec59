"""The ``taskstore`` progress reporter: a run's progress, written into ``atk serve``'s task store.

``atk serve`` adds it to every run it starts::

    progress: [console, {taskstore: {db: RUNS_DIR/tasks.sqlite, run_id: RUN_ID}}]

Each event updates the run's progress and message (what the page's bars
show) at once. Events are kept too, but progress events only when something
changed enough to matter, so a run of a million samples does not keep a
million rows.
"""

from __future__ import annotations

import time

from ..hookspecs import hookimpl


@hookimpl
def atk_register_progress_reporters(register):
    register("taskstore", TaskStoreReporter)


class TaskStoreReporter:
    """Progress into atk serve's task store (options: db, the tasks.sqlite path; run_id)."""

    keep_every = 2.0  # seconds: a progress event is kept at least this often
    keep_step = 0.01  # or when progress moved this much

    def __init__(self, db: str | None = None, run_id: str | None = None):
        from .store import TaskStore

        if not db or not run_id:
            raise ValueError("the taskstore reporter is atk serve's own: it needs the db and"
                             " run_id that atk serve gives it")
        self.run_id = str(run_id)
        self._store = TaskStore(db)
        self._kept = (None, -1.0, 0.0)  # message step, progress, time of the last kept event

    def handle(self, event):
        self._store.report(self.run_id, event.kind, event.progress, event.message, event.time,
                           keep=self._keep(event, time.time()), usage=getattr(event, "usage", None))

    def _keep(self, event, now) -> bool:
        step = (event.message or "").split(":", 1)[0]
        last_step, last_progress, last_time = self._kept
        progress = event.progress if event.progress is not None else last_progress
        if (event.kind != "progress" or step != last_step or now - last_time >= self.keep_every
                or progress - last_progress >= self.keep_step):
            self._kept = (step, progress, now)
            return True
        return False

    def close(self):
        self._store.close()
