"""What every pipeline of the family shares, checked once for all of them: the fields
declared once (``Documents``, ``Sampling``), a config template that names only fields the
pipeline takes and explains each, and the same one-line refusals of the same mistakes."""

import pytest
import yaml

from atk_core.engine.plugins import get_registry
from atk_core.testing import ScriptedPipeline

FAMILY = ["factual-qa", "repvar", "rag-data", "correction"]
SHARED_FIELDS = ["chunk_size", "use_subset", "subset_size", "min_chunk_words", "temperature",
                 "check_temperature", "max_tokens", "max_attempts"]


def unexplained(template: str) -> list[str]:
    """The top-level fields of a config template that no comment explains: a field must
    follow a comment (not a "# -- section --" header), and a field in a run of fields under
    one comment must be named in it."""
    lines = template.splitlines()
    missing = []
    for index, line in enumerate(lines):
        if not line or line[0] in " #" or ":" not in line:
            continue
        key = line.split(":", 1)[0]
        above, first = index - 1, True
        while above >= 0 and (lines[above][:1] == " " or (lines[above] and lines[above][0] != "#"
                                                          and ":" in lines[above])):
            first = first and lines[above][:1] == " "  # a nested block belongs to the key above
            above -= 1
        comment = []
        while above >= 0 and lines[above].startswith("#") and not lines[above].startswith("# --"):
            comment.insert(0, lines[above])
            above -= 1
        if not comment or (not first and key not in " ".join(comment)):
            missing.append(key)
    return missing


@pytest.mark.parametrize("name", FAMILY + ["domain-expert"])
def test_the_template_names_only_fields_the_pipeline_takes_and_explains_each(name):
    pipeline = get_registry().pipeline(name)
    text = pipeline.config_template()
    tree = yaml.safe_load(text)
    taken = set(pipeline.parameters()) | {"pipeline", "models", "progress", "prompt_overrides"}
    assert set(tree) <= taken, set(tree) - taken
    assert set(SHARED_FIELDS) <= set(pipeline.parameters())
    assert unexplained(text) == []
    assert "prompt_overrides" in text  # documented even though it is commented out


def test_an_unexplained_field_is_found():
    assert unexplained("# Where.\ninput_dir: x\nseed: 0\n# -- sampling --\nuse_subset: false\n") == [
        "seed", "use_subset"]
    assert unexplained("# input_dir and seed.\ninput_dir: x\nseed: 0\ngates:\n  a: 1\n") == ["gates"]


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("fields, message", [
    ({}, "pipeline '{name}' needs field 'input_dir'"),
    ({"input_dir": "nowhere"}, "input_dir 'nowhere' does not exist"),
    ({"input_dir": "docs", "chunk_size": 10}, "chunk_size must be a whole number of at least 200, not 10"),
    ({"input_dir": "docs", "max_attempts": 0}, "max_attempts must be a whole number of at least 1, not 0"),
    ({"input_dir": "docs", "temperature": 5}, "temperature must be a number from 0 to 2, not 5"),
    ({"input_dir": "docs", "verdicts": "maybe"},
     "verdicts must be one of 'enforce', 'note', 'skip'"),
    ({"input_dir": "docs", "models": {"small": {"backend": "scripted"}}}, "models: has no 'large' role"),
])
def test_the_same_mistake_is_refused_the_same_way_by_every_pipeline(tmp_path, name, fields, message):
    kit = ScriptedPipeline(name, respond="unused:respond", inputs=None)
    assert message.format(name=name) in kit.refused(tmp_path, **fields)


@pytest.mark.parametrize("name", ["factual-qa", "rag-data", "correction"])
def test_the_pair_gates_are_refused_when_at_odds_with_themselves(tmp_path, name):
    kit = ScriptedPipeline(name, respond="unused:respond", inputs=None)
    line = kit.refused(tmp_path, input_dir="docs", gates={"question_min_words": 50, "question_max_words": 30})
    assert line.endswith("gates: question_min_words (50) is more than question_max_words (30)"), line
