"""``exam-eval``, the pipeline behind ``atk eval``: models answer an exam a run set aside, and
every answer is scored against its reference by a rule (see ``pipeline.py``). Built in, so
that ``atk eval`` works wherever atk-core is installed; registered through the same hook
as every other pipeline."""

from ..hookspecs import hookimpl
from ..pipeline import Pipeline


@hookimpl
def atk_register_pipelines(register):
    from .pipeline import NAME, OUTPUTS, exam_eval, vet

    register(Pipeline(name=NAME, function=exam_eval, vet=vet, outputs=OUTPUTS,
                      description="Score models on an exam a run set aside (atk eval)"))
