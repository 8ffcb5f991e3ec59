"""``atk export``: a finished run's datasets as a Hugging Face dataset folder, and its upload.

The folder is what the Hub itself serves: one config per output the run's
pipeline declares and the run wrote (``outputs/pairs.jsonl`` becomes config
``outputs_pairs``; a run whose pipeline declares nothing: every JSON lines
output), each a Parquet file under ``data/<config>/``, and a ``README.md``
dataset card whose YAML header names the configs (the run's primary output
is the default one) and whose text says which pipeline made them, with which
config hash and models, and each config's kind (SFT conversations,
pretraining text, preference pairs...), records and, where the run counted
them, tokens. It loads with
``datasets.load_dataset(FOLDER, CONFIG)`` and uploads as it is.

``datasets`` and ``huggingface_hub`` are an optional extra (``atk-core[hf]``),
imported only here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import AtkError, ConfigError
from ..engine.manifest import FAILURES, MANIFEST

HF_EXTRA = "pip install 'atk-core[hf]'"


class ExportError(AtkError):
    """The export (or its upload) failed after the command was accepted."""


def export_hf(run_dir, path, *, force: bool = False) -> dict:
    """Write the datasets of the finished run ``run_dir`` to ``path`` (see above); return
    ``{config: rows}``. ``ConfigError`` for a folder that is no finished run, a ``path`` in
    the way, or ``datasets`` not installed; nothing is left half-written."""
    run_dir, path = Path(run_dir), Path(path)
    manifest = _manifest(run_dir)
    files = _dataset_files(run_dir, manifest)
    _check_target(path, run_dir, force)
    datasets = _require("datasets")
    datasets.disable_progress_bars()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))  # beside it: one rename
    old = None
    try:
        counts, skipped = {}, []
        for name in files:
            rows = _rows(run_dir / name)
            config = config_name(name)
            if not rows:
                skipped.append(name)
                continue
            target = staging / "data" / config / "train-00000-of-00001.parquet"
            target.parent.mkdir(parents=True)
            _to_parquet(datasets, rows, target, run_dir / name)
            counts[config] = len(rows)
        if not counts:
            raise ConfigError(f"{run_dir}: every output of the run is empty; nothing to export")
        (staging / "README.md").write_text(dataset_card(manifest, files, counts, skipped), encoding="utf-8")
        if path.exists():  # a previous export (checked above): out of the way, then gone
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "export")
        os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            if not path.exists():  # the new one did not make it: put the old one back
                os.replace(old / "export", path)
            shutil.rmtree(old, ignore_errors=True)
    return counts


def _check_target(path: Path, run_dir: Path, force: bool) -> None:
    """``path`` may be new, an empty folder, or (with ``--force``) an earlier export; never the
    run, a folder holding it, or the folder atk runs in."""
    real, run = path.resolve(), run_dir.resolve()
    if real == run or real in run.parents or run in real.parents or real == Path.cwd().resolve():
        raise ConfigError(f"{path} is the run's folder, inside it or around it (or the current"
                          " folder); export to a folder of its own")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not force:
        raise ConfigError(f"{path} already exists; use --force to replace an earlier export")
    card = path / "README.md"
    earlier = path.is_dir() and card.is_file() and (path / "data").is_dir() \
        and "Made by atk's" in card.read_text(encoding="utf-8", errors="replace")
    if not earlier:
        raise ConfigError(f"{path} exists and is not an earlier atk export; --force replaces only"
                          " those: remove it yourself, or choose another folder")


def _to_parquet(datasets, rows: list, target: Path, source: Path) -> None:
    """Rows as a Parquet file whose columns are every key any row has (a row without one
    holds null there), in the order they first appear."""
    columns = list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))
    if len(columns) == 0 or any(not isinstance(row, dict) for row in rows):
        raise ConfigError(f"{source}: every line must be a JSON object to be exported")
    try:
        table = datasets.Dataset.from_dict({c: [row.get(c) for row in rows] for c in columns})
        table.to_parquet(str(target))
    except Exception as exc:  # a column whose rows disagree on its type, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{source}: cannot be written as one table: {first}") from None


def push_hf(path, repo: str, *, private: bool = False) -> str:
    """Upload the exported folder ``path`` to the dataset repo ``repo`` (made if need be);
    return its URL. ``ConfigError`` without a token; ``ExportError`` if the Hub refuses."""
    hub = _require("huggingface_hub")
    token = hub.get_token()
    if not token:
        raise ConfigError("--push needs a Hugging Face token: set HF_TOKEN, or run"
                          " `huggingface-cli login`")
    api = hub.HfApi(token=token)
    try:
        url = api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(path), repo_id=repo, repo_type="dataset",
                          commit_message="Upload from atk export")
    except Exception as exc:  # refused, unreachable, no such namespace...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"uploading to {repo} failed ({path} is written): {first}") from None
    return str(url)


def check_push(repo: str) -> None:
    """Before anything is written: the upload can be tried (the library and a token exist,
    the repo id has the form owner/name or name)."""
    if not re.fullmatch(r"(?:[\w.-]+/)?[\w.-]+", repo):
        raise ConfigError(f"--push {repo!r} is not a dataset repo id (owner/name)")
    hub = _require("huggingface_hub")
    if not hub.get_token():
        raise ConfigError("--push needs a Hugging Face token: set HF_TOKEN, or run"
                          " `huggingface-cli login`")


def config_name(output: str) -> str:
    """A run's output file as a dataset config name: ``outputs/pairs.jsonl`` -> ``outputs_pairs``."""
    stem = output[: -len(".jsonl")] if output.endswith(".jsonl") else output
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")


