"""An agent's tool calls governed like requests: what each verdict is and what the model is
told, without Kafka (the entity view is a small fake)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nova.domain.context import DataspaceItem, MeetingEntry, ThreadMessage
from nova.domain.governance import Rule, RuleMatch
from nova.domain.http_allow import parse_allow_list, parse_url
from nova.entities.models import AgentEntity
from nova.llm.tools import ToolCall
from nova.records import CheckpointState, EncodedPrompt, Intent, Mask, Message, PipelineRecord
from streams.agent_http import HttpAnswer, HttpRequest
from streams.agent_tools import answered, decided, judge_and_run

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class View:
    owners: dict[str, str] = field(default_factory=dict)

    def owner(self, kind: str, entity_id: str) -> str | None:
        return self.owners.get(f"{kind}:{entity_id}")

    def thread_messages(self, thread_id: str) -> list[ThreadMessage]:
        text = {"t3": "pay to DE89 3704 0044 0532 0130 00 today",
                "t4": "the key is AKIAIOSFODNN7EXAMPLE"}.get(thread_id, f"hello from {thread_id}")
        return [ThreadMessage(thread_id, "m1", "user", text, AT)]

    def meeting_entries(self, meeting_id: str) -> list[MeetingEntry]:
        return [MeetingEntry(meeting_id, "e1", "Ops", "decision", "ship it", AT)]

    def dataspace_items(self, dataspace_id: str) -> list[DataspaceItem]:
        return []


RECORD = PipelineRecord(request_id="r1", identity_id="alice", user_id="u", submitted_at=0,
                        prompt="summarise", roles=("member",),
                        intent=Intent(task_type="analysis", action="READ", confidence=1.0))
AGENT = AgentEntity(id="ag", owner="alice", name="n", role="analyst", created_at=0,
                    tools=("read_thread", "read_meeting", "read_dataspace", "append_thread",
                           "send_message", "http_call"),
                    allowed_hosts=("api.example.com", "evil.example.com"))
NO_LIST = parse_allow_list("")
API = parse_allow_list("https://api.example.com/v1, https://other.example.com")
VIEW = View({"thread:t1": "alice", "thread:t2": "bob", "meeting:m1": "alice",
             "thread:t3": "alice", "thread:t4": "alice",
             "dataspace:d1": "alice"})


def judge(name: str, rules: tuple[Rule, ...] = (), agent: AgentEntity = AGENT, **args: object):
    return judge_and_run(RECORD, agent, ToolCall("c1", name, args), VIEW, rules)


def test_reads_of_the_identity_s_own_resources_run() -> None:
    out = judge("read_thread", thread_id="t1")
    assert (out.verdict, out.is_error, out.crossing) == ("executed", False, None)
    assert "hello from t1" in out.content
    assert out.decision is not None
    assert out.decision.outcome == "allow"
    assert "ship it" in judge("read_meeting", meeting_id="m1").content
    assert judge("read_dataspace", dataspace_id="d1").content == "(empty)"


def test_another_identity_s_thread_is_denied_and_names_the_crossing() -> None:
    out = judge("read_thread", thread_id="t2")
    assert (out.verdict, out.crossing) == ("denied", ("thread", "t2", "bob"))
    assert "IDENTITY_BOUNDARY" in out.content
    assert "hello" not in out.content


def test_calls_the_agent_may_not_make_are_refused_with_a_reason() -> None:
    reader = AGENT.model_copy(update={"tools": ("read_thread",)})
    assert "not among this agent's tools" in judge("send_message", agent=reader, to="x",
                                                    text="y").content
    assert judge("read_thread").content == "refused: read_thread takes thread_id (a string)"
    assert judge("read_thread", thread_id=3).verdict == "refused"
    assert judge("read_thread", thread_id="nope").content == "refused: no thread nope"


def test_risky_calls_are_held_and_never_run() -> None:
    out = judge("send_message", to="bob@example.com", text="hi")
    assert (out.verdict, out.sent) == ("held", None)
    assert out.decision is not None
    assert out.decision.outcome == "require_approval"
    assert "CHECKPOINT_ACTION" in (out.decision.checkpoint_reason or "")
    assert "waits for a person's approval" in out.content
    out = judge_and_run(RECORD, AGENT, ToolCall("c1", "http_call", {
        "method": "GET", "url": "https://api.example.com/v1/items"}), VIEW, (), endpoints=API)
    assert (out.verdict, out.request) == ("held", None)
    assert "waits for a person's approval" in out.content
    assert judge("send_message", to="", text="hi").verdict == "refused"
    assert judge("send_message", to="bob@example.com").verdict == "refused"


def test_an_approved_send_is_delivered_with_the_prompt_s_values_restored() -> None:
    masked = RECORD.model_copy(update={"encoded": EncodedPrompt(
        messages=(Message(role="user", content="tell [EMAIL_1] the plan"),), token_estimate=5,
        masks=(Mask(placeholder="[EMAIL_1]", kind="email", value="bob@example.com",
                    written="bob@example.com"),))})
    call = ToolCall("c1", "send_message", {"to": "[EMAIL_1]", "text": "Hi [EMAIL_1], ship it"})
    out = judge_and_run(masked, AGENT, call, VIEW, (), approved=True)
    assert out.verdict == "executed"
    assert out.sent == ("bob@example.com", "Hi bob@example.com, ship it")
    assert "bob@example.com" not in out.content  # the model keeps the placeholder it wrote
    deny_sends = Rule(rule_id="no-sends", identity_id="alice", sphere_id=None, effect="deny",
                      priority=1, match=RuleMatch(actions=frozenset({"SEND"})))
    late = judge_and_run(masked, AGENT, call, VIEW, (deny_sends,), approved=True)
    assert (late.verdict, late.sent) == ("denied", None), "a rule added meanwhile still denies"


def test_a_rejected_or_expired_call_is_answered_as_refused_by_a_person() -> None:
    call = ToolCall("c1", "send_message", {"to": "bob", "text": "hi"})
    state = CheckpointState(checkpoint_id="cp", reason="SEND", status="rejected", created_at=0,
                            expires_at=1, decided_by="u-boss", decision_reason="not today")
    out = decided(call, state)
    assert (out.verdict, out.is_error, out.sent) == ("rejected", True, None)
    assert out.content == ("refused by a person: send_message was rejected at its checkpoint: "
                           "not today; it was not made")
    out = decided(call, state.model_copy(update={"status": "expired", "decided_by": None}))
    assert out.verdict == "expired"
    assert "before its checkpoint expired" in out.content


def test_identity_rules_and_the_builtins_apply_to_tool_calls() -> None:
    deny_reads = Rule(rule_id="no-reads", identity_id="alice", sphere_id=None, effect="deny",
                      priority=1, match=RuleMatch(actions=frozenset({"READ"})))
    out = judge("read_thread", (deny_reads,), thread_id="t1")
    assert (out.verdict, out.crossing) == ("denied", None)
    assert "RULE no-reads" in out.content
    others = Rule(rule_id="bobs", identity_id="bob", sphere_id=None, effect="deny", priority=1,
                  match=RuleMatch(actions=frozenset({"READ"})))
    assert judge("read_thread", (others,), thread_id="t1").verdict == "executed"
    leaked = judge("append_thread", thread_id="t1", text="key AKIAIOSFODNN7EXAMPLE")
    assert leaked.verdict == "denied", leaked
    out = judge("append_thread", thread_id="t1", text="a note")
    assert (out.verdict, out.decision.outcome if out.decision else None) == ("executed", "allow")
    assert out.write == ("thread_message", "t1", "a note")


def test_an_allowed_write_is_handed_to_lane_f_with_the_prompt_s_placeholders_restored() -> None:
    record = RECORD.model_copy(update={"encoded": EncodedPrompt(
        messages=(Message(role="user", content="mail [EMAIL_1]"),), token_estimate=3,
        masks=(Mask(placeholder="[EMAIL_1]", kind="email", value="ann@example.com",
                    written="ann@example.com"),))})
    out = judge_and_run(record, AGENT, ToolCall("c1", "append_thread", {
        "thread_id": "t1", "text": "write to [EMAIL_1]"}), VIEW, ())
    assert out.verdict == "executed"
    assert out.write == ("thread_message", "t1", "write to ann@example.com")
    assert out.content == "appended to the thread t1"


def test_a_write_s_text_is_checked_before_governance() -> None:
    assert "takes text" in judge("append_thread", thread_id="t1", text="  ").content
    assert "at most" in judge("append_thread", thread_id="t1", text="x" * 16_001).content
    noter = AGENT.model_copy(update={"tools": ("append_meeting_note",)})
    out = judge("append_meeting_note", agent=noter, meeting_id="m1", text="minutes")
    assert out.write == ("meeting_note", "m1", "minutes")


def test_a_write_on_another_identity_s_thread_is_denied_as_a_crossing() -> None:
    out = judge("append_thread", thread_id="t2", text="hi")
    assert (out.verdict, out.crossing, out.write) == ("denied", ("thread", "t2", "bob"), None)


def test_a_rule_flagged_write_is_held_then_written_once_approved() -> None:
    hold = Rule(rule_id="ask", identity_id="alice", sphere_id=None, effect="require_approval",
                priority=1, match=RuleMatch(actions=frozenset({"WRITE"})))
    held = judge("append_thread", (hold,), thread_id="t1", text="a note")
    assert (held.verdict, held.write) == ("held", None)
    approved = judge_and_run(RECORD, AGENT, ToolCall("c1", "append_thread", {
        "thread_id": "t1", "text": "a note"}), VIEW, (hold,), approved=True)
    assert approved.verdict == "executed"
    assert approved.write == ("thread_message", "t1", "a note")
    assert "approval" in approved.content


def test_what_a_read_returns_is_held_to_the_context_rules() -> None:
    """A credential is withheld; identifiers are masked after the prompt's placeholders."""
    out = judge("read_thread", thread_id="t4")
    assert out.verdict == "refused"
    assert "credential" in out.content
    assert "AKIA" not in out.content
    masked_prompt = RECORD.model_copy(update={"encoded": EncodedPrompt(
        messages=(Message(role="user", content="pay [IBAN_1] please"),),
        token_estimate=5)})
    out = judge_and_run(masked_prompt, AGENT, ToolCall("c1", "read_thread", {"thread_id": "t3"}),
                        VIEW, ())
    assert out.verdict == "executed"
    assert "DE89" not in out.content
    assert "[IBAN_2]" in out.content


