"""atk-pipeline-factual: documents in, a validated question-answer dataset out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, check_config, factual_qa


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="factual-qa", function=factual_qa, check=check_config, outputs=OUTPUTS,
                      description="Documents to validated question-answer pairs and multi-turn conversations"))
