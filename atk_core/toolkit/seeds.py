"""Deterministic randomness: every random choice of a run comes from its seed and a sample's id.

The same seed and parts always give the same number, on any machine and in
any order, so a resumed run makes the choices the interrupted one made.
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *parts) -> int:
    """A per-sample seed: the same seed and sample id always give the same number."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF
