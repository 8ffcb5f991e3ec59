"""atk-pipeline-rag: documents in, conversations that use or refuse retrieved context out."""

from atk_core import Pipeline, hookimpl

from .pipeline import OUTPUTS, check_config, rag_data


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="rag-data", function=rag_data, check=check_config, outputs=OUTPUTS,
                      description="Documents to conversations that answer from retrieved context, or say it lacks the answer"))
