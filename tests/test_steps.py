"""PipelineStep, VoteStep and prompts, in-process with the scripted backend."""

import asyncio
import json

import pytest

from atk_core import ConfigError, PipelineStep, StepEnvironment, VoteStep
from atk_core.models import Model, parse_spec
from atk_core.engine.prompts import PromptError, PromptLibrary
from atk_core import derive_seed, stream
from atk_core.engine.store import Store
from atk_core.testing import ScriptedBackend

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
def prompts(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "ask.yaml").write_text(
        "- role: system\n  content: 'Reply as JSON like {\"answer\": \"...\"}.'\n"
        "- role: user\n  content: \"{question}\\n{error_message}\"\n"
    )
    (folder / "complete.txt").write_text("Q: {question}\nA:")
    (folder / "braces.yaml").write_text(
        "- role: user\n  content: 'literal {{name}} and {\"json\": 1} and {question}'\n"
    )
    (folder / "needs_more.yaml").write_text("- role: user\n  content: '{question} {missing}'\n")
    return folder


def environment(prompts_folder, backend, store=None, concurrency=4, overrides=None):
    spec = parse_spec("large", {"backend": "scripted", "concurrency": concurrency})
    model = Model(spec, backend)
    model.store = store
    return StepEnvironment(models={"large": model}, prompts=PromptLibrary(prompts_folder, overrides))


def samples(n):
    return [{"id": f"q{i}", "question": f"question {i}"} for i in range(n)]


def test_results_come_back_in_input_order_and_are_parsed(prompts):
    backend = ScriptedBackend(respond=lambda r: {"answer": r.messages[-1]["content"].split()[1]},
                              delay=0.001)
    step = PipelineStep(name="ask", prompt="ask", json_schema=SCHEMA)
    results = step.run_sync(samples(20), env=environment(prompts, backend))
    assert [r.sample_id for r in results] == [f"q{i}" for i in range(20)]
    assert [r.value for r in results] == [{"answer": str(i)} for i in range(20)]
    assert all(r.ok and r.attempts == 1 for r in results)
    assert backend.calls == 20


def test_validation_failure_is_fed_back_and_then_recorded(prompts, tmp_path):
    seen = []

    def respond(request):
        seen.append(request.messages[-1]["content"])
        return {"answer": "too short"} if "question 1" in request.messages[-1]["content"] else {"answer": "a fine long answer"}

    def long_enough(value, sample):
        return (len(value["answer"]) > 10, f"the answer '{value['answer']}' is too short")

    store = Store(tmp_path / "store.sqlite")
    step = PipelineStep(name="ask", prompt="ask", json_schema=SCHEMA, validator=long_enough,
                        max_attempts=3)
    results = step.run_sync(samples(2), env=environment(prompts, ScriptedBackend(respond=respond), store))
    ok, failed = results
    assert ok.ok and ok.value == {"answer": "a fine long answer"}
    assert not failed.ok and failed.attempts == 3
    assert failed.reason == "ask: the answer 'too short' is too short (after 3 attempts)"
    retries = [text for text in seen if text.startswith("question 1")]
    assert retries[0] == "question 1\n"
    assert retries[1] == retries[2] == "question 1\nthe answer 'too short' is too short"
    # Every attempt's answer is stored: the same step again sends nothing and decides the same.
    asked = len(seen)
    again = step.run_sync(samples(2), env=environment(prompts, ScriptedBackend(respond=respond), store))
    assert len(seen) == asked and store.count() == asked
    assert [(r.ok, r.value, r.reason) for r in again] == [(r.ok, r.value, r.reason) for r in results]


def test_malformed_json_is_retried_with_the_parse_error(prompts):
    backend = ScriptedBackend(faults=[{"kind": "malformed", "calls": [1]}])
    step = PipelineStep(name="ask", prompt="ask", json_schema=SCHEMA)
    (result,) = step.run_sync(samples(1), env=environment(prompts, backend))
    assert result.ok and result.attempts == 2
    assert "the answer is not valid JSON" in backend.requests[1].messages[-1]["content"]
    # each attempt is seeded differently, so a retry can change the answer
    assert backend.requests[0].seed != backend.requests[1].seed


