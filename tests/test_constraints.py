"""One way to check values: annotations on a pipeline's parameters (or a backend's or reporter's
``__init__``), enforced before anything runs with one line naming field, value and what is allowed."""

from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import pytest

from atk_core import (
    Above, AtLeast, AtMost, Between, ConfigError, NonEmpty, enforce_constraints, enforce_constraint,
)
from support import stderr_lines


@pytest.mark.parametrize("annotation, value, allowed", [
    (int, "3", "a whole number"),
    (int, True, "a whole number"),  # YAML's true is not 1
    (int, 2.5, "a whole number"),
    (float, "fast", "a number"),
    (float, float("nan"), "a number"),
    (bool, "yes", "true or false"),
    (str, 3, "a text"),
    (Path, "", "a path"),
    (Annotated[int, AtLeast(200)], 10, "a whole number of at least 200"),
    (Annotated[int, AtLeast(1)], "many", "a whole number of at least 1"),
    (Annotated[float, Between(0, 2)], -3, "a number from 0 to 2"),
    (Annotated[float, Between(0, 1, minimum_open=True)], 0, "a number above 0 and at most 1"),
    (Annotated[float, Above(0, unit="seconds")], 0, "a number of seconds, above 0"),
    (Annotated[int, AtMost(5)], 6, "a whole number at most 5"),
    (Literal["plain", "formal"], "loud", "one of 'plain', 'formal'"),
    (list[str], ["a", 2], "a list of texts"),
    (Annotated[list[str], NonEmpty], [], "a non-empty list of texts"),
    (Annotated[list[str], NonEmpty], ["  "], "a non-empty list of texts"),
    (Annotated[str, NonEmpty], "   ", "a non-empty text"),
    (dict, [1], "a mapping of keys to values"),
    (int | None, "x", "a whole number"),
    (int | str, 1.5, "a whole number or a text"),
    (Annotated[int, AtLeast(1)] | None, 0, "a whole number of at least 1"),
])
def test_a_wrong_value_names_the_field_the_value_and_what_is_allowed(annotation, value, allowed):
    with pytest.raises(ConfigError) as refused:
        enforce_constraint("field", value, annotation)
    assert str(refused.value) == f"field must be {allowed}, not {value!r}"


@pytest.mark.parametrize("annotation, value, expected", [
    (int, 3, 3),
    (float, 2, 2),  # a whole number is a number, and stays as written (cache keys see it)
    (Annotated[float, Between(0, 2)], 2.0, 2.0),
    (int | None, None, None),
    (list[str], "one prompt", ["one prompt"]),  # a single value where a list is wanted
    (list[str], ("a", "b"), ("a", "b")),
    (tuple[int, ...], [1, 2], [1, 2]),
    (Literal[1, 2], 2, 2),
    (Any, object, object),
    (Callable, print, print),
    (Path, "docs", "docs"),
    (str, Path("docs/a"), "docs/a"),  # a path given in code where a text is wanted: its text
])
def test_a_right_value_passes(annotation, value, expected):
    assert enforce_constraint("field", value, annotation) == expected


def test_arguments_are_checked_against_a_functions_annotations_only_where_it_has_them():
    def pipeline(*, input_dir: str, chunk_size: Annotated[int, AtLeast(200)] = 3000, free=None,
                 **kwargs):
        pass

    values = {"input_dir": "docs", "chunk_size": 500, "free": object, "extra": "kept"}
    assert enforce_constraints(pipeline, values) == values
    with pytest.raises(ConfigError, match="chunk_size must be a whole number of at least 200, not 10"):
        enforce_constraints(pipeline, {"chunk_size": 10})


def test_a_subclass_takes_its_own_options_and_passes_the_rest_to_its_parent():
    class Base:
        def __init__(self, **options):
            pass

    class Parent(Base):
        def __init__(self, model: str = "m", mode: Literal["a", "b"] = "a"):
            pass

    class Child(Parent):
        def __init__(self, memory: Annotated[float, Between(0, 1)] = 0.5, **options):
            pass

    assert enforce_constraints(Child, {"memory": 0.2, "mode": "b"}, refuse_unknown=True, up_to=Base)
    with pytest.raises(ConfigError, match="mode must be one of 'a', 'b', not 'c'"):
        enforce_constraints(Child, {"mode": "c"}, up_to=Base)
    with pytest.raises(ConfigError) as refused:
        enforce_constraints(Child, {"modle": "x"}, refuse_unknown=True, owner="the child backend",
                        up_to=Base)
    assert str(refused.value) == "unknown option(s) modle; the child backend takes memory, model, mode"

    class Open(Base):  # passes everything on to a base that takes anything
        def __init__(self, depth: int = 1, **options):
            pass

    assert enforce_constraints(Open, {"anything": 1}, refuse_unknown=True) == {"anything": 1}
    with pytest.raises(ConfigError, match="unknown option.s. anything; the open backend takes depth"):
        enforce_constraints(Open, {"anything": 1}, refuse_unknown=True, owner="the open backend",
                        up_to=Base)


