"""WitHost against the bindings componentize-py generates from agent.wit:
the generated import functions are replaced by fakes, so every WIT type and
case name the SDK maps is checked on plain CPython."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

WIT = Path(__file__).resolve().parents[2] / "wit" / "agent.wit"
COMPONENTIZE_PY = Path(sys.executable).with_name("componentize-py")


@unittest.skipUnless(COMPONENTIZE_PY.exists() or shutil.which("componentize-py"), "needs componentize-py")
class WitHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        tool = str(COMPONENTIZE_PY) if COMPONENTIZE_PY.exists() else "componentize-py"
        subprocess.run(
            [tool, "-d", str(WIT), "-w", "agent", "bindings", cls.tmp.name],
            check=True,
            capture_output=True,
        )
        sys.path.insert(0, cls.tmp.name)
        from componentize_py_types import Err
        from wit_world.imports import log, memory, model, response_stream, tools

        cls.Err, cls.log, cls.memory, cls.model, cls.stream, cls.tools = (
            Err, log, memory, model, response_stream, tools,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        sys.path.remove(cls.tmp.name)
        cls.tmp.cleanup()

    def host(self):
        from corral_agent.host import WitHost

        return WitHost()

    def test_converse_maps_messages_both_ways(self):
        from corral_agent import Inference, Message, ToolResult, ToolSpec, ToolUse

        m = self.model
        seen = {}

        def converse(request):
            seen["request"] = request
            return m.ConverseResponse(
                m.Message(m.Role.ASSISTANT, [
                    m.ContentBlock_Text("checking"),
                    m.ContentBlock_ToolUse(m.ToolUse("t1", "calc", '{"x":1}')),
                ]),
                m.StopReason.TOOL_USE,
                m.TokenUsage(5, 2, 7),
            )

        m.converse = converse
        history = [
            Message.user("hi"),
            Message("assistant", [ToolUse("t0", "calc", "{}")]),
            Message("user", [ToolResult.success("t0", '{"v": 1}')]),
        ]
        reply = self.host().converse(["sys"], history, [ToolSpec("calc", "d", "{}")], None, Inference(max_tokens=9))
        self.assertEqual(reply.stop_reason, "tool-use")
        self.assertEqual(reply.usage.total_tokens, 7)
        self.assertEqual(reply.message.tool_uses[0].arguments(), {"x": 1})
        request = seen["request"]
        self.assertEqual(request.inference.max_tokens, 9)
        result = request.messages[2].content[0].value
        self.assertEqual(result.status, m.ToolResultStatus.SUCCESS)
        self.assertIsInstance(result.content[0], m.ToolResultContent_Json)

    def test_errors_keep_their_case(self):
        from corral_agent import MemoryAccessError, ModelError, StreamClosed, ToolDenied, ToolNotFound

        t, mem, m, st = self.tools, self.memory, self.model, self.stream

        def denied(name, args):
            raise self.Err(t.ToolError_Denied(t.Denial("no refunds", ["p1"])))

        t.call_tool = denied
        with self.assertRaises(ToolDenied) as caught:
            self.host().call_tool("refund", "{}")
        self.assertEqual(caught.exception.policy_ids, ["p1"])

        def missing(name, args):
            raise self.Err(t.ToolError_NotFound(name))

        t.call_tool = missing
        with self.assertRaises(ToolNotFound):
            self.host().call_tool("nope", "{}")

        def throttled(request):
            raise self.Err(m.ModelError_Throttled("slow down"))

        m.converse = throttled
        with self.assertRaises(ModelError) as model_error:
            self.host().converse([], [], [], None, __import__("corral_agent").Inference())
        self.assertEqual(model_error.exception.kind, "throttled")
        self.assertTrue(model_error.exception.retryable)

        def not_configured(payload):
            raise self.Err(mem.MemoryError_NotConfigured())

        mem.append_event = not_configured
        with self.assertRaises(MemoryAccessError) as memory_error:
            self.host().append_event([("user", "hi")], [])
        self.assertEqual(memory_error.exception.kind, "not-configured")
        with self.assertRaises(MemoryAccessError) as bad_role:
            self.host().append_event([("robot", "hi")], [])
        self.assertEqual(bad_role.exception.kind, "validation")

        def closed(chunk):
            raise self.Err(st.StreamError_Closed())

        st.send = closed
        with self.assertRaises(StreamClosed):
            self.host().send(b"x")

    def test_log_levels_and_the_budget(self):
        lines = []

        def write(level, message, fields):
            lines.append((level, message, [(f.key, f.value) for f in fields]))
            if len(lines) > 1:
                raise self.Err(self.log.LogError_LimitExceeded("spent"))

        self.log.write = write
        host = self.host()
        host.log("warning", "careful", {"k": "v"})
        host.log("nonsense", "over budget, dropped quietly", {})
        self.assertEqual(lines[0], (self.log.Level.WARN, "careful", [("k", "v")]))
        self.assertEqual(lines[1][0], self.log.Level.INFO)


if __name__ == "__main__":
    unittest.main()
