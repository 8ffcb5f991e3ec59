"""``atk new pipeline|backend|reporter|reader NAME``: a complete plugin distribution from a scaffold.

The scaffolds live in ``atk_core/scaffolds/<kind>/`` (the repository's
``templates/`` points there), so they ship inside atk-core's wheel. A file
named ``*.tmpl`` loses that suffix; ``__package__`` in a path becomes the
import package; ``{{name}}``-style fields are filled in. What comes out
installs with pip and passes its own tests untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError

KINDS = ("pipeline", "backend", "reporter", "reader")
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def fields_for(kind: str, name: str) -> dict[str, str]:
    snake = name.replace("-", "_")
    return {
        "name": name,
        "kind": kind,
        "dist": f"atk-{kind}-{name}",
        "package": f"atk_{kind}_{snake}",
        "class_name": "".join(part.capitalize() for part in name.split("-")),
        "snake": snake,
    }


def create(kind: str, name: str, directory=".") -> Path:
    """Write the distribution ``atk-KIND-NAME`` into ``directory``; return its folder."""
    from ..engine.resources import files

    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not NAME.match(name):
        raise ConfigError(
            f"invalid name {name!r}: use lowercase letters and digits, words joined by '-',"
            " starting with a letter (e.g. 'my-pipeline')"
        )
    values = fields_for(kind, name)
    target = Path(directory) / values["dist"]
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another name or --dir")
    scaffold = files("atk_core") / "scaffolds" / kind
    rendered = list(_render_tree(scaffold, Path(), values))
    # Written beside the target, then renamed: a failure half way leaves no half a package.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{values['dist']}.", dir=target.parent))
    try:
        for relative, content in rendered:
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a package folder is an ordinary one
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _render_tree(folder, relative: Path, values):
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.name in ("__pycache__",) or item.name.endswith(".pyc"):
            continue
        name = item.name.replace("__package__", values["package"])
        if item.is_dir():
            yield from _render_tree(item, relative / name, values)
        else:
            if name.endswith(".tmpl"):
                name = name[: -len(".tmpl")]
            yield relative / name, render(item.read_text(encoding="utf-8"), values)


def render(text: str, values: dict[str, str]) -> str:
    def fill(match):
        key = match.group(1)
        if key not in values:
            raise KeyError(f"scaffold uses unknown field {key!r}")
        return values[key]

    return re.sub(r"\{\{(\w+)\}\}", fill, text)
