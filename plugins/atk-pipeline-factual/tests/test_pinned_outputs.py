"""factual-qa's outputs are pinned: a small run on the scripted backend gives exactly these bytes.

The hashes were taken from the pipeline before documents and chunks moved from
this package into atk-core; they prove the move (and any later refactoring)
changed nothing a user gets. A change of behaviour that is meant must update
them, and say why in its commit.
"""

import hashlib

from atk_core.testing import run_pipeline
from factual_fakes import respond, write_inputs

PINNED = {
    "qa_pairs.jsonl": "b6d0b2212e8752c1a39e6b842d17a2898e1c6a6928e4a2052d8d26962b9c9189",
    "conversations.sharegpt.jsonl": "3f53166891bd7f09a88b3c40a4f605bfb3aa602f601377acb2dc31d447d0e0f9",
    "conversations.messages.jsonl": "5940a1b6f1bd1a821769312c1c65ab23ed5803f10ba6c4e2e207f6b167ac2af2",
    "failures.jsonl": "d256e53426f2caf2ebf4fc1ecdab3606a26587e729172272aff1f45d36dc17b1",
}

LONG = "\n\n".join(
    f"Paragraph {n} says the tide at harbour {n} rises {n % 7 + 1} metres. "
    f"Keepers logged it at dawn. Boats waited for the {n}th bell before leaving."
    for n in range(1, 13)
)


def pinned_run(folder, output):
    inputs = write_inputs(folder)
    (inputs / "tides.txt").write_text(LONG, encoding="utf-8")
    (inputs / "tides-copy.md").write_text(LONG, encoding="utf-8")  # every chunk a duplicate
    (inputs / "never.txt").write_text("UNANSWERABLE-FOREVER is written here.")
    scripted = {"backend": "scripted", "respond": respond}
    return run_pipeline("factual-qa", output_dir=output, input_dir=str(inputs), chunk_size=400,
                        models={"small": scripted, "large": scripted})


def digests(output) -> dict:
    return {name: hashlib.sha256((output / name).read_bytes()).hexdigest() for name in PINNED}


def test_a_small_run_gives_the_pinned_bytes(tmp_path):
    result = pinned_run(tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 0, result.error
    assert digests(tmp_path / "out") == PINNED
