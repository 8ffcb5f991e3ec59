"""Axolotl configs for up to three stages: continued pretraining on the text, SFT on the mix,
then DPO on the preference pairs.

Key names are Axolotl's own (``sequence_len``, not ``context_length``), and
each dataset's ``type`` matches what its file holds: ``completion`` reads a
``text`` field; ``chat_template`` reads ``messages`` (``role``, ``content``,
and ``training``: whether a message is trained); ``input_output`` reads
``segments`` (``text``, ``label``); the DPO stage's ``chat_template.default``
reads ``prompt`` (messages), ``chosen`` and ``rejected`` (one assistant
message each). Paths are relative to the run's output folder, where
``axolotl train axolotl/pretrain.yaml`` is meant to be run.

Each stage is sized to its data (``size``): the sequence length no longer
than the longest record needs, packing only when there are enough sequences
to fill the batches, the batch made smaller (down to 1) until an epoch has
``MIN_STEPS`` optimizer steps, and an evaluation split only when it holds
``MIN_EVAL`` records, and more epochs (up to three times those asked) when a
stage would take fewer than ``MIN_TOTAL_STEPS`` steps in all. A stage too
small to learn from, or with records longer than the longest sequence asked
for, is said so, in the config's comment and in one warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from atk_core import AtLeast, Between

HEADER = ("# Written by atk's domain-expert pipeline. Run from the run's output folder:\n"
          "#   axolotl train axolotl/{stage}.yaml\n")
MIN_STEPS = 10  # optimizer steps an epoch should have for the learning rate schedule to mean anything
MIN_TOTAL_STEPS = 30  # steps a stage should have in all: a small one gets more epochs
MIN_EVAL = 20   # records an evaluation split needs to say anything
EVAL_SHARE = 0.05
@dataclass(frozen=True)
class Training:
    """The settings of the training stages that have sensible defaults (a starting point for a
    full fine-tune of a small model; tune them for yours). Batch and sequence length are
    upper bounds: a stage with little data gets less (see ``size``)."""

    sequence_len: Annotated[int, AtLeast(128)] = 4096
    chat_template: str = "chatml"  # a name Axolotl knows (chatml, tokenizer_default, llama3...)
    micro_batch_size: Annotated[int, AtLeast(1)] = 2
    gradient_accumulation_steps: Annotated[int, AtLeast(1)] = 8
    pretrain_epochs: Annotated[int, AtLeast(1)] = 3
    sft_epochs: Annotated[int, AtLeast(1)] = 3
    pretrain_learning_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 2e-5
    sft_learning_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 1e-5
    dpo_epochs: Annotated[int, AtLeast(1)] = 1
    dpo_learning_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 1e-6
    dpo_beta: Annotated[float, Between(0, 10, minimum_open=True)] = 0.1
    output_dir: str = "./axolotl-out"  # where Axolotl writes the models, under the run's folder


@dataclass(frozen=True)
class Data:
    """What a stage trains on: its records, their tokens, and the longest record's."""

    records: int
    tokens: int
    longest: int


@dataclass(frozen=True)
class Size:
    """A stage's size settings, and what they come to."""

    sequence_len: int
    sample_packing: bool
    micro_batch_size: int
    gradient_accumulation_steps: int
    val_set_size: float
    steps_per_epoch: int
    sequences: int
    epochs: int
    too_long: int = 0  # records longer than the longest sequence asked for: Axolotl drops them

    def settings(self) -> dict:
        settings = {"num_epochs": self.epochs,
                    "sequence_len": self.sequence_len, "sample_packing": self.sample_packing,
                    "pad_to_sequence_len": self.sample_packing,
                    "micro_batch_size": self.micro_batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "val_set_size": self.val_set_size}
        if self.val_set_size and self.sample_packing:
            settings["eval_sample_packing"] = False  # a small evaluation split may not fill one pack
        return settings


