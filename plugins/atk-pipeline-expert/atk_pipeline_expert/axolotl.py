"""Axolotl configs for the two stages: continued pretraining on the text, then SFT on the mix.

Key names are Axolotl's own (``sequence_len``, not ``context_length``), and
each dataset's ``type`` matches what its file holds: ``completion`` reads a
``text`` field; ``chat_template`` reads ``messages`` (``role``, ``content``,
and ``training``: whether a message is trained); ``input_output`` reads
``segments`` (``text``, ``label``). Paths are relative to the run's output
folder, where ``axolotl train axolotl/pretrain.yaml`` is meant to be run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from atk_core import AtLeast, Between

HEADER = ("# Written by atk's domain-expert pipeline. Run from the run's output folder:\n"
          "#   axolotl train axolotl/{stage}.yaml\n")


@dataclass(frozen=True)
class Training:
    """The settings of the two training stages that have sensible defaults (a starting point
    for a full fine-tune of a small model; tune them for yours)."""

    sequence_len: Annotated[int, AtLeast(128)] = 4096
    chat_template: str = "chatml"  # a name Axolotl knows (chatml, tokenizer_default, llama3...)
    micro_batch_size: Annotated[int, AtLeast(1)] = 2
    gradient_accumulation_steps: Annotated[int, AtLeast(1)] = 8
    pretrain_epochs: Annotated[int, AtLeast(1)] = 3
    sft_epochs: Annotated[int, AtLeast(1)] = 3
    pretrain_learning_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 2e-5
    sft_learning_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 1e-5
    output_dir: str = "./axolotl-out"  # where Axolotl writes the models, under the run's folder


def configs(*, base_model: str, training: Training, pretraining: list[str], sft: list[tuple[str, str]],
            extra: dict) -> dict[str, dict]:
    """``{"pretrain": {...}, "sft": {...}}``: ``pretraining`` the text files, ``sft`` the
    (file, kind) pairs, kind ``messages`` or ``segments``; ``extra`` Axolotl keys the user
    sets for both stages (``{"pretrain": {...}, "sft": {...}}`` or keys for both)."""
    pretrain_out = f"{training.output_dir.rstrip('/')}/pretrain"
    common = {
        "sequence_len": training.sequence_len,
        "sample_packing": True,
        "pad_to_sequence_len": True,
        "micro_batch_size": training.micro_batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "optimizer": "adamw_torch",
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "bf16": "auto",
        "gradient_checkpointing": True,
        "logging_steps": 1,
        "saves_per_epoch": 1,
        "val_set_size": 0.0,
    }
    pretrain = {
        "base_model": base_model,
        "datasets": [{"path": path, "ds_type": "json", "type": "completion", "field": "text"}
                     for path in pretraining],
        "dataset_prepared_path": f"{training.output_dir.rstrip('/')}/prepared-pretrain",
        "output_dir": pretrain_out,
        "num_epochs": training.pretrain_epochs,
        "learning_rate": training.pretrain_learning_rate,
        **common,
    }
    datasets = []
    for path, kind in sft:
        if kind == "messages":
            # chat_template on the entry too: Axolotl sets an entry without one to
            # tokenizer_default, whatever the top-level key says.
            datasets.append({"path": path, "ds_type": "json", "type": "chat_template",
                             "chat_template": training.chat_template, "field_messages": "messages",
                             "message_property_mappings": {"role": "role", "content": "content"},
                             "roles_to_train": ["assistant"], "message_field_training": "training"})
        else:
            datasets.append({"path": path, "ds_type": "json", "type": "input_output"})
    sft_config = {
        "base_model": pretrain_out,  # the model the pretraining stage writes
        "chat_template": training.chat_template,
        "datasets": datasets,
        "dataset_prepared_path": f"{training.output_dir.rstrip('/')}/prepared-sft",
        "output_dir": f"{training.output_dir.rstrip('/')}/sft",
        "num_epochs": training.sft_epochs,
        "learning_rate": training.sft_learning_rate,
        "train_on_inputs": False,
        **common,
    }
    both = {k: v for k, v in extra.items() if k not in ("pretrain", "sft")}
    return {"pretrain": {**pretrain, **both, **(extra.get("pretrain") or {})},
            "sft": {**sft_config, **both, **(extra.get("sft") or {})}}


def render(stage: str, config: dict) -> str:
    """The YAML text of one stage's config, with a header saying how to run it."""
    import yaml

    return HEADER.format(stage=stage) + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
