"""atk-pipeline-factual: documents in, a validated question-answer dataset out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, RENAMED, factual_qa, vet_config


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="factual-qa", function=factual_qa, vet=vet_config, renamed=RENAMED, outputs=OUTPUTS,
                      description="Documents to validated question-answer pairs and multi-turn conversations"))
