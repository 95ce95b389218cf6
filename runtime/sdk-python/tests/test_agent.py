import json
import unittest

from corral_agent import (
    Agent,
    Context,
    InternalError,
    InvalidInput,
    LimitExceeded,
    Response,
    memory,
    prompt_of,
    tools,
    use_host,
)
from corral_agent.errors import ToolDenied

from .fake_host import FakeHost, deny


def context(body: bytes, content_type: str = "application/json") -> Context:
    return Context("session-1", "alice", "req-1", content_type, body)


class AgentTest(unittest.TestCase):
    def setUp(self) -> None:
        self.host = FakeHost([], {"refund": deny, "calc": lambda a: '{"value": 4}'})
        use_host(self.host)

    def tearDown(self) -> None:
        use_host(None)

    def test_payload_and_return_values_map_to_responses(self):
        agent = Agent()

        @agent.entrypoint
        def invoke(payload):
            return {"got": payload}

        response = agent.handle(context(b'{"prompt": "hi"}'))
        self.assertEqual(response.content_type, "application/json")
        self.assertEqual(json.loads(response.payload), {"got": {"prompt": "hi"}})

        agent.entrypoint(lambda payload, ctx: f"{ctx.actor_id}: {payload}")
        response = agent.handle(context(b"plain words", "text/plain"))
        self.assertEqual(response.payload, b"alice: plain words")
        self.assertTrue(response.content_type.startswith("text/plain"))

        agent.entrypoint(lambda payload: Response(b"\x00\x01", "application/x-bin"))
        self.assertEqual(agent.handle(context(b"{}")).payload, b"\x00\x01")

    def test_generators_stream_their_chunks(self):
        agent = Agent()

        @agent.entrypoint
        def invoke(payload):
            yield "partial "
            yield {"step": 1}

        response = agent.handle(context(b"{}"))
        self.assertEqual(response.payload, b"")
        self.assertEqual(self.host.sent, [b"partial ", b'{"step": 1}\n'])

    def test_errors_keep_their_case_and_bugs_become_internal(self):
        agent = Agent()
        agent.entrypoint(lambda payload: (_ for _ in ()).throw(LimitExceeded("budget spent")))
        with self.assertRaises(LimitExceeded):
            agent.handle(context(b"{}"))

        def buggy(payload):
            return payload["missing"]

        agent.entrypoint(buggy)
        with self.assertRaises(InternalError) as caught:
            agent.handle(context(b"{}"))
        self.assertIn("KeyError", caught.exception.message)
        level, message, fields = self.host.lines[-1]
        self.assertEqual(level, "error")
        self.assertIn("Traceback", fields["traceback"])

        with self.assertRaises(InvalidInput):
            agent.handle(context(b"{not json"))

    def test_a_response_of_the_wrong_type_is_an_internal_error(self):
        agent = Agent()
        agent.entrypoint(lambda payload: Response("not bytes"))
        with self.assertRaises(InternalError) as caught:
            agent.handle(context(b"{}"))
        self.assertIn("must be bytes", caught.exception.message)

    def test_prompt_of(self):
        self.assertEqual(prompt_of({"prompt": "a"}), "a")
        self.assertEqual(prompt_of({"input": "b"}), "b")
        self.assertEqual(prompt_of("c"), "c")
        with self.assertRaises(InvalidInput):
            prompt_of({"other": 1})

    def test_tool_calls_raise_typed_denials(self):
        self.assertEqual(tools.call("calc", {"expression": "2+2"}), {"value": 4})
        with self.assertRaises(ToolDenied) as caught:
            tools.call("refund", {"id": 1})
        self.assertEqual(caught.exception.policy_ids, ["p1"])
        self.assertEqual(self.host.calls[-1], ("refund", '{"id": 1}'))

    def test_remember_turn_is_quiet_without_memory(self):
        self.assertEqual(memory.remember_turn("q", "a"), "event-1")
        self.assertEqual(self.host.events[0][0], [("user", "q"), ("assistant", "a")])
        self.host.memory_attached = False
        self.assertIsNone(memory.remember_turn("q", "a"))
        self.assertEqual(self.host.lines, [], "not-configured is not worth a warning")


if __name__ == "__main__":
    unittest.main()
