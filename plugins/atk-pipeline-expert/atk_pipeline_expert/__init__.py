"""atk-pipeline-expert: folders of documents in, a token-balanced training mix and its Axolotl
configs out, made by running installed pipelines (by default factual-qa, repvar, rag-data and
correction) as parts."""

from atk_core import Pipeline, hookimpl

from .pipeline import DEFAULT_PARTS, OUTPUTS, RENAMED, domain_expert, vet_config


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="domain-expert", function=domain_expert, vet=vet_config, renamed=RENAMED, parts=DEFAULT_PARTS,
                      outputs=OUTPUTS,
                      description="Folders of documents to a training mix (pretraining text, SFT"
                                  " conversations, preference pairs) and its Axolotl configs, through"
                                  " other pipelines"))
