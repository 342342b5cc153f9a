"""Random fault DAGs and the pure-Python model that predicts every final state.

A DAG is a list of :class:`Node`; a node's inputs are earlier nodes only. The
model knows nothing of taskrun: it applies the documented rules (README,
"States", "Retries", "Timeouts", "Cancellation", "Futures as parameters",
``allow_failure``; docs/guarantees.md for hooks and callbacks):

- an input that may not fail (not wrapped in ``allow_failure``) and did not
  complete makes the run ``NotReady``; its body never runs;
- otherwise the body decides: a value -> ``Completed``; an ``Exception`` ->
  ``Failed`` (``TimedOut`` past ``timeout_seconds``), retried ``retries``
  times; a ``BaseException`` -> ``Crashed``, never retried; a cancel ->
  ``Cancelled``;
- a failed input allowed to fail reaches the body as its exception;
- raising hooks and done callbacks change no state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BEHAVIOURS = ("ok", "raise", "flaky", "timeout", "crash", "cancel")


@dataclass(frozen=True)
class Input:
    node: int
    allowed: bool  # wrapped in allow_failure


@dataclass
class Node:
    key: int
    behaviour: str
    is_async: bool = False
    failures: int = 0  # flaky: attempts that fail before one succeeds
    retries: int = 0
    params: list[Input] = field(default_factory=list)  # at most two: parameters a and b
    waits: list[Input] = field(default_factory=list)
    raising_hook: str | None = None  # "value" (ValueError) or "exit" (SystemExit)
    raising_callback: bool = False


@dataclass(frozen=True)
class Outcome:
    type: str  # COMPLETED, FAILED, CRASHED, CANCELLED, PENDING (NotReady)
    name: str
    value: int | None = None


def make_dag(seed: int, size: int, behaviours: tuple[str, ...], with_async: bool,
             with_hooks: bool) -> list[Node]:
    """A random DAG of ``size`` nodes; the same seed gives the same DAG."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    for key in range(size):
        weights = {"ok": 6, "raise": 1, "flaky": 2, "timeout": 1, "crash": 1, "cancel": 1}
        kinds = [b for b in behaviours]
        behaviour = rng.choices(kinds, [weights[b] for b in kinds])[0]
        node = Node(key, behaviour, is_async=with_async and rng.random() < 0.4)
        if behaviour == "flaky":
            node.failures = rng.randint(1, 3)
            node.retries = rng.randint(0, 3)
        elif behaviour == "raise":
            node.retries = rng.randint(0, 1)
        # Cancelled runs are roots: a cancel racing an upstream failure has no one answer.
        if behaviour != "cancel" and key:
            earlier = list(range(key))
            for _ in range(rng.choice((0, 1, 1, 2))):
                node.params.append(Input(rng.choice(earlier), rng.random() < 0.35))
            if rng.random() < 0.3:
                node.waits.append(Input(rng.choice(earlier), rng.random() < 0.35))
        if with_hooks and rng.random() < 0.25:
            node.raising_hook = rng.choice(("value", "exit"))
        node.raising_callback = rng.random() < 0.3
        nodes.append(node)
    return nodes


def predict(nodes: list[Node]) -> list[Outcome]:
    """Every node's final state, from the rules alone."""
    out: list[Outcome] = []
    for node in nodes:
        inputs = [*node.params, *node.waits]
        if any(not i.allowed and out[i.node].type != "COMPLETED" for i in inputs):
            out.append(Outcome("PENDING", "NotReady"))
            continue
        b = node.behaviour
        if b == "ok" or (b == "flaky" and node.failures <= node.retries):
            value = node.key + sum(out[i.node].value or 0 for i in node.params)
            out.append(Outcome("COMPLETED", "Completed", value))
        elif b in ("raise", "flaky"):
            out.append(Outcome("FAILED", "Failed"))
        elif b == "timeout":
            out.append(Outcome("FAILED", "TimedOut"))
        elif b == "crash":
            out.append(Outcome("CRASHED", "Crashed"))
        else:
            out.append(Outcome("CANCELLED", "Cancelled"))
    return out
