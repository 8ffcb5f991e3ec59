"""atk-pipeline-correction: documents in, conversations that teach correcting a flawed answer out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, check_config, correction


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="correction", function=correction, check=check_config, outputs=OUTPUTS,
                      description="Documents to conversations where a wrong answer is corrected"))
