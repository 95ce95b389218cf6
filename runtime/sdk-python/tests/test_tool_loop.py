import json
import unittest

from corral_agent import Message, ModelFailed, ToolLoop, use_host
from corral_agent.tool_loop import trim_history

from .fake_host import FakeHost, deny, final_turn, tool_turn


class ToolLoopTest(unittest.TestCase):
    def tearDown(self) -> None:
        use_host(None)

    def test_runs_tools_and_feeds_results_back(self):
        host = FakeHost(
            [tool_turn(("calc", '{"expression":"2+2"}'), ("refund", "{}")), final_turn("4; refund denied")],
            {"calc": lambda args: json.dumps({"value": 4}), "refund": deny},
        )
        use_host(host)
        conversation: list[Message] = []
        outcome = ToolLoop("sys").ask(conversation, "2+2 and refund me")
        self.assertEqual(outcome.stop, "end-turn")
        self.assertEqual(outcome.steps, 2)
        self.assertEqual(outcome.text, "4; refund denied")
        self.assertEqual(outcome.usage.input_tokens, 30)
        self.assertEqual([(c.name, c.ok) for c in outcome.tool_calls], [("calc", True), ("refund", False)])
        self.assertEqual(outcome.denials[0].reason, "refunds need a human")
        self.assertEqual(outcome.denials[0].policy_ids, ["p1"])
        results = conversation[2].content
        self.assertTrue(results[0].ok and results[0].is_json)
        self.assertFalse(results[1].ok)
        self.assertIn("denied by policy: refunds need a human (policies: p1)", results[1].content)
        self.assertEqual(len(host.requests[1]), 3, "the second call sees the tool results")

    def test_stops_at_the_step_limit(self):
        host = FakeHost([tool_turn(("calc", "{}"))] * 3, {"calc": lambda a: "{}"})
        use_host(host)
        outcome = ToolLoop("s", max_steps=2).ask([], "loop")
        self.assertEqual(outcome.stop, "step-limit")
        self.assertEqual(len(host.calls), 2)
        self.assertIn("step limit of 2", host.lines[-1][1])

    def test_model_errors_become_model_failed(self):
        use_host(FakeHost([]))
        with self.assertRaises(ModelFailed) as caught:
            ToolLoop("s").ask([], "x")
        self.assertIn("no reply queued", str(caught.exception))

    def test_offers_only_named_tools_or_none(self):
        host = FakeHost([final_turn("a"), final_turn("b")], {"calc": str, "refund": str})
        use_host(host)
        ToolLoop("s", tools=["calc"]).ask([], "x")
        self.assertEqual(host.offered, ["calc"])
        ToolLoop("s", use_tools=False).ask([], "y")
        self.assertEqual(host.offered, [])

    def test_tools_not_offered_never_run(self):
        host = FakeHost([tool_turn(("refund", "{}")), final_turn("no")], {"calc": str, "refund": deny})
        use_host(host)
        outcome = ToolLoop("s", tools=["calc"]).ask([], "refund me")
        self.assertEqual(host.calls, [], "refund was not offered, so it never ran")
        self.assertEqual(outcome.tool_calls[0].error, "tool not found: refund")

    def test_a_failed_turn_is_taken_back_and_the_step_limit_ends_with_the_assistant(self):
        conversation = [Message.user("1"), Message.assistant("a")]
        use_host(FakeHost([]))
        with self.assertRaises(ModelFailed):
            ToolLoop("s").ask(conversation, "2")
        self.assertEqual(len(conversation), 2, "the unanswered prompt is removed")
        use_host(FakeHost([tool_turn(("calc", "{}"))], {"calc": lambda a: "{}"}))
        ToolLoop("s", max_steps=1).ask(conversation, "3")
        self.assertEqual(conversation[-1].role, "assistant")
        self.assertIn("step limit of 1", conversation[-1].text)

    def test_history_trim_keeps_whole_turns(self):
        conversation = [
            Message.user("1"), Message.assistant("a"),
            Message.user("2"), Message.assistant("b"),
            Message.user("3"),
        ]
        trim_history(conversation, 3)
        self.assertEqual([m.text for m in conversation], ["2", "b", "3"])


if __name__ == "__main__":
    unittest.main()
