"""A third-party reader written from the docs alone: the package that docs/writing-a-reader.md
spells out, built into a wheel and installed beside atk-core and factual-qa in a fresh venv,
adds its suffix, and its documents flow through factual-qa."""

import json
import re
from pathlib import Path

from atk_core.testing import build_wheel, make_venv, read_jsonl, venv_cli, write_config

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def docs_package(folder: Path) -> Path:
    """The files docs/writing-a-reader.md marks `<!-- file: PATH -->`, written into ``folder``."""
    page = (ROOT / "docs" / "writing-a-reader.md").read_text(encoding="utf-8")
    files = re.findall(r"<!-- file: ([^>]+) -->\n```\w*\n(.*?)```", page, re.S)
    assert {path.strip() for path, _ in files} == {"atk_reader_notebook/__init__.py", "pyproject.toml"}
    for path, body in files:
        target = folder / path.strip()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return folder


def notebook(cells) -> str:
    return json.dumps({"cells": [{"cell_type": kind, "source": text} for kind, text in cells],
                       "nbformat": 4, "nbformat_minor": 5, "metadata": {}})


def test_the_reader_in_the_docs_installs_from_its_wheel_and_feeds_factual_qa(atk_wheels, tmp_path):
    wheel = build_wheel(docs_package(tmp_path / "src" / "atk-reader-notebook"), tmp_path / "dist")
    python = make_venv(tmp_path / "venv", [atk_wheels["atk-core"], atk_wheels["atk-pipeline-factual"], wheel])
    atk = venv_cli(python, cwd=tmp_path, helpers=HERE)  # passing_model, beside this file
    (listed,) = [r for r in json.loads(atk("list", "readers", "--json").stdout) if r["name"] == "notebook"]
    assert listed["distribution"] == "atk-reader-notebook" and listed["suffixes"] == [".ipynb"]

    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "lecture.ipynb").write_text(notebook([
        ("markdown", ["# Estuaries\n", "\n", "The Severn estuary has the second highest tidal range in the world."]),
        ("code", "import tides\ntides.plot('severn')"),
        ("markdown", "## Bores\n\nThe Severn bore runs upstream past Gloucester on the highest tides."),
    ]))
    (documents / "draft.ipynb").write_text("{ this is not json")
    role = {"backend": "scripted", "respond": "passing_model:respond"}
    config = write_config(tmp_path / "run.yaml", "factual-qa", input_dir=str(documents),
                          output_dir=str(tmp_path / "out"), models={"small": role, "large": role},
                          rewrite_conversations=False)
    atk("run", config)

    pairs = read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")
    assert {p["source"] for p in pairs} == {"lecture.ipynb"}
    assert {p["answer"] for p in pairs} == {
        "The Severn estuary has the second highest tidal range in the world.",
        "The Severn bore runs upstream past Gloucester on the highest tides."}
    assert all("tides.plot" not in p["question"] for p in pairs)  # code cells are left out
    (failure,) = [f for f in read_jsonl(tmp_path / "out" / "failures.jsonl") if f["step"] == "read"]
    assert (failure["sample_id"], failure["reader"], failure["reason"]) == (
        "draft.ipynb", "notebook", "read: not a notebook: not JSON")
    reading = json.loads((tmp_path / "out" / "manifest.json").read_text())["reading"]["readers"]
    assert reading["notebook"] == {"distribution": "atk-reader-notebook", "files": 2, "documents": 1,
                                   "unreadable": 1, "notes": {"code cells left out": 1}}
