"""factual-qa's outputs are pinned: a small run on the scripted backend gives exactly these bytes.

The hashes were first taken before documents and chunks moved from this
package into atk-core, to prove the move changed nothing a user gets; they
were taken again when the quality gates changed what the pipeline keeps (one
pair per sentence, gated; failures with their kind). A refactoring leaves them
as they are; a change of behaviour that is meant updates them, and says why
in its commit.
"""

import hashlib

from atk_core.testing import run_pipeline
from factual_fakes import respond, write_inputs

PINNED = {
    "qa_pairs.jsonl": "315b221a2851692b5733f46ac11219e3207bf33ca64b31f7e53dcfc80be7ff2b",
    "conversations.sharegpt.jsonl": "5d3f73aa0cc1259dc30480bc0d70d0c09feb992eab7a721d4bd9bdf6a36bf915",
    "conversations.messages.jsonl": "394ef45c72611e5ec6fad3e1a566ce217fb69dc4ea3e6262499771e1ce0086a4",
    "failures.jsonl": "1521000ab5cadcb9f7a96a4c262f699399ee9c4233333c6574760b3be2dccc6f",
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