def http(args: Mapping[str, object], *, approved: bool = False, endpoints=API,
         record: PipelineRecord = RECORD, rules: tuple[Rule, ...] = ()):
    return judge_and_run(record, AGENT, ToolCall("c1", "http_call", args), VIEW, rules,
                         approved=approved, endpoints=endpoints)


def test_an_http_call_off_the_allow_lists_is_refused_before_anyone_is_asked() -> None:
    """Off the deployment's list, off the agent's hosts, or not a call it may be: refused with
    the reason, never held (no checkpoint, nobody asked), whatever a person would say."""
    off = http({"method": "GET", "url": "https://api.example.com/v1"}, endpoints=NO_LIST)
    assert (off.verdict, off.decision) == ("refused", None)
    assert "NOVA_AGENT_HTTP_ALLOW" in off.content, "the model (and the log) learn what enables it"
    refused = {
        "https://evil.example.com/v1": "not on this deployment's allow list",
        "https://api.example.com/v2": "not on this deployment's allow list",
        "https://other.example.com/x": "not on this agent's allow list",
        "http://api.example.com/v1": "http:// is only for this machine",
        "https://api.example.com@evil.example.com/v1": "a user or password",
        "https://api.example.com/v1/../admin": "dot segments",
    }
    for url, why in refused.items():
        for approved in (False, True):
            out = http({"method": "GET", "url": url}, approved=approved)
            assert (out.verdict, out.request) == ("refused", None), url
            assert why in out.content, (url, out.content)
    cases: list[tuple[dict[str, object], str]] = [
        ({"method": "DELETE", "url": "https://api.example.com/v1"}, "GET or POST"),
        ({"method": "GET"}, "takes url"),
        ({"method": "GET", "url": "https://api.example.com/v1", "body": {"a": 1}}, "no body"),
        ({"method": "POST", "url": "https://api.example.com/v1", "body": "not json"},
         "JSON object"),
        ({"method": "GET", "url": "https://api.example.com/v1", "headers": {}}, "only"),
    ]
    for args, why in cases:
        assert why in http(args).content, args