def dataset_card(manifest: dict, files: list[str], counts: dict, skipped: list[str]) -> str:
    """The README.md of the exported folder: the configs in its YAML header, and what made them."""
    import yaml

    primary = manifest.get("primary_output")
    default = config_name(primary) if primary and config_name(primary) in counts else None
    configs = []
    for name in files:
        config = config_name(name)
        if config not in counts:
            continue
        entry = {"config_name": config,
                 "data_files": [{"split": "train", "path": f"data/{config}/train-*.parquet"}]}
        if config == default:
            entry["default"] = True
        configs.append(entry)
    header = yaml.safe_dump({"configs": configs, "tags": ["atk", "synthetic"]}, sort_keys=False)
    pipeline = manifest.get("pipeline", "?")
    tokens = (manifest.get("tokens") or {}).get("files", {})
    lines = [f"---\n{header}---", "", f"# {pipeline} dataset", "",
             f"Made by atk's `{pipeline}` pipeline ({manifest.get('distribution', '?')}"
             f" {manifest.get('pipeline_version', '?')}, atk-core {manifest.get('atk_core_version', '?')}).",
             "", f"- config hash: `{manifest.get('config_hash', '?')}`",
             f"- run: `{manifest.get('task_id', '?')}`, started {manifest.get('started', '?')}"]
    for role, model in sorted((manifest.get("models") or {}).items()):
        identity = (model.get("identity") if isinstance(model, dict) else None) or {}
        lines.append(f"- model {role}: `{identity.get('backend', '?')}/{identity.get('model', '?')}`")
    declared = manifest.get("declared_outputs") or {}
    lines += ["", "| config | file of the run | kind | records | tokens |", "|---|---|---|---|---|"]
    for name in files:
        config = config_name(name)
        if config in counts:
            lines.append(f"| {config} | `{name}` | {_kind(declared.get(name))} | {counts[config]}"
                         f" | {tokens.get(name, '')} |")
    if skipped:
        lines += ["", f"Empty in the run, so not exported: {', '.join(f'`{s}`' for s in skipped)}."]
    lines += ["", "Load one config with `datasets.load_dataset(\"<this repo or folder>\", \"<config>\")`.",
              "Read the data before you train on it.", ""]
    return "\n".join(lines)


def _manifest(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a folder")
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} holds no {MANIFEST}: not a finished run") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_dir / MANIFEST} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("outputs"), dict):
        raise ConfigError(f"{run_dir / MANIFEST} lists no outputs: not a finished run")
    return manifest


def _kind(declaration) -> str:
    """A declared output's kind in words (``SFT conversations (messages)``); ``undeclared``."""
    from ..toolkit.outputs import described

    return described(declaration) or "undeclared"


def _dataset_files(run_dir: Path, manifest: dict) -> list[str]:
    """The run's declared outputs, in the manifest's order (a run whose pipeline declares
    none: its JSONL outputs but failures); each must exist."""
    declared = manifest.get("declared_outputs") or {}
    if declared:
        files = [name for name in manifest["outputs"] if name in declared]
    else:
        files = [name for name in manifest["outputs"] if name.endswith(".jsonl") and name != FAILURES]
    missing = [name for name in files if not (run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{run_dir}: the manifest lists {missing[0]}, which is not there")
    if not files:
        raise ConfigError(f"{run_dir}: the run wrote no dataset files")
    return files


def _rows(path: Path) -> list:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise ConfigError(f"{path} line {number} is not JSON") from None
    return rows


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"atk export needs {module}: {HF_EXTRA}") from None
