"""A hostile Python agent for the sandbox tests: each request names an
attack, and the agent reports what the sandbox let it do."""

import os
import socket

from corral_agent import Agent, Context

agent = Agent()
hoard: list[bytes] = []


@agent.entrypoint
def invoke(payload: dict, context: Context) -> dict:
    action = payload.get("action")
    if action == "file":
        try:
            with open(payload.get("path", "/etc/passwd")) as f:
                return {"leaked": f.read(200)}
        except OSError as e:
            return {"refused": f"{type(e).__name__}: {e}"}
    if action == "listdir":
        try:
            return {"leaked": os.listdir("/")}
        except OSError as e:
            return {"refused": f"{type(e).__name__}: {e}"}
    if action == "env":
        return {"env": dict(os.environ)}
    if action == "socket":
        try:
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conn.connect(("127.0.0.1", int(payload.get("port", 80))))
            conn.close()
            return {"leaked": "connected"}
        except Exception as e:  # any failure means the sandbox refused
            return {"refused": f"{type(e).__name__}: {e}"}
    if action == "loop":
        n = 0
        while True:
            n += 1
    if action == "memory":
        while True:
            hoard.append(bytes(1 << 20))
    return {"echo": payload, "session": context.session_id}
