"""factual-qa's outputs are pinned: a small run on the scripted backend gives exactly these bytes.

The hashes were first taken before documents and chunks moved from this
package into atk-core, to prove the move changed nothing a user gets; they
were taken again when the quality gates changed what the pipeline keeps (one
pair per sentence, gated; failures with their kind), and again when the meaning
gates came (a question must find its sentence and ask for what it says): the
scripted model now asks questions that do, and its question for the small
model's vote to reject is one the gates pass. A refactoring leaves them as they
are; a change of behaviour that is meant updates them, and says why in its
commit. The conversation files changed once more when every conversation got
its stable id (the pairs and failures stayed as they were). The failures
changed when readers became plugins: each file not read names its reader, and
where trafilatura reads web pages as articles (atk-core[articles], which
scripts/setup.sh installs) the page's footer is never read, so the small
model's vote on it is gone; without it the page is read as before.
"""

import hashlib
import json

from atk_core.testing import run_pipeline
from factual_fakes import respond, write_inputs

PINNED = {
    "qa_pairs.jsonl": "20aac1596708a102bcdcda458b8ef08d8d25a4dbe3eb2b498d6dc6e9d9554157",
    "conversations.sharegpt.jsonl": "87de5660638fed3d28ba7adf5cc7703a7e610131e1a8070d71a20a4109b45b56",
    "conversations.messages.jsonl": "f6a6e3290f17f15304d471415e549d05ef4231b847be50e95ea228677d2a6824",
    "failures.jsonl": None,  # by how the web page was read: FAILURES
}
FAILURES = {
    "article": "6557772e538ab5320960b8d21bc3aa40d7f8bf9db118e9ec83a89312a208ad95",
    "page text": "41a631c12080dafaa5148ca1fc637f51244f02339265841da07aed19401b9b2d",
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
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (html,) = manifest["reading"]["readers"]["html"]["notes"]
    read_as = "article" if html.startswith("article by trafilatura") else "page text"
    assert digests(tmp_path / "out") == {**PINNED, "failures.jsonl": FAILURES[read_as]}


def test_a_shard_at_a_time_gives_the_same_bytes_and_counts(tmp_path):
    # shard_bytes: 1 puts every file in a shard of its own: duplicates across files, the
    # run-wide near-duplicate finder and the failures of every step meet across shards.
    whole = pinned_run(tmp_path / "in", tmp_path / "whole")
    inputs = tmp_path / "in"
    scripted = {"backend": "scripted", "respond": respond}
    sharded = run_pipeline("factual-qa", output_dir=tmp_path / "sharded", input_dir=str(inputs), chunk_size=400,
                           shard_bytes=1, models={"small": scripted, "large": scripted})
    assert whole.exit_code == sharded.exit_code == 0, sharded.error
    assert sharded.value == whole.value
    for name in PINNED:
        assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    facts = ("steps", "outputs", "reading", "calls", "declared_outputs")
    manifests = [json.loads((tmp_path / out / "manifest.json").read_text()) for out in ("whole", "sharded")]
    assert [{k: m[k] for k in facts} for m in manifests][0] == {k: manifests[1][k] for k in facts}
    assert not [p for p in (tmp_path / "sharded").rglob("*") if ".atk-partial" in str(p) or p.name.endswith(".tmp")]
