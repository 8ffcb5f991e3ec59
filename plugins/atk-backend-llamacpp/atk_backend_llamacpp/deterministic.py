"""A llama.cpp model whose answer to a request does not depend on what ran before it.

llama-cpp-python reuses the part of the context that matches the new prompt
and evaluates only the rest. The rest is then evaluated in a batch of another
shape than it would be from a clean context, and llama.cpp's numbers depend
(in the last bits) on the batch shape: the same request, sent twice, can give
another answer (seen with 0.3.36 at temperature 0.9 on the second identical
request). Starting every request from a clean context is deterministic but
re-reads the whole prompt every time.

Here a prompt is always evaluated in the same pieces, cut at fixed positions
(0, 8, 16, 24, 32, 48, 64, 96, 128, ... then every n_batch), and a request
reuses only whole pieces that the previous prompt evaluated identically. The
state before sampling is then a function of the prompt alone: same request,
same numbers, same text, in any order.
"""

from __future__ import annotations

import threading

from .worker import Cancelled

_LLAMA_CLASS = None


def llama_class():
    """llama_cpp.Llama with a deterministic prompt evaluation (made on first use)."""
    global _LLAMA_CLASS
    if _LLAMA_CLASS is None:
        import llama_cpp

        class DeterministicLlama(llama_cpp.Llama):
            atk_canonical: tuple = ()  # the prompt whose pieces the context holds
            atk_prefills = 0  # prompts evaluated by prefill during the current request
            atk_kept = 0  # tokens of the last prompt taken over from the one before
            atk_thread = None  # the thread that generated last (tests: always the same)
            atk_cancel = None  # set when nobody waits for the answer any more
            atk_generated = 0  # tokens generated in this process (tests)

            def generate(self, tokens, *args, **kwargs):
                tokens = list(tokens)
                prefill(self, tokens)
                self.atk_prefills += 1
                self.atk_thread = threading.get_ident()
                # The whole prompt is evaluated: llama-cpp-python samples from it directly.
                return self._atk_until_cancelled(super().generate(tokens, *args, **kwargs))

            def _atk_until_cancelled(self, tokens):
                cancel = self.atk_cancel
                for token in tokens:
                    self.atk_generated += 1
                    yield token
                    if cancel is not None and cancel.is_set():
                        return

            # Anything else that rewrites the prompt's part of the context (a
            # reset, or a version of generate() that evaluates some of it again)
            # makes it unfit for reuse: the next prompt then starts clean.
            def eval(self, tokens):
                if self.n_tokens < len(self.atk_canonical):
                    self.atk_canonical = ()
                return super().eval(tokens)

            def reset(self):
                self.atk_canonical = ()
                return super().reset()

        _LLAMA_CLASS = DeterministicLlama
    return _LLAMA_CLASS


def _cuts(n_tokens: int, n_batch: int) -> list[int]:
    """Where a prompt of ``n_tokens`` is cut into pieces: fixed positions, finer at the start."""
    cuts, position = [], 0
    while position < n_tokens:
        cuts.append(position)
        step = 8 if position < 32 else 1 << (position.bit_length() - 2)
        position += max(1, min(step, n_batch))
    return cuts


def prefill(llama, tokens: list) -> None:
    """Evaluate ``tokens`` into the context in fixed pieces, keeping the pieces already there."""
    cuts = _cuts(len(tokens), max(1, int(getattr(llama, "n_batch", 512))))
    keep = 0
    previous = getattr(llama, "atk_canonical", ())
    if previous:
        common = 0
        for a, b in zip(previous, tokens):
            if a != b:
                break
            common += 1
        # At least the last piece is evaluated again: sampling needs its logits.
        keep = max((c for c in cuts if c <= min(common, len(tokens) - 1)), default=0)
    llama.atk_canonical = ()
    remove = getattr(getattr(llama, "_ctx", None), "kv_cache_seq_rm", None)
    if keep and remove is not None and remove(-1, keep, -1):
        llama.n_tokens = keep
    else:
        keep = 0
        llama.reset()
    ends = [c for c in cuts if c > keep] + [len(tokens)]
    start = keep
    cancel = getattr(llama, "atk_cancel", None)
    for end in ends:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        llama.eval(tokens[start:end])
        start = end
    llama.atk_canonical = tuple(tokens)
    llama.atk_kept = keep  # for tests and the benchmark
