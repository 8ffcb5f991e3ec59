"""Whether a finished run's outputs are already what running it again would write.

A run that ends well seals its manifest with a ``fingerprint``: the hash of
the config as it ran, of every input it names (each file, or every file under
each folder, that a config value points to, and the prompt overrides), of
the code that makes the outputs (atk-core and the pipeline's packages, so an
upgrade or an edited prompt counts), and of each output file as written.

``atk run`` on the same config then compares before it loads a model: when
the config, inputs and code hash the same and every output file is still the
bytes it sealed, there is nothing to do, and it says so and returns in about
the time hashing the inputs takes. Anything else (a changed document, a
deleted or edited output, ``--set``, an upgraded pipeline, a run that never
finished) runs as before, resuming from the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FINGERPRINT = "fingerprint"
_CHUNK = 1 << 20
_ABOUT_ITSELF = frozenset({"progress.jsonl", "config.resolved.yaml"})
_STORE = "store.sqlite"  # and its -wal and -shm


def fingerprint(plan) -> dict:
    """The fingerprint of a planned run (``runner.plan``): config, inputs and code."""
    output_dir = Path(plan.output_dir).expanduser().resolve()
    inputs = _Digest()  # a corpus of many files: hashed as it is walked, nothing kept per file
    for path in sorted(set(_paths_in(plan.arguments))):
        _hash_into(inputs, path, output_dir)
    if plan.prompt_overrides is not None:
        _hash_into(inputs, Path(plan.prompt_overrides), output_dir)
    config = plan.config.redacted_yaml()
    return {
        "config": _sha(config.encode("utf-8")),
        "inputs": "sha256:" + inputs.hexdigest(),
        "input_files": inputs.count,
        "code": _code_hash(plan.pipeline),
    }


class _Digest:
    """path -> hash pairs, as ``_hash_into`` sets them, folded into one sha256."""

    def __init__(self):
        self._sha = hashlib.sha256()
        self.count = 0

    def __setitem__(self, path: str, digest) -> None:
        self._sha.update(f"{path}\0{digest}\n".encode("utf-8", "surrogateescape"))
        self.count += 1

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def seal(output_dir, print_: dict, value=None) -> bool:
    """Add ``print_``, the hash of every file the run wrote into ``output_dir`` (its parts'
    folders included) and the pipeline's JSON-able return ``value`` to the run's manifest.
    False when the pipeline wrote no manifest: such a run is never taken as up to date."""
    from ..toolkit.files import atomic_write_json

    manifest_path = Path(output_dir) / "manifest.json"
    manifest = _manifest(manifest_path)
    if manifest is None:
        return False
    sealed = dict(print_, outputs=_outputs(Path(output_dir)))
    try:
        json.dumps(value)
        sealed["value"] = value
    except (TypeError, ValueError):
        pass
    manifest[FINGERPRINT] = sealed
    atomic_write_json(manifest_path, manifest)
    return True


def up_to_date(output_dir, print_: dict) -> dict | None:
    """The sealed fingerprint when ``output_dir`` already holds what a run with ``print_``
    would write (same config, inputs and code; the same files, each the bytes it was);
    else None."""
    manifest = _manifest(Path(output_dir) / "manifest.json")
    sealed = (manifest or {}).get(FINGERPRINT)
    if not isinstance(sealed, dict) or any(sealed.get(k) != v for k, v in print_.items()):
        return None
    if sealed.get("outputs") != _outputs(Path(output_dir)):
        return None
    return sealed


def _outputs(output_dir: Path) -> dict:
    """file (relative) -> its hash, for every file in the output folder but those the run
    writes about itself (the manifest, the store, the resolved config, progress) and the
    folders of other runs inside it (``atk eval``'s ``eval/``; a part's folder is the run's)."""
    hashes: dict[str, str] = {}
    _hash_into(hashes, output_dir, skip=_another_run)
    base = output_dir.resolve()
    return {str(Path(p).relative_to(base)): h for p, h in hashes.items()
            if Path(p).name not in _ABOUT_ITSELF and not Path(p).name.startswith(_STORE)
            and str(Path(p).relative_to(base)) != "manifest.json"}


# -- hashing ------------------------------------------------------------------------------------


def _paths_in(value):
    """Every existing file or folder a config value names (strings, in lists and mappings)."""
    if isinstance(value, str):
        if value and "\n" not in value and len(value) < 4096:
            try:
                path = Path(value).expanduser()
                if path.exists():
                    yield path.resolve()
            except (OSError, ValueError):
                pass
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths_in(item)


def _another_run(folder: Path) -> bool:
    """Whether ``folder`` (inside a run's output folder) holds a run of its own, not a part."""
    manifest = _manifest(folder / "manifest.json")
    return manifest is not None and not manifest.get("part_of")


def _hash_into(hashes, path: Path, output_dir: Path | None = None, skip=None) -> None:
    """path -> content hash of ``path``, or of every file under it, except the run's own
    output folder (an input folder may hold it) and subfolders ``skip`` says to."""
    path = path.resolve()
    if output_dir is not None and (path == output_dir or output_dir in path.parents):
        return
    if path.is_file():
        hashes[str(path)] = _file_hash(path)
        return
    for folder, subfolders, files in os.walk(path):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders
                               if d != "__pycache__" and (here / d).resolve() != output_dir
                               and not (skip is not None and skip(here / d)))
        for name in sorted(files):
            hashes[str(here / name)] = _file_hash(here / name)


def _code_hash(pipeline) -> str:
    """The files of atk-core, of the pipeline's package and of every installed atk plugin's
    (readers, backends, parts...: each may change what a run writes), and the plugins'
    names and versions."""
    import importlib.metadata
    import importlib.util

    packages = {"atk_core", pipeline.package or ""}
    plugins = []
    for entry in importlib.metadata.entry_points(group="atk"):
        packages.add(entry.value.split(":")[0].split(".")[0])
        plugins.append(f"{entry.name}={entry.value}@{getattr(entry.dist, 'version', '?')}")
    files: dict[str, str] = {"plugins": "\n".join(sorted(plugins))}
    for package in sorted(packages):
        try:
            spec = importlib.util.find_spec(package) if package else None
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            origin = spec.origin if spec is not None else None  # a module, not a package
            files[package] = (_file_hash(Path(origin)) if origin and origin not in ("built-in", "frozen")
                              else None) or "?"
            continue
        for location in spec.submodule_search_locations:
            found: dict[str, str] = {}
            _hash_into(found, Path(location))
            base = Path(location).resolve()
            files.update({f"{package}/{Path(p).relative_to(base)}": h for p, h in found.items()
                          if not p.endswith((".pyc", ".pyo"))})
    return _sha(json.dumps(files, sort_keys=True).encode("utf-8"))


def _file_hash(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
        return "sha256:" + digest.hexdigest()
    except OSError:
        return None


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None