def test_credentials_in_an_http_call_are_denied_as_in_any_tool_call() -> None:
    for args in ({"method": "GET", "url": "https://api.example.com/v1?key=AKIAIOSFODNN7EXAMPLE"},
                 {"method": "POST", "url": "https://api.example.com/v1",
                  "body": {"token": "AKIAIOSFODNN7EXAMPLE"}}):
        out = http(args, approved=True)
        assert (out.verdict, out.request) == ("denied", None), args


def test_an_approved_http_call_is_handed_back_to_be_made_with_the_url_that_was_checked() -> None:
    masked = RECORD.model_copy(update={"encoded": EncodedPrompt(
        messages=(Message(role="user", content="tell [EMAIL_1] the plan"),), token_estimate=5,
        masks=(Mask(placeholder="[EMAIL_1]", kind="email", value="bob@example.com",
                    written="bob@example.com"),))})
    out = http({"method": "POST", "url": "HTTPS://API.Example.COM:443/v1/notify",
                "body": {"to": ["[EMAIL_1]"], "n": 2}}, approved=True, record=masked)
    assert out.verdict == "executed"
    assert out.request == HttpRequest("POST", parse_url("https://api.example.com/v1/notify"),
                                      b'{"to": ["bob@example.com"], "n": 2}')
    assert out.request.target.url == "https://api.example.com/v1/notify"
    deny_sends = Rule(rule_id="no-sends", identity_id="alice", sphere_id=None, effect="deny",
                      priority=1, match=RuleMatch(actions=frozenset({"SEND"})))
    late = http({"method": "GET", "url": "https://api.example.com/v1"}, approved=True,
                rules=(deny_sends,))
    assert (late.verdict, late.request) == ("denied", None), "a rule added meanwhile denies"


