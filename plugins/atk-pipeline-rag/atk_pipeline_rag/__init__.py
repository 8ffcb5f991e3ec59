"""atk-pipeline-rag: documents in, conversations that use or refuse retrieved context out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, RENAMED, rag_data, vet_config


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="rag-data", function=rag_data, vet=vet_config, renamed=RENAMED, outputs=OUTPUTS,
                      description="Documents to conversations that answer from retrieved context, or say it lacks the answer"))
