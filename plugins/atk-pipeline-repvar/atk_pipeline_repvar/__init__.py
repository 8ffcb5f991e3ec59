"""atk-pipeline-repvar: documents in, varied restatements for continued pretraining out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, RENAMED, repvar, vet_config


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="repvar", function=repvar, vet=vet_config, renamed=RENAMED, outputs=OUTPUTS,
                      description="Documents to varied restatements (facts, essays, lists, JSON...) for pretraining"))
