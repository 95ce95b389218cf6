"""Echoes the request back: the smallest Python agent (used by the benchmarks)."""

from corral_agent import Agent, Context, Response

agent = Agent()


@agent.entrypoint
def invoke(payload: object, context: Context) -> Response:
    return Response(context.body, context.content_type)
