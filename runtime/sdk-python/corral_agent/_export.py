"""The component export: componentize-py binds ``Handler`` to
``corral:agent/handler``. `corral build` adds ``from corral_agent._export
import Handler`` after importing the agent's module; agents never import this."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

from .agent import Context, registered
from .errors import AgentError, InternalError

_CASES = {
    "invalid-input": types.AgentError_InvalidInput,
    "model-failed": types.AgentError_ModelFailed,
    "tool-failed": types.AgentError_ToolFailed,
    "limit-exceeded": types.AgentError_LimitExceeded,
    "internal": types.AgentError_Internal,
}


class Handler(exports.Handler):
    """Dispatches every invocation to the registered entry point."""

    def invoke(self, invocation: types.Invocation) -> types.Response:
        agent = registered()
        try:
            if agent is None:
                raise InternalError(
                    "no entry point registered; decorate one with @agent.entrypoint"
                )
            response = agent.handle(
                Context(
                    session_id=invocation.session_id,
                    actor_id=invocation.actor_id,
                    request_id=invocation.request_id,
                    content_type=invocation.content_type,
                    body=bytes(invocation.payload),
                )
            )
        except AgentError as e:
            raise Err(_CASES.get(e.kind, types.AgentError_Internal)(e.message)) from None
        except BaseException as e:  # SystemExit and the like: an error, not a trap
            raise Err(types.AgentError_Internal(f"{type(e).__name__}: {e}")) from None
        return types.Response(response.payload, response.content_type)
