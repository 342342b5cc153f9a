"""Run records: one compact, JSON-friendly account of a finished (or unfinished) run."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

PARAMETERS_LIMIT = 200
VALUE_LIMIT = 60
MESSAGE_LIMIT = 300

_FINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})


class StateChange(NamedTuple):
    """One state a run entered: type, display name, and when (monotonic and wall clock).

    Example::

        change = StateChange("RUNNING", "Running", 12.5, 1700000000.0)
        assert change.state_type == "RUNNING"
    """

    state_type: str
    state_name: str
    monotonic: float
    wall: float


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def short_repr(value: Any, limit: int = VALUE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises.

    Example::

        assert short_repr("x" * 100, limit=10) == "'xxxxxxxx…"
    """
    if value.__class__ in _PLAIN:  # the common parameters: no future to look for, a repr that cannot fail
        text = repr(value)
        return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
    run = getattr(value, "_run", None)
    if run is not None and hasattr(value, "task_run_id"):  # a future: name its run, not its state then
        return _clip(f"<future of {getattr(run, 'task_run_name', '?')}>", limit)
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return _clip(text, limit)


def parameters_repr(parameters: dict[str, Any] | None, limit: int = PARAMETERS_LIMIT,
                    value_limit: int = VALUE_LIMIT) -> str:
    """``name=value, ...`` with each value's repr cut to ``value_limit`` and the whole to ``limit``.

    Example::

        assert parameters_repr({"n": 1, "s": "a"}) == "n=1, s='a'"
    """
    if not parameters:
        return ""
    parts = []
    total = 0
    for name, value in parameters.items():
        if value.__class__ in _PLAIN:  # short_repr's first case, inline: one call less per parameter
            text = repr(value)
            if len(text) > value_limit:
                text = text[: max(value_limit - 1, 0)] + "…"
        else:
            text = short_repr(value, value_limit)
        part = f"{name}={text}"
        parts.append(part)
        total += len(part) + 2
        if total > limit:
            break
    return _clip(", ".join(parts), limit)


def one_line(text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
    """The first non-empty line of ``text``, cut to ``limit`` characters (``None`` stays ``None``).

    Example::

        assert one_line("boom\\n  at line 3") == "boom"
    """
    if text is None:
        return None
    for line in text.splitlines():
        if line.strip():
            return _clip(line.strip(), limit)
    return ""


def error_of(state: Any) -> BaseException | None:
    """The exception a final state carries, or None. A Completed state carries none, and its
    ``data`` is not read: with ``cache_result_in_memory=False`` that would load the value
    back from the store.

    Example::

        error = error_of(state)
    """
    if state.type.value == "COMPLETED":
        return None
    data = state.data
    return data if isinstance(data, BaseException) else None


def error_line(exc: BaseException) -> str:
    """``TypeName: message`` on one line.

    Example::

        assert error_line(ValueError("bad\\nvalue")) == "ValueError: bad"
    """
    message = one_line(str(exc)) or ""
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


@dataclasses.dataclass
class RunRecord:
    """What happened to one task run, compact enough to keep one per run of a large map.

    ``states`` lists every state the run entered, in order. ``message`` is the final
    state's message, or the one-line error of a failed run. ``lane`` is where the run
    ran (its worker, or ``pid/thread``), used by the timeline.

    Example::

        record = RunRecord(task_run_id="1", task_name="fetch", task_run_name="fetch-1")
        record.states.append(StateChange("COMPLETED", "Completed", 2.0, 1700000002.0))
        assert RunRecord.from_dict(record.to_dict()) == record
    """

    task_run_id: str
    task_name: str
    task_run_name: str
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    parameters: str = ""
    upstream_ids: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    attempts: int = 0
    states: list[StateChange] = dataclasses.field(default_factory=list)
    thread: str | None = None
    pid: int | None = None
    worker: str | None = None
    cached: bool = False
    message: str | None = None
    error_type: str | None = None

    # ------------------------------------------------------------ derived
    @property
    def final(self) -> StateChange | None:
        """The last state change if it is a final state, else ``None``."""
        if self.states and self.states[-1].state_type in _FINAL_TYPES:
            return self.states[-1]
        return None

    @property
    def state_type(self) -> str:
        """Type of the latest state (``"PENDING"`` when none was seen)."""
        return self.states[-1].state_type if self.states else "PENDING"

    @property
    def state_name(self) -> str:
        """Display name of the latest state."""
        return self.states[-1].state_name if self.states else "Pending"

    @property
    def started(self) -> StateChange | None:
        """The first ``RUNNING`` state change."""
        for change in self.states:
            if change.state_type == "RUNNING":
                return change
        return None

    @property
    def first(self) -> StateChange | None:
        """The first state change (usually the submission)."""
        return self.states[0] if self.states else None

    @property
    def duration(self) -> float | None:
        """Seconds from first running to final state (or from the first state), else ``None``."""
        final = self.final
        begin = self.started or self.first
        if final is None or begin is None:
            return None
        return max(final.monotonic - begin.monotonic, 0.0)

    @property
    def retries(self) -> int:
        """How many times the run was retried."""
        named = sum(1 for c in self.states if c.state_name == "Retrying")
        return max(named, self.attempts - 1, 0)

    @property
    def lane(self) -> str:
        """Where the run ran: its worker, else ``pid/thread``."""
        if self.worker:
            return self.worker
        if self.thread is None:
            return "did not run"
        return f"{self.pid if self.pid is not None else '?'}/{self.thread}"

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (state changes as lists)."""
        # Not dataclasses.asdict: it deep-copies every value, and this runs once per run.
        data = {name: getattr(self, name) for name in _FIELDS}
        data["states"] = [list(change) for change in self.states]
        data["upstream_ids"] = list(self.upstream_ids)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record :meth:`to_dict` made; a clear ``ValueError`` for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"a run record must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("task_run_id", "task_name", "task_run_name") if k not in data]
        if missing:
            raise ValueError(f"run record is missing {missing}; was it written by taskrun's recorder?")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["states"] = [StateChange(str(t), str(n), float(m), float(w))
                                for t, n, m, w in data.get("states", [])]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run record {data['task_run_id']!r} has malformed states: {exc}") from None
        values["upstream_ids"] = list(data.get("upstream_ids", []))
        values["tags"] = list(data.get("tags", []))
        return cls(**values)


_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
