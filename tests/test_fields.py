"""with_fields: config fields shared by pipelines, declared once, set at the top level."""

import asyncio
import inspect

import pytest

from atk_core import ConfigError, Documents, Sampling, enforce_constraints, with_fields


@with_fields(documents=Documents(chunk_size=1500), sampling=Sampling(temperature=0.9))
async def pipeline(*, input_dir: str, documents: Documents, style: str = "plain",
                   sampling: Sampling, task_id=None, **kwargs):
    return {"input_dir": input_dir, "documents": documents, "style": style, "sampling": sampling,
            "extra": kwargs}


def test_the_groups_fields_are_the_functions_keyword_parameters_with_the_given_defaults():
    parameters = inspect.signature(pipeline).parameters
    assert "documents" not in parameters and "sampling" not in parameters
    assert list(parameters) == ["input_dir", "chunk_size", "use_subset", "subset_size",
                                "min_chunk_words", "shard_bytes", "style", "temperature", "check_temperature",
                                "max_tokens", "max_attempts", "task_id", "kwargs"]
    assert parameters["chunk_size"].default == 1500 and parameters["temperature"].default == 0.9
    assert parameters["max_tokens"].default == Sampling().max_tokens
    assert parameters["input_dir"].default is inspect.Parameter.empty
    assert pipeline.field_groups["documents"] == ("chunk_size", "use_subset", "subset_size",
                                                  "min_chunk_words", "shard_bytes")


def test_a_call_gets_each_group_back_as_one_instance():
    got = asyncio.run(pipeline(input_dir="docs", chunk_size=800, use_subset=True, max_attempts=5,
                               other="kept"))
    assert got["documents"] == Documents(chunk_size=800, use_subset=True)
    assert got["documents"].subset == 100 and Documents().subset is None
    assert got["sampling"] == Sampling(temperature=0.9, max_attempts=5)
    assert got["sampling"].writing(7) == {"temperature": 0.9, "max_attempts": 5, "seed": 7, "max_tokens": 512}
    assert got["sampling"].writing(7, max_tokens=256)["max_tokens"] == 256  # a step's own, lower bound
    assert got["sampling"].writing(7, max_tokens=4096)["max_tokens"] == 512  # never above the config's
    assert got["sampling"].checking(7) == {"temperature": 0.6, "max_attempts": 5, "seed": 7}
    assert got["extra"] == {"other": "kept"}


def test_a_caller_in_python_may_pass_the_group_itself():
    got = asyncio.run(pipeline(input_dir="docs", documents=Documents(chunk_size=500), use_subset=True))
    assert got["documents"] == Documents(chunk_size=500, use_subset=True)
    got = asyncio.run(pipeline(input_dir="docs", sampling={"max_tokens": 64}))
    assert got["sampling"] == Sampling(temperature=0.9, max_tokens=64)


@pytest.mark.parametrize("values, message", [
    ({"chunk_size": 10}, "chunk_size must be a whole number of at least 200, not 10"),
    ({"temperature": 3}, "temperature must be a number from 0 to 2, not 3"),
    ({"use_subset": "yes"}, "use_subset must be true or false"),
])
def test_the_fields_are_checked_like_any_other(values, message):
    with pytest.raises(ConfigError) as caught:
        enforce_constraints(pipeline, {"input_dir": "docs", **values})
    assert message in str(caught.value)


def test_mistakes_in_the_declaration_are_found_when_it_is_made():
    with pytest.raises(TypeError, match="must be a dataclass instance"):
        with_fields(documents=Documents)
    with pytest.raises(TypeError, match="has no parameter sampling"):
        @with_fields(sampling=Sampling())
        def no_group(*, input_dir): ...
    with pytest.raises(TypeError, match="declares 'chunk_size' twice"):
        @with_fields(documents=Documents())
        def twice(*, documents: Documents, chunk_size: int = 5): ...


def test_a_plain_function_stays_plain():
    @with_fields(sampling=Sampling())
    def plain(*, sampling: Sampling, **kwargs):
        return sampling

    assert not inspect.iscoroutinefunction(plain)
    assert plain(max_tokens=64) == Sampling(max_tokens=64)
