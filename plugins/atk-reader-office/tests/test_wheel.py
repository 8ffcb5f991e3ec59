"""Installed from its wheel (not editable) beside atk-core in a fresh venv, the readers are
found and a Word document flows through factual-qa."""

import json
import os
import subprocess
from pathlib import Path

from atk_core.testing import read_jsonl, venv_cli, write_config
from office_documents import HANDBOOK, write_docx, write_epub


def test_reads_office_files_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=Path(__file__).resolve().parent)
    listed = {r["name"]: r for r in json.loads(atk("list", "readers", "--json").stdout)}
    assert {name: listed[name]["distribution"] for name in ("docx", "pptx", "epub")} == {
        "docx": "atk-reader-office", "pptx": "atk-reader-office", "epub": "atk-reader-office"}

    documents = tmp_path / "documents"
    documents.mkdir()
    write_docx(documents / "handbook.docx")
    write_epub(documents / "book.epub")
    role = {"backend": "scripted", "respond": "office_fakes:respond"}
    config = write_config(tmp_path / "run.yaml", "factual-qa", input_dir=str(documents),
                          output_dir=str(tmp_path / "out"), models={"small": role, "large": role},
                          rewrite_conversations=False)
    atk("run", config)
    answers = {p["answer"] for p in read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")}
    assert HANDBOOK["tides"] in answers
    reading = json.loads((tmp_path / "out" / "manifest.json").read_text())["reading"]["readers"]
    assert reading["docx"]["documents"] == 1 and reading["epub"]["documents"] == 1
    # the readers really came from the venv, not from this source tree
    origin = subprocess.run(
        [str(installed_python), "-c", "import atk_reader_office; print(atk_reader_office.__file__)"],
        capture_output=True, text=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}).stdout
    assert origin.startswith(str(installed_python.parent.parent)), origin
