"""Which chunks a pipeline works on: read, chunk, the content gate, then the small model's say.

Every pipeline over a folder of documents starts the same way, so they all
read the same files, drop the same chunks for the same reasons, and record
them the same way (steps ``read``, ``chunk``, ``content`` and the judge's).
"""

from __future__ import annotations

from .chunks import chunk_folder
from .fields import Documents
from .gates import content_problem
from ..engine.progress import set_progress


async def select_chunks(input_dir, record, documents: Documents, *, seed: int = 0, judge=None,
                        policy: str = "enforce", rejected: str = "judged unsuitable",
                        progress: tuple[float, float] = (0.0, 0.2), task_id=None):
    """``(chunks, samples)``: every chunk read (for offsets and sources, by id) and the
    samples (``id``, ``chunk``, ``source``) of those worth working on.

    ``documents`` says how to chunk and sample (``Documents``; its
    ``min_chunk_words`` is the content gate, ``content_problem``, 0 turns it
    off); ``judge`` a yes/no ``VoteStep`` of the small model, whose verdicts
    are enforced or noted as ``policy`` says (``skip``: not asked; see
    ``RunRecord.apply_verdicts``).
    """
    set_progress(task_id, progress[0], "reading documents")
    chunks = chunk_folder(input_dir, record, chunk_size=documents.chunk_size, seed=seed,
                          subset_size=documents.subset)
    return chunks, await judge_chunks(chunks, record, documents, judge=judge, policy=policy,
                                      rejected=rejected, progress=progress)


async def judge_chunks(chunks, record, documents: Documents, *, judge=None, policy: str = "enforce",
                       rejected: str = "judged unsuitable", progress: tuple[float, float] = (0.0, 0.2)):
    """The samples (``id``, ``chunk``, ``source``) of the ``chunks`` worth working on: the
    content gate, then the ``judge``'s verdicts (``select_chunks``' second half, for a shard
    of a ``Corpus``)."""
    samples = [chunk.as_sample() for chunk in chunks]
    if documents.min_chunk_words:
        samples = record.gate("content", samples, lambda sample: content_problem(
            sample["chunk"], min_words=documents.min_chunk_words))
    if judge is not None and policy != "skip":
        results = await judge.run(samples, progress=progress)
        samples = record.apply_verdicts(judge.name, samples, results, policy=policy, rejected=rejected)
    return samples


def chunk_filter(*, votes: int = 3, threshold: float = 0.5, **options):
    """The small model's vote on whether a chunk holds content worth learning, for
    ``select_chunks(judge=...)``: step ``filter``, the pipeline's prompt ``filter_chunk``,
    answers ``{"reason", "has_content"}``. ``options`` are the VoteStep's (temperature...)."""
    from ..engine.steps import VoteStep

    return VoteStep.yes_no("filter", "filter_chunk", "has_content", model="small", votes=votes,
                           threshold=threshold, **options)
