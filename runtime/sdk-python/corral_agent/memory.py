"""Short- and long-term memory of the agent's memory resource, if attached."""

from __future__ import annotations

from . import host as _host
from . import log
from .errors import MemoryAccessError
from .types import Event, MemoryRecord


def append_event(*turns: tuple[str, str], blobs: list[str] | None = None) -> str:
    """Appends an event of ``(role, text)`` turns (roles: user, assistant, tool,
    other) and JSON ``blobs`` to the session; returns the event id."""
    return _host.current().append_event(list(turns), list(blobs or []))


def remember_turn(prompt: str, answer: str) -> str | None:
    """Records one turn (prompt and answer) as an event; returns its id, or
    ``None`` when no memory is attached. Other failures are logged, not raised."""
    try:
        return append_event(("user", prompt), ("assistant", answer))
    except MemoryAccessError as e:
        if e.kind != "not-configured":
            log.warn(f"could not record the turn in memory: {e}")
        return None


def list_events(max_results: int = 20) -> list[Event]:
    """The session's latest events, oldest first."""
    return _host.current().list_events(max_results)


def retrieve(namespace: str, query: str, top_k: int = 5) -> list[MemoryRecord]:
    """Long-term records at or below ``namespace`` (``{actorId}`` and
    ``{sessionId}`` are filled in), most relevant first. Only the invocation's
    actor's namespaces are readable; others raise ``MemoryAccessError('denied')``."""
    return _host.current().retrieve_records(namespace, query, top_k)
