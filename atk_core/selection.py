"""Which chunks a pipeline works on: read, chunk, the content gate, then the small model's say.

Every pipeline over a folder of documents starts the same way, so they all
read the same files, drop the same chunks for the same reasons, and record
them the same way (steps ``read``, ``chunk``, ``content`` and the judge's).
"""

from __future__ import annotations

from .chunks import chunk_folder
from .gates import content_problem
from .progress import set_progress


async def select_chunks(input_dir, record, *, chunk_size: int, seed: int = 0,
                        subset_size: int | None = None, min_words: int = 5, judge=None,
                        policy: str = "enforce", rejected: str = "judged unsuitable",
                        progress: tuple[float, float] = (0.0, 0.2), task_id=None):
    """``(chunks, samples)``: every chunk read (for offsets and sources, by id) and the
    samples (``id``, ``chunk``, ``source``) of those worth working on.

    ``min_words`` is the content gate (``content_problem``; 0 turns it off);
    ``judge`` a yes/no ``VoteStep`` of the small model, whose verdicts are
    enforced or noted as ``policy`` says (``skip``: not asked; see
    ``RunRecord.model_check``).
    """
    set_progress(task_id, progress[0], "reading documents")
    chunks = chunk_folder(input_dir, record, chunk_size=chunk_size, seed=seed, subset_size=subset_size)
    samples = [chunk.as_sample() for chunk in chunks]
    if min_words:
        samples = record.gate("content", samples,
                              lambda sample: content_problem(sample["chunk"], min_words=min_words))
    if judge is not None and policy != "skip":
        results = await judge.run(samples, progress=progress)
        samples = record.model_check(judge.name, samples, results, policy=policy, rejected=rejected)
    return chunks, samples
