"""Write Corral agents in Python.

An agent is a module that registers an entry point; ``corral build`` turns it
into a WebAssembly component (with componentize-py) that runs in its own
sandbox per session. Everything it reaches — the model, the session's tools,
memory, the session log — goes through :mod:`corral_agent.host`::

    from corral_agent import Agent, Context, ToolLoop, prompt_of

    agent = Agent()
    history = []  # lives as long as the session's sandbox

    @agent.entrypoint
    def invoke(payload: dict, context: Context) -> dict:
        outcome = ToolLoop("You are a helpful assistant.").ask(history, prompt_of(payload))
        return {"response": outcome.text}
"""

from . import log, memory, stream, tools
from .agent import Agent, Context, Response, prompt_of
from .errors import (
    AgentError,
    InternalError,
    InvalidInput,
    InvalidToolArguments,
    LimitExceeded,
    MemoryAccessError,
    ModelError,
    ModelFailed,
    ToolDenied,
    ToolError,
    ToolFailed,
    ToolLimitExceeded,
    ToolNotFound,
    ToolTimeout,
    ToolUpstreamError,
)
from .host import Host, StreamClosed, StreamLimitExceeded, use_host
from .tool_loop import LoopOutcome, ToolCall, ToolLoop
from .types import (
    Event,
    Inference,
    MemoryRecord,
    Message,
    ModelReply,
    Text,
    ToolInfo,
    ToolResult,
    ToolSpec,
    ToolUse,
    Usage,
)

__all__ = [
    "Agent", "AgentError", "Context", "Event", "Host", "Inference", "InternalError",
    "InvalidInput", "InvalidToolArguments", "LimitExceeded", "LoopOutcome",
    "MemoryAccessError", "MemoryRecord", "Message", "ModelError", "ModelFailed",
    "ModelReply", "Response", "StreamClosed", "StreamLimitExceeded", "Text", "ToolCall",
    "ToolDenied", "ToolError", "ToolFailed", "ToolInfo", "ToolLimitExceeded", "ToolLoop",
    "ToolNotFound", "ToolResult", "ToolSpec", "ToolTimeout", "ToolUpstreamError", "ToolUse",
    "Usage", "log", "memory", "prompt_of", "stream", "tools", "use_host",
]
