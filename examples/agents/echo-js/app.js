// Echoes the request back: the smallest JavaScript agent (used by the benchmarks).

import { Agent, Response } from "corral-agent";

const agent = new Agent();

agent.entrypoint((_payload, context) => new Response(context.body, context.contentType));

export const handler = agent.handler();
