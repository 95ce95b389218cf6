"""Exceptions an agent raises or catches.

An agent fails an invocation by raising a subclass of :class:`AgentError`;
Corral returns it to the caller as the matching ``agent-error`` case.
Host calls raise :class:`ToolError`, :class:`ModelError` or
:class:`MemoryAccessError` subclasses, so agents can handle each case.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AgentError(Exception):
    """Base of the errors that fail an invocation (``agent-error``)."""

    #: The ``agent-error`` case this maps to.
    kind = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AgentError):
    """The request payload was not what the agent accepts."""

    kind = "invalid-input"


class ModelFailed(AgentError):
    """A model call failed and the agent could not recover."""

    kind = "model-failed"


class ToolFailed(AgentError):
    """A tool call failed and the agent could not recover."""

    kind = "tool-failed"


class LimitExceeded(AgentError):
    """The agent hit one of its own limits (steps, budget)."""

    kind = "limit-exceeded"


class InternalError(AgentError):
    """Anything else."""

    kind = "internal"


class ToolError(Exception):
    """A tool call failed; subclasses say how (``tool-error``)."""

    def explain(self) -> str:
        """One line fit for a model or a log."""
        return str(self)


class ToolNotFound(ToolError):
    """No tool of that name is available to this session."""

    def __init__(self, name: str) -> None:
        super().__init__(f"tool not found: {name}")
        self.name = name


@dataclass
class ToolDenied(ToolError):
    """A policy denied the call; the tool never ran."""

    reason: str
    policy_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.explain())

    def explain(self) -> str:
        text = f"denied by policy: {self.reason}"
        if self.policy_ids:
            text += f" (policies: {', '.join(self.policy_ids)})"
        return text


class InvalidToolArguments(ToolError):
    """The arguments are not valid for the tool."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid arguments: {message}")


class ToolUpstreamError(ToolError):
    """The tool ran, or tried to, and failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        text = (
            f"upstream failed with status {status}: {message}"
            if status is not None
            else f"upstream failed: {message}"
        )
        super().__init__(text)
        self.status = status
        self.upstream_message = message


class ToolTimeout(ToolError):
    """The call did not finish within its time limit."""

    def __init__(self, message: str) -> None:
        super().__init__(f"tool timed out: {message}")


class ToolLimitExceeded(ToolError):
    """A host limit (calls per session, response size) was reached."""

    def __init__(self, message: str) -> None:
        super().__init__(f"tool limit exceeded: {message}")


class ModelError(Exception):
    """A model call failed (``model-error``); ``kind`` names the case."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"model {kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def retryable(self) -> bool:
        """Whether retrying later may succeed (throttling, unavailability, timeouts)."""
        return self.kind in ("throttled", "unavailable", "timeout")


class MemoryAccessError(Exception):
    """A memory operation failed (``memory-error``); ``kind`` names the case.

    ``not-configured`` means no memory is attached to the agent; ``denied``
    that the namespace belongs to another actor; ``limit-exceeded`` that the
    session's memory write quota is spent.
    """

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(f"memory {kind}: {message}" if message else f"memory {kind}")
        self.kind = kind
        self.message = message
