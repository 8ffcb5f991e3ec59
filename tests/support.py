"""Plugin distributions the core's tests install, and small helpers."""

from atk_core.testing import stderr_lines  # noqa: F401  (re-exported for the tests)

# A pipeline distribution used by many tests: package data included.
DEMO_PIPELINE = {
    "demo_pipeline/__init__.py": '''
        import json, os, threading
        from atk_core import hookimpl, Pipeline, set_progress

        def echo(*, input_text, output_dir, repeat=1, task_id=None, **kwargs):
            """Writes its input to output_dir/echo.json, reporting progress from a thread."""
            def work():
                for i in range(4):
                    set_progress(task_id, (i + 1) / 4, f"step {i + 1} of 4")
            worker = threading.Thread(target=work)
            worker.start(); worker.join()
            record = {"text": input_text * repeat, "extra": sorted(kwargs)}
            with open(os.path.join(output_dir, "echo.json"), "w") as handle:
                json.dump(record, handle)
            if input_text == "explode":
                raise ValueError("the input asked me to explode")
            return record

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="echo", function=echo, description="Echo the input text"))
    ''',
    "demo_pipeline/config.yaml": '''
        pipeline: echo
        # the text to echo
        input_text: hello
        output_dir: ./out
    ''',
    "demo_pipeline/prompts/greet.yaml": '''
        - role: user
          content: "Say hello to {name}"
    ''',
}



# A one-step pipeline over generated questions: what resume and dispatch tests run.
ANSWERS_PIPELINE = {
    "answers_pipeline/__init__.py": '''
        import os
        from atk_core import hookimpl, Pipeline, PipelineStep, RunRecord, atomic_write_jsonl

        SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
                  "required": ["answer"]}
        ANSWER = PipelineStep(name="answer", prompt="answer", model="large",
                              json_schema=SCHEMA, max_attempts=2, temperature=0.0)

        async def answer_questions(*, count, output_dir, topic="", task_id=None, **kwargs):
            questions = [{"id": f"q{i:05d}", "question": f"What is {topic}item {i}?"}
                         for i in range(count)]
            results = await ANSWER.run(questions)
            record = RunRecord()
            kept = record.step("answer", questions, results)
            atomic_write_jsonl(os.path.join(output_dir, "answers.jsonl"),
                               [{"id": r.sample_id, **r.value} for _, r in kept])
            record.write(output_dir, outputs={"answers.jsonl": len(kept)}, primary="answers.jsonl")

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="answers", function=answer_questions,
                              description="Answer generated questions"))
    ''',
    "answers_pipeline/config.yaml": '''
        pipeline: answers
        count: 10
        output_dir: ./out
        models:
          large: {backend: scripted}
    ''',
    "answers_pipeline/prompts/answer.yaml": '''
        - role: system
          content: 'Answer in JSON: {"answer": "..."}'
        - role: user
          content: "{question}{error_message}"
    ''',
}


# A pipeline made of parts: "answers" three times, then one file of all their answers.
COMBO_PIPELINE = {
    "combo_pipeline/__init__.py": '''
        from pathlib import Path
        from atk_core import hookimpl, Pipeline, atomic_write_text, run_part

        async def combo(*, output_dir, parts=("a", "b", "c"), count=10, checked=None, task_id=None,
                        **kwargs):
            out, values = Path(output_dir), []
            if checked is not None:  # a part with a check of its own, that takes no **kwargs
                await run_part("checked", output_dir=out / "checked", n=checked)
            for i, part in enumerate(parts):
                fields = {"count": count, "topic": f"{part} "} if count else {"topic": part}
                values.append(await run_part("answers", output_dir=out / part,
                                             progress=(i / len(parts), (i + 1) / len(parts)),
                                             **fields))
            text = "".join((out / part / "answers.jsonl").read_text() for part in parts)
            atomic_write_text(out / "all.jsonl", text)
            return {"parts": len(values)}

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="combo", function=combo, parts=("answers",),
                              description="answers, three times"))
    ''',
    "combo_pipeline/config.yaml": '''
        pipeline: combo
        # how many questions each part answers
        count: 10
        output_dir: ./out
    ''',
    "combo_pipeline/prompts/unused.txt": "a pipeline package ships a prompts folder\n",
    "checked_pipeline/__init__.py": '''
        from atk_core import hookimpl, Pipeline

        async def checked(*, n: int, output_dir, **kwargs):
            return n

        def vet(*, n, output_dir, models):
            if n > 5:
                raise ValueError(f"n must be at most 5 (roles: {', '.join(sorted(models))})")

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="checked", function=checked, vet=vet, description="n"))
    ''',
    "checked_pipeline/config.yaml": "pipeline: checked\n# a number\nn: 1\noutput_dir: ./out\n",
    "checked_pipeline/prompts/unused.txt": "none\n",
}
