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

An output of kind ``exam`` is its config's ``test`` split (``data/<config>/test-...``), so
no exam row is in a ``train`` split; every other output is a ``train`` split.

``export_lm_eval`` writes the run's exam as an lm-evaluation-harness task instead: per
exam output a task YAML, the exam as JSON lines, and the small loader the YAML names
(``custom_dataset: !function <task>.load``), which lm-eval imports from beside the YAML
and which reads the data from beside itself, so the folder works wherever it is moved
(``dataset_kwargs: {data_files: ...}`` would be read against the current folder, or be an
absolute path). The task is closed book (the question only), generated until a newline
and scored with lm-eval's own ``exact_match`` (case and punctuation ignored) and
``chrf``: not ``atk eval``'s rule, which lm-eval does not have.

``datasets`` and ``huggingface_hub`` are an optional extra (``atk-core[hf]``),
imported only here; the lm-eval export needs neither.
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
    declared = manifest.get("declared_outputs") or {}
    counts, skipped = {}, []

    def write(staging: Path) -> None:
        for name in files:
            rows = _rows(run_dir / name)
            config = config_name(name)
            if not rows:
                skipped.append(name)
                continue
            target = staging / "data" / config / f"{split_of(declared.get(name))}-00000-of-00001.parquet"
            target.parent.mkdir(parents=True)
            _to_parquet(datasets, rows, target, run_dir / name)
            counts[config] = len(rows)
        if not counts:
            raise ConfigError(f"{run_dir}: every output of the run is empty; nothing to export")
        (staging / "README.md").write_text(dataset_card(manifest, files, counts, skipped), encoding="utf-8")

    _publish(path, write)
    return counts


def split_of(declaration) -> str:
    """The split an output is in a dataset: ``test`` for an exam (never trained on), else ``train``."""
    return "test" if _is_exam(declaration) else "train"


def _is_exam(declaration) -> bool:
    """Whether a declaration, as a manifest holds it, is of kind ``exam``."""
    return isinstance(declaration, dict) and declaration.get("kind") == "exam"


def _publish(path: Path, write) -> None:
    """``write(folder)`` fills a staging folder beside ``path``, which then replaces ``path``
    in one rename (an earlier export moved aside first, and put back if the rename fails);
    if ``write`` raises, nothing is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))  # beside it: one rename
    old = None
    try:
        write(staging)
        if path.exists():  # a previous export (checked by _check_target): out of the way, then gone
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


# -- lm-evaluation-harness -----------------------------------------------------------------------

LM_EVAL_SINCE = "0.4.9"  # the first lm-eval whose TaskConfig has custom_dataset
SCORING_NOTE = ("lm-eval scores this task with its own exact_match (case and punctuation ignored)"
                " and chrF over the first line the model writes; atk's `atk eval` scores the same"
                " exam with its own documented deterministic rule, which lm-eval does not have,"
                " so the two scores differ.")
# The task's data loader (custom_dataset): lm-eval imports it from beside the task's YAML, and
# it reads the exam from beside itself, so the folder can be moved.
LOADER = '''"""The exam beside this file as lm-evaluation-harness's dataset (written by `atk export`).