def test_a_required_option_left_out_is_named_not_a_type_error(site, tmp_path):
    """A backend whose __init__ needs an option the config does not give: one line naming the
    config, the role and the option, before anything starts (not __init__()'s TypeError)."""
    from atk_core.testing import run_cli

    site.add("atk-backend-needy", {"needy_backend.py": '''
        from atk_core import Backend, hookimpl

        class Needy(Backend):
            name = "needy"

            def __init__(self, model: str, endpoint: str = "http://127.0.0.1:9"):
                self.model = model

        @hookimpl
        def atk_register_model_backends(register):
            register("needy", Needy)
        '''}, {"needy": "needy_backend"})
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Some text here that is long enough to read.\n")
    (tmp_path / "cfg.yaml").write_text("pipeline: factual-qa\ninput_dir: docs\noutput_dir: out\n"
                                       "models: {small: {backend: needy}, large: {backend: needy}}\n")
    result = run_cli("run", "cfg.yaml", env=site.env(), cwd=tmp_path)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "atk: error: cfg.yaml: models.small: backend 'needy': missing option(s) model"
        " (the needy backend needs model)"], result.stderr
    assert not (tmp_path / "out").exists()


TYPED_PIPELINE = {
    "typed_pipeline/__init__.py": '''
        from typing import Annotated, Literal
        from atk_core import AtLeast, Between, hookimpl, Pipeline

        def typed(*, output_dir: str, rounds: Annotated[int, AtLeast(1)] = 2,
                  style: Literal["plain", "formal"] = "plain",
                  temperature: Annotated[float, Between(0, 2)] = 0.7,
                  tags: list[str] = (), task_id=None, **kwargs):
            import json, os
            with open(os.path.join(output_dir, "typed.json"), "w") as f:
                json.dump({"rounds": rounds, "tags": list(tags)}, f)

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="typed", function=typed))
    ''',
}


@pytest.mark.parametrize("setting, message", [
    ("rounds=0", "rounds must be a whole number of at least 1, not 0"),
    ("style=loud", "style must be one of 'plain', 'formal', not 'loud'"),
    ("temperature=hot", "temperature must be a number from 0 to 2, not 'hot'"),
    ("tags=[1, 2]", "tags must be a list of texts, not [1, 2]"),
])
def test_atk_run_refuses_a_wrong_value_in_one_line_before_writing_anything(
        atk, site, tmp_path, setting, message):
    site.add("atk-typed", TYPED_PIPELINE, {"typed": "typed_pipeline"})
    cfg = tmp_path / "typed.yaml"
    cfg.write_text(f"pipeline: typed\noutput_dir: {tmp_path / 'out'}\nprogress: [jsonl]\n")
    result = atk("run", cfg, "--set", setting, env=site.env())
    assert result.returncode == 2
    assert stderr_lines(result) == [f"atk: error: {cfg}: {message}"]
    assert not (tmp_path / "out").exists()
    fine = atk("run", cfg, "--set", "tags=solo", env=site.env())
    assert fine.returncode == 0, fine.stderr
    assert (tmp_path / "out" / "typed.json").read_text() == '{"rounds": 2, "tags": ["solo"]}'


def test_settings_grouped_under_one_key_are_a_dataclass():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Gates:
        grounding: Annotated[float, Between(0, 1)] = 0.8
        question_form: bool = True

    assert enforce_constraint("gates", None, Gates) == Gates()
    assert enforce_constraint("gates", {"grounding": 0.5}, Gates) == Gates(grounding=0.5)
    with pytest.raises(ConfigError) as refused:
        enforce_constraint("gates", {"grounding": 2}, Gates)
    assert str(refused.value) == "gates.grounding must be a number from 0 to 1, not 2"
    with pytest.raises(ConfigError) as refused:
        enforce_constraint("gates", {"grounding_treshold": 0.5}, Gates)
    assert str(refused.value) == ("gates must be a mapping of grounding, question_form (did you"
                                  " mean 'grounding'?); it has grounding_treshold, not"
                                  " {'grounding_treshold': 0.5}")
    with pytest.raises(ConfigError, match="gates must be a mapping of grounding, question_form, not 3"):
        enforce_constraint("gates", 3, Gates)
