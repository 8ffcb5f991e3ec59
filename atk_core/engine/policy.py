"""How a run applies its gates and the model's verdicts to what a model wrote.

The engine (steps, votes, ``RunRecord``) asks the run's ``GatePolicy`` rather
than applying a gate itself, so that a run can be judged differently without
the engine knowing why. A normal run applies every gate and verdict as
written. ``atk run --estimate`` gives its dry run a policy under which every
placeholder answer passes (``atk_core.commands.estimate``), so each sample goes as far
as it can, and no step or record asks "is this an estimate?".
"""

from __future__ import annotations

from typing import Any, Callable


class GatePolicy:
    """Gates and verdicts applied as written."""

    def gate(self, gate: Callable[..., Any], *args) -> Any:
        """What ``gate(*args)`` finds wrong (a problem), or None when nothing is."""
        return gate(*args)

    def verdict(self, decide: Callable[..., bool], *args) -> bool:
        """Whether a sample passes the model's verdict ``decide(*args)`` (a vote's answer, a
        yes/no field)."""
        return bool(decide(*args))

    def unparsed(self, step: str, problem: str) -> str:
        """What to do with an answer that does not parse: its problem, to ask again with."""
        return problem


APPLIED = GatePolicy()


def gate_policy() -> GatePolicy:
    """The current run's policy (gates and verdicts as written outside a run)."""
    from .context import current_run

    run = current_run()
    return run.policy if run is not None and run.policy is not None else APPLIED