def test_regex_and_function_parsers(prompts):
    backend = ScriptedBackend(default="Score: 7/10")
    env = environment(prompts, backend)
    (by_regex,) = PipelineStep(name="r", prompt="ask", regex=r"Score: (\d+)").run_sync(samples(1), env=env)
    (by_function,) = PipelineStep(name="f", prompt="ask", parser=lambda t: int(t.split(":")[1].split("/")[0])
                                  ).run_sync(samples(1), env=env)
    (no_match,) = PipelineStep(name="n", prompt="ask", regex=r"Grade: (\w)", max_attempts=2
                               ).run_sync(samples(1), env=env)
    assert by_regex.value == "7" and by_function.value == 7
    assert not no_match.ok and "does not match the expected format" in no_match.reason


def test_completion_prompts_use_the_completion_endpoint(prompts):
    backend = ScriptedBackend(default=" Paris")
    (result,) = PipelineStep(name="c", prompt="complete").run_sync(samples(1), env=environment(prompts, backend))
    assert result.value == "Paris"
    assert backend.requests[0].prompt == "Q: question 0\nA:"


def test_one_to_many(prompts):
    backend = ScriptedBackend(default=json.dumps(["a", "b", "c"]))
    step = PipelineStep(name="split", prompt="ask", parser=json.loads, many=True)
    (result,) = step.run_sync(samples(1), env=environment(prompts, backend))
    assert result.value == ["a", "b", "c"]
    bad = PipelineStep(name="split", prompt="ask", parser=json.loads, many=True, max_attempts=1)
    (not_a_list,) = bad.run_sync(samples(1), env=environment(prompts, ScriptedBackend(default='"one"')))
    assert not not_a_list.ok and "expected a list" in not_a_list.reason


def test_majority_vote_stops_when_the_outcome_is_certain(prompts):
    answers = {"question 0": iter(["yes", "yes", "no"]), "question 1": iter(["no", "yes", "no"])}
    backend = ScriptedBackend(respond=lambda r: next(answers[r.messages[-1]["content"].strip()]))
    step = VoteStep(name="vote", prompt="ask", votes=3, threshold=0.5,
                    decide=lambda v: v == "yes")
    first, second = step.run_sync(samples(2), env=environment(prompts, backend))
    assert first.ok and first.value == {"passed": True, "yes": 2, "no": 0, "votes": 2}
    assert not second.ok and second.value == {"passed": False, "yes": 1, "no": 2, "votes": 3}
    assert second.reason == "vote: 1 of 3 votes passed, 2 of 3 needed"
    assert backend.calls == 5
    seeds = [r.seed for r in backend.requests[:2]]
    assert seeds[0] != seeds[1]  # votes are independent draws


def test_prompt_braces_and_missing_placeholders(prompts):
    backend = ScriptedBackend()
    env = environment(prompts, backend)
    PipelineStep(name="b", prompt="braces").run_sync(samples(1), env=env)
    assert backend.requests[0].messages[0]["content"] == 'literal {name} and {"json": 1} and question 0'
    with pytest.raises(PromptError, match=r"prompts/needs_more.yaml uses \{missing\}, but no value named 'missing'"):
        PipelineStep(name="m", prompt="needs_more").run_sync(samples(1), env=env)


def test_override_folder_comes_first(prompts, tmp_path):
    overrides = tmp_path / "mine"
    overrides.mkdir()
    (overrides / "ask.yaml").write_text("- role: user\n  content: 'custom: {question}'\n")
    backend = ScriptedBackend()
    env = environment(prompts, backend, overrides=overrides)
    PipelineStep(name="a", prompt="ask").run_sync(samples(1), env=env)
    PipelineStep(name="c", prompt="complete").run_sync(samples(1), env=env)  # falls back
    assert backend.requests[0].messages == ({"role": "user", "content": "custom: question 0"},)
    assert backend.requests[1].prompt == "Q: question 0\nA:"


def test_unknown_prompt_and_role_are_config_errors(prompts):
    env = environment(prompts, ScriptedBackend())
    with pytest.raises(ConfigError, match="prompt 'nope' not found"):
        PipelineStep(name="x", prompt="nope").run_sync(samples(1), env=env)
    with pytest.raises(ConfigError, match="uses model role 'small', which the config's models: does not define"):
        PipelineStep(name="x", prompt="ask", model="small").run_sync(samples(1), env=env)


def test_a_fatal_error_stops_the_step(prompts):
    from atk_core.models import FatalError

    backend = ScriptedBackend(faults=[{"kind": "fatal", "calls": [3]}])
    with pytest.raises(FatalError):
        PipelineStep(name="x", prompt="ask").run_sync(samples(10), env=environment(prompts, backend, concurrency=1))
    assert backend.calls <= 4  # the failing call and what was already in flight, no more


def test_seeds_are_stable_per_sample():
    assert derive_seed(0, "q1", 0) == derive_seed(0, "q1", 0)
    assert len({derive_seed(0, f"q{i}", 0) for i in range(100)}) == 100
    assert derive_seed(1, "q1", 0) != derive_seed(0, "q1", 0)


def test_stream_keeps_order_and_bounds_work_in_flight():
    in_flight = peak = 0

    async def work(item):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (item % 3))
        in_flight -= 1
        return item * 2

    results = asyncio.run(stream(list(range(50)), work, limit=5))
    assert results == [i * 2 for i in range(50)] and peak == 5


@pytest.mark.parametrize("where", ["default", "pipeline", "override"])
def test_the_retry_note_is_a_prompt_file_like_the_others(prompts, tmp_path, where):
    (prompts / "noted.yaml").write_text("- role: user\n  content: \"{question}{retry_note}\"\n")
    overrides = tmp_path / "mine"
    overrides.mkdir()
    if where in ("pipeline", "override"):
        (prompts / "retry_note.txt").write_text("Rejected ({problem}); try again.\n")
    if where == "override":
        (overrides / "retry_note.txt").write_text("Nope: {problem}. Again, with {braces} kept.\n")
    seen = []

    def respond(request):
        seen.append(request.messages[-1]["content"])
        return {"answer": "x"}

    step = PipelineStep(name="noted", prompt="noted", json_schema=SCHEMA, max_attempts=2,
                        validator=lambda value, sample: (False, "too terse"))
    step.run_sync(samples(1), env=environment(prompts, ScriptedBackend(respond=respond),
                                              overrides=overrides))
    expected = {
        "default": "\n\nYour previous answer was rejected: too terse. Answer again and fix this.",
        "pipeline": "\n\nRejected (too terse); try again.",
        "override": "\n\nNope: too terse. Again, with {braces} kept.",
    }[where]
    assert seen == ["question 0", "question 0" + expected]


def test_derive_seed_gives_the_same_numbers_everywhere():
    # Pinned: a seed that changed between versions or machines would make a resumed run
    # ask every sample again, and break "the same inputs give the same bytes".
    assert derive_seed(0, "q1", 0, "") == 136436085
    assert derive_seed(42, "c-88adfcf6b50351aa") == 1269119860
    assert derive_seed(7, "conv-x", "/vote2") == 228952180
    assert derive_seed(0, "q1") != derive_seed(1, "q1") != derive_seed(0, "q2")
    assert all(0 <= derive_seed(s, "x") < 2 ** 31 for s in range(50))


def test_a_noted_check_tells_a_no_from_no_verdict():
    from atk_core import RunRecord, StepResult

    samples = [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}]
    results = [StepResult("a", True, {"accurate": True}), StepResult("b", True, {"accurate": False}),
               StepResult("c", False, {"yes": 0}, kind="failed the vote"),
               StepResult("d", False, reason="malformed", kind="malformed answer")]
    record = RunRecord()
    kept = record.apply_verdicts("check", samples, results, policy="note", rejected="judged wrong",
                              field="accurate")
    assert kept == samples
    assert record.steps["check"].notes == {
        "judged wrong by the model, kept": 2,
        "no verdict from the model (malformed answer), kept": 1}