def size(data: Data, training: Training, *, epochs: int, packing_allowed: bool = True,
         margin: float = 1.0, lengths=()) -> Size:
    """The size settings of a stage with ``data`` and ``epochs`` asked for (see the module's
    text). ``margin`` scales the token counts where they are an estimate that can run
    low; ``lengths`` (each record's tokens) counts the records longer than the longest
    sequence asked for, which Axolotl drops."""
    # No longer than the longest record needs (in steps of 256), never longer than asked.
    needed = math.ceil(data.longest * margin)
    sequence_len = min(training.sequence_len, max(256, math.ceil(needed / 256) * 256))
    too_long = sum(1 for n in lengths if math.ceil(n * margin) > training.sequence_len)
    batch = training.micro_batch_size * training.gradient_accumulation_steps
    packed = math.ceil(data.tokens / sequence_len)
    packing = packing_allowed and packed >= MIN_STEPS * batch
    val = EVAL_SHARE if data.records * EVAL_SHARE >= MIN_EVAL else 0.0
    sequences = packed if packing else data.records
    train = max(0, sequences - math.ceil(sequences * val))
    # The batch shrinks (accumulation first, then the micro batch) until an epoch has
    # MIN_STEPS steps, or is down to one sequence.
    target = max(1, train // MIN_STEPS)
    micro = min(training.micro_batch_size, target)
    accumulation = max(1, min(training.gradient_accumulation_steps, target // micro))
    steps = math.ceil(train / (micro * accumulation)) if train else 0
    # Few steps an epoch: more epochs (up to three times those asked), to MIN_TOTAL_STEPS.
    if steps and steps * epochs < MIN_TOTAL_STEPS:
        epochs = max(epochs, min(3 * epochs, math.ceil(MIN_TOTAL_STEPS / steps)))
    return Size(sequence_len, packing, micro, accumulation, val, steps, train, epochs, too_long)


def too_small(size: Size) -> bool:
    return size.steps_per_epoch < MIN_STEPS


def comment(stage: str, data: Data, size: Size, what: str) -> str:
    """The lines that say how the stage was sized, for the top of its config."""
    packing = (f"packed into about {size.sequences} sequences of {size.sequence_len} tokens"
               if size.sample_packing else f"one {what} a sequence (sample_packing off: too few to pack)")
    epochs = size.epochs
    lines = [f"# {data.records} {what}s, {data.tokens} tokens; {packing}.",
             f"# An epoch is {size.steps_per_epoch} optimizer steps (batch {size.micro_batch_size}"
             f" x {size.gradient_accumulation_steps}), {size.steps_per_epoch * epochs} in {epochs} epoch{'s' * (epochs != 1)}"
             + (f"; {size.val_set_size:g} of the records held out to evaluate." if size.val_set_size
                else "; no evaluation split (too few records).")]
    if size.too_long:
        lines.append(f"# {size.too_long} {what}(s) longer than sequence_len {size.sequence_len}:"
                     " Axolotl drops them; raise training.sequence_len to keep them.")
    if too_small(size):
        lines.append(f"# TOO SMALL TO TRAIN: fewer than {MIN_STEPS} steps an epoch. Make more data"
                     " (more documents, more questions per chunk) before training on it.")
    return "\n".join(lines) + "\n"


def configs(*, base_model: str, training: Training, pretraining: list[str], sft: list[tuple[str, str]],
            preference: list[str], sizes: dict[str, Size], extra: dict) -> dict[str, dict]:
    """The config of each stage that has data: ``pretrain`` (the text files ``pretraining``),
    ``sft`` (the (file, format) pairs ``sft``, format ``messages`` or ``segments``) and
    ``dpo`` (the preference files); each stage starts from the previous one's model.
    ``sizes`` says each stage's ``Size``; ``extra`` Axolotl keys the user sets, under a
    stage's name for that stage or at the top for all."""
    out = training.output_dir.rstrip("/")
    common = {
        "optimizer": "adamw_torch",
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "bf16": "auto",
        "gradient_checkpointing": True,
        "logging_steps": 1,
        "saves_per_epoch": 1,
    }
    stages, previous = {}, base_model
    if pretraining:
        stages["pretrain"] = {
            "base_model": previous,
            "datasets": [{"path": path, "ds_type": "json", "type": "completion", "field": "text"}
                         for path in pretraining],
            "dataset_prepared_path": f"{out}/prepared-pretrain",
            "output_dir": f"{out}/pretrain",
            "learning_rate": training.pretrain_learning_rate,
            **sizes["pretrain"].settings(), **common,
        }
        previous = f"{out}/pretrain"  # the model the pretraining stage writes
    if sft:
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
        stages["sft"] = {
            "base_model": previous,
            "chat_template": training.chat_template,
            "datasets": datasets,
            "dataset_prepared_path": f"{out}/prepared-sft",
            "output_dir": f"{out}/sft",
            "learning_rate": training.sft_learning_rate,
            "train_on_inputs": False,
            **sizes["sft"].settings(), **common,
        }
        previous = f"{out}/sft"
    if preference:
        # Axolotl refuses sample_packing with RL; a DPO dataset takes only its own keys.
        stages["dpo"] = {
            "base_model": previous,
            "rl": "dpo",
            "rl_beta": training.dpo_beta,
            "chat_template": training.chat_template,
            "datasets": [{"path": path, "split": "train", "type": "chat_template.default",
                          "field_messages": "prompt", "field_chosen": "chosen",
                          "field_rejected": "rejected"} for path in preference],
            "dataset_prepared_path": f"{out}/prepared-dpo",
            "output_dir": f"{out}/dpo",
            "learning_rate": training.dpo_learning_rate,
            **sizes["dpo"].settings(), **common,
        }
    both = {k: v for k, v in extra.items() if k not in STAGES}
    return {stage: {**config, **both, **(extra.get(stage) or {})} for stage, config in stages.items()}


STAGES = ("pretrain", "sft", "dpo")


def render(stage: str, config: dict, about: str = "") -> str:
    """The YAML text of one stage's config, with a header saying how to run it and ``about``
    (comment lines: how it was sized)."""
    import yaml

    return HEADER.format(stage=stage) + about + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
