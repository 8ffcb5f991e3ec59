"""atk-pipeline-correction: documents in, conversations that teach correcting a flawed answer out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, RENAMED, correction, vet_config


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="correction", function=correction, vet=vet_config, renamed=RENAMED, outputs=OUTPUTS,
                      description="Documents to conversations where a wrong answer is corrected"))