lm-eval calls `load` (the task's `custom_dataset`) with the task's metadata, which it ignores.
"""

import json
from pathlib import Path


def load(**metadata):
    import datasets

    with open(Path(__file__).with_suffix(".jsonl"), encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    test = datasets.Dataset.from_dict({column: [row.get(column) for row in rows] for column in columns})
    return datasets.DatasetDict({"test": test})
'''


def export_lm_eval(run_dir, path, *, force: bool = False) -> dict:
    """Write the exam of the finished run ``run_dir`` to ``path`` as lm-evaluation-harness
    tasks (see above): per exam output ``<task>.yaml``, ``<task>.jsonl`` and ``<task>.py``,
    and a README.md; return ``{task: items}``. ``ConfigError`` for a folder that is no
    finished run, a run with no exam, or a ``path`` in the way; nothing is left half-written."""
    run_dir, path = Path(run_dir), Path(path)
    manifest = _manifest(run_dir)
    exams = _exam_files(run_dir, manifest)
    _check_target(path, run_dir, force)
    tasks = {}
    for name, task in zip(exams, task_names(run_dir, exams)):
        rows = _exam_rows(run_dir / name)
        if rows:
            tasks[task] = (name, rows)
    if not tasks:
        raise ConfigError(f"{run_dir}: the run's exam is empty; nothing to export")

    def write(staging: Path) -> None:
        for task, (name, rows) in tasks.items():
            (staging / f"{task}.jsonl").write_text(
                "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
            (staging / f"{task}.py").write_text(LOADER, encoding="utf-8")
            (staging / f"{task}.yaml").write_text(task_yaml(task, manifest, name), encoding="utf-8")
        (staging / "README.md").write_text(lm_eval_card(manifest, tasks), encoding="utf-8")

    _publish(path, write)
    return {task: len(rows) for task, (_, rows) in tasks.items()}


def task_names(run_dir: Path, exams: list[str]) -> list[str]:
    """The lm-eval task of each exam output: ``atk_<run folder>_exam``, or with several exams
    ``atk_<run folder>_<config>``; letters, digits and ``_`` only (the name is also the
    loader's module name)."""
    def plain(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")

    run = plain(run_dir.resolve().name) or "run"
    if len(exams) == 1:
        return [f"atk_{run}_exam"]
    return [f"atk_{run}_{plain(config_name(name))}" for name in exams]


def task_yaml(task: str, manifest: dict, exam: str) -> str:
    """The task's YAML: the question alone (closed book) as the prompt, greedy generation up to
    a newline, the reference answer as the target, lm-eval's exact_match and chrF."""
    import yaml

    config = {
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        # the field by name: a target rendered from "{{answer}}" that looks like a Python list
        # ("[1, 2]") is read by lm-eval as one
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 64, "do_sample": False, "temperature": 0.0},
        "filter_list": [{"name": "remove_whitespace",
                         "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
        "metric_list": [
            {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
             "ignore_case": True, "ignore_punctuation": True},
            {"metric": "chrf", "aggregation": "chrf", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0, "atk_pipeline": manifest.get("pipeline", "?"),
                     "atk_config_hash": manifest.get("config_hash", "?"),
                     "atk_run": manifest.get("task_id", "?"), "atk_exam": exam, "scoring": SCORING_NOTE},
    }

    class Dumper(yaml.SafeDumper):  # a string holding a newline is one double-quoted line
        pass

    Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style='"' if "\n" in text else None))
    # yaml cannot write lm-eval's !function tag: the line naming the loader is written by hand
    return (f"# lm-evaluation-harness task (lm-eval {LM_EVAL_SINCE} or later), written by atk export\n"
            f"task: {task}\ncustom_dataset: !function {task}.load\n"
            + yaml.dump(config, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100))


def lm_eval_card(manifest: dict, tasks: dict) -> str:
    """The README.md of an lm-eval export: what made it, its tasks, how to run them."""
    pipeline = manifest.get("pipeline", "?")
    names = ",".join(tasks)
    lines = [f"# {pipeline} exam: lm-evaluation-harness tasks", "",
             f"Made by atk's `{pipeline}` pipeline ({manifest.get('distribution', '?')}"
             f" {manifest.get('pipeline_version', '?')}, atk-core {manifest.get('atk_core_version', '?')}),"
             f" config hash `{manifest.get('config_hash', '?')}`.", "",
             "| task | exam of the run | items | held out of training |", "|---|---|---|---|"]
    for task, (name, rows) in tasks.items():
        unseen = sum(1 for row in rows if row.get("seen") is False)
        lines.append(f"| {task} | `{name}` | {len(rows)} | {unseen} |")
    lines += ["", f"Run it (lm-eval {LM_EVAL_SINCE} or later; the folder may be moved):", "", "```sh",
              f"lm_eval --model hf --model_args pretrained=MODEL --include_path FOLDER --tasks {names}",
              "```", "", "FOLDER is this folder, MODEL a model on the Hub or a local folder. Each task asks"
              " the question alone (closed book) and compares the first line of the answer with the"
              " reference answer.", "", SCORING_NOTE, ""]
    return "\n".join(lines)


def _exam_files(run_dir: Path, manifest: dict) -> list[str]:
    declared = manifest.get("declared_outputs") or {}
    exams = [name for name in manifest["outputs"] if _is_exam(declared.get(name))]
    if not exams:
        raise ConfigError(f"{run_dir}: the run wrote no exam (no output of kind exam);"
                          " an lm-eval task is made from one")
    missing = [name for name in exams if not (run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{run_dir}: the manifest lists {missing[0]}, which is not there")
    return exams


def _exam_rows(path: Path) -> list[dict]:
    rows = _rows(path)
    for number, row in enumerate(rows, 1):
        if not (isinstance(row, dict) and all(isinstance(row.get(k), str) and row[k].strip()
                                              for k in ("question", "answer"))):
            raise ConfigError(f"{path} item {number}: an exam item needs a question and an answer")
    return rows


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
    earlier = path.is_dir() and card.is_file() \
        and ((path / "data").is_dir() or any(path.glob("*.yaml"))) \
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

    declared = manifest.get("declared_outputs") or {}
    primary = manifest.get("primary_output")
    default = config_name(primary) if primary and config_name(primary) in counts else None
    configs = []
    for name in files:
        config = config_name(name)
        if config not in counts:
            continue
        split = split_of(declared.get(name))
        entry = {"config_name": config,
                 "data_files": [{"split": split, "path": f"data/{config}/{split}-*.parquet"}]}
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
    lines += ["", "| config | file of the run | kind | records | tokens |", "|---|---|---|---|---|"]
    for name in files:
        config = config_name(name)
        if config in counts:
            lines.append(f"| {config} | `{name}` | {_kind(declared.get(name))} | {counts[config]}"
                         f" | {tokens.get(name, '')} |")
    if skipped:
        lines += ["", f"Empty in the run, so not exported: {', '.join(f'`{s}`' for s in skipped)}."]
    lines += ["", "Load one config with `datasets.load_dataset(\"<this repo or folder>\", \"<config>\")`."]
    exams = [config_name(n) for n in files if config_name(n) in counts and _is_exam(declared.get(n))]
    if exams:
        lines.append(f"An exam ({', '.join(f'`{e}`' for e in exams)}) is its config's `test` split,"
                     " in no `train` split: score a trained model with it, do not train on it.")
    lines += ["Read the data before you train on it.", ""]
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
