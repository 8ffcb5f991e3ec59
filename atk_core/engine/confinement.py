"""What a run may read, when whoever started it may not read everything its user can.

``atk serve`` checks the paths a config names before a run starts, but a
folder it allows can hold a symlink to a file anywhere; the run opens the
files inside, so the run must refuse those itself. The server gives each run
the folders it may read in ``ATK_READ_ONLY_UNDER`` (``os.pathsep``-joined);
readers of the user's files (documents, prompt overrides) ask
``outside_readable`` before they open one. Without the variable (``atk run``
from a shell) every path is readable, as it is for the user.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "ATK_READ_ONLY_UNDER"


def readable_roots(environ=None) -> list[Path] | None:
    """The folders a run may read from, or None when it may read anything."""
    value = (os.environ if environ is None else environ).get(ENV)
    if value is None:
        return None
    return [Path(os.path.realpath(part)) for part in value.split(os.pathsep) if part]


def outside_readable(path, roots=None) -> str | None:
    """Why ``path`` may not be read (it resolves, through links, outside the readable
    folders), or None when it may."""
    roots = readable_roots() if roots is None else roots
    if roots is None:
        return None
    real = Path(os.path.realpath(path))
    if any(real == root or root in real.parents for root in roots):
        return None
    return "link outside the readable folders: it leads to a file this run may not read"
