"""Lane D, governance: allow, deny, or require a person's approval — before any model runs.

Combines built-in checks (injection, credentials, risky actions, the context's planted
instructions and orders, the identity boundary) with the identity's own rules; identifiers are
already masked by lane C and only cited here. When the deployment turns it on, a classifier
model's second opinion on the masked prompt may first raise lane A's action
(:mod:`streams.second_opinion`). The identity boundary is enforced here again,
independently of the gateway, so a request that reaches Kafka with foreign references is
stopped too. The decision becomes an audit fact whatever it is.
"""

from __future__ import annotations

from nova.convert import governance_record
from nova.domain.amounts import stated_amount
from nova.domain.governance import GovernanceFacts, Rule, decide
from nova.entities.view import EntityView
from nova.records import PipelineRecord
from streams.context import LaneContext
from streams.runtime import LaneOutcome
from streams.second_opinion import second_opinion


class GovernanceLane:
    code = "D"
    source = "encoded"
    output = "governed"

    async def process(self, record: PipelineRecord, ctx: LaneContext) -> LaneOutcome:
        if record.finished:
            return LaneOutcome(record, status="skipped")
        entities: EntityView = ctx.services.entities
        owners: dict[str, str] = {}
        # Always the full barrier: a rule created just before this request must apply.
        await entities.sync(ctx.witness())
        refs = [("thread", record.thread_id)] if record.thread_id else []
        refs += [("dataspace", d) for d in record.dataspace_ids]
        refs += [("meeting", record.meeting_id)] if record.meeting_id else []
        for kind, rid in refs:
            owners[f"{kind}:{rid}"] = entities.owner(kind, rid) or "<unknown>"
        rules: tuple[Rule, ...] = tuple(entities.rules_for(record.identity_id))
        assert record.intent is not None, "lane A always sets the intent"
        if ctx.settings.intent_second_opinion:  # a model may raise lane A's action, never lower
            raised, calls = await second_opinion(
                record, ctx.services.execution, ctx.settings.intent_second_opinion_timeout_s
            )
            for call in calls:
                await ctx.emit(call)
            record = record.model_copy(update={"intent": raised})
        intent = record.intent
        assert intent is not None
        estimate = record.encoded.token_estimate if record.encoded else 0
        context_text = record.context.text if record.context else ""
        stated = [record.prompt, context_text] if intent.defers_to_context else [record.prompt]
        facts = GovernanceFacts(
            identity_id=record.identity_id,
            sphere_id=record.sphere_id,
            action=intent.action,
            task_type=intent.task_type,
            roles=frozenset(record.roles),
            provider=record.provider_hint or ctx.primary_provider(record, estimate),
            cost_estimate_usd=ctx.estimate_cost(record, estimate),
            prompt=record.prompt,
            resource_owners=owners,
            context_text=context_text,
            defers_to_context=intent.defers_to_context,
            masked_kinds=tuple(m.kind for m in record.encoded.masks) if record.encoded else (),
            amount=stated_amount(stated),
        )
        decision = decide(facts, rules)
        gov = governance_record(decision)
        opinion = tuple(r for r in intent.reasons if r.startswith("second opinion"))
        if opinion:  # the approver and the audit read why a model raised (or did not) the action
            gov = gov.model_copy(update={"reasons": (*gov.reasons, *opinion)})
        update: dict[str, object] = {"governance": gov}
        status = "ok"
        if decision.outcome == "deny":
            update.update(status="denied", error="; ".join(decision.reasons) or "denied")
            status = "denied"
        # The decision travels in the record; lane G (or lane E, holding it) chains its audit
        # fact, so a request costs no extra record on the facts topic (issue 9).
        return LaneOutcome(record.model_copy(update=update), status=status)