def test_what_the_model_is_told_of_a_response_is_held_to_the_rules_of_a_read() -> None:
    made = http({"method": "GET", "url": "https://api.example.com/v1"}, approved=True)
    ok = answered(RECORD, made, HttpAnswer(200, b'{"iban": "DE89 3704 0044 0532 0130 00"}',
                                           content_type="application/json"))
    assert (ok.verdict, ok.is_error) == ("executed", False)
    assert ok.content.startswith("HTTP 200, application/json\n")
    assert "DE89" not in ok.content
    assert "[IBAN_1]" in ok.content
    secret = answered(RECORD, made, HttpAnswer(200, b"key AKIAIOSFODNN7EXAMPLE"))
    assert (secret.is_error, secret.content) == (
        True, "HTTP 200: the response holds a credential, so nothing of it is sent")
    long = answered(RECORD, made, HttpAnswer(200, b"x" * 20_000, truncated=True))
    assert "the start of a longer body" in long.content
    assert len(long.content) <= 8000
    gone = answered(RECORD, made, HttpAnswer(None, error="no answer within 10 s"))
    assert (gone.verdict, gone.is_error) == ("executed", True), "made: it may have arrived"
    assert "no answer within 10 s" in gone.content
    assert answered(RECORD, made, HttpAnswer(404, b"")).content == "HTTP 404\n(empty body)"
