"""Package data access that works from a source tree, a wheel or a zip."""

import sys

if sys.version_info >= (3, 12):
    from importlib.resources import as_file, files
else:  # the backport gives directory support in ``as_file`` before 3.12
    from importlib_resources import as_file, files

__all__ = ["as_file", "files", "copy_tree"]


def copy_tree(source, dest, *, overwrite=False):
    """Copy a Traversable folder to the path ``dest``; return the files written.

    Existing files are left alone unless ``overwrite``; the caller decides what
    that means to the user, so the skipped ones are returned too.
    """
    from pathlib import Path

    dest = Path(dest)
    written, skipped = [], []
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        target = dest / item.name
        if item.name == "__pycache__" or item.name.endswith(".pyc"):
            continue
        if item.is_dir():
            w, s = copy_tree(item, target, overwrite=overwrite)
            written += w
            skipped += s
        elif target.exists() and not overwrite:
            skipped.append(target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.read_bytes())
            written.append(target)
    return written, skipped
