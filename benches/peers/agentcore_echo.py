"""The peer for InvokeAgentRuntime: AWS's own BedrockAgentCoreApp (the
bedrock-agentcore SDK on uvicorn, as `app.run()` serves it), echoing the
payload like Corral's echo agent."""

import sys

from bedrock_agentcore.runtime import BedrockAgentCoreApp

app = BedrockAgentCoreApp()


@app.entrypoint
def invoke(payload: dict) -> dict:
    return payload


if __name__ == "__main__":
    app.run(port=int(sys.argv[1]), host="127.0.0.1")
