"""The caller identity's own governance rules: ``/api/v2/governance/rules``.

Lane D applies an identity's rules on top of the built-in checks (see
``nova.domain.governance``). Rules are validated here with the same domain code lane D uses,
so a rule the lane would refuse (unknown action or role, a pattern RE2 cannot match in linear
time: a back-reference, a lookaround) is a 422 at the API instead of a rule that silently never
fires. So is a rule whose text patterns would take the identity's patterns over their budget of
RE2 instructions (``nova.domain.patterns``), which bounds what its rules cost on each request.

A rule belongs to the identity of the token that created it; the body cannot name another
identity (unknown fields are refused). Reading, replacing or deleting another identity's rule
is a boundary crossing (403 + fact) and changes nothing.

Four eyes: a ``require_approval`` rule may set ``approvals_required`` (2 to 5 distinct
approvers, never the submitter) and ``match.amount_above`` (the amount the prompt states must
be above it; a prompt stating none counts as above), e.g. two approvers for PAYMENT and
TRANSFER above 1,000::

    {"effect": "require_approval", "approvals_required": 2,
     "match": {"actions": ["PAYMENT", "TRANSFER"], "amount_above": 1000}}

Rules are governance: a ``require_approval`` rule is what sends a request to a checkpoint, so
creating, replacing or deleting one needs the ``approver`` role (or ``admin``). Members may read
their identity's rules but not change them, or a member could delete the rule that holds their
own request for approval. Replace and delete check ownership before the role, so a crossing
into another identity's rule is recorded whatever roles the caller holds.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StringConstraints, model_validator

from gateway.bodies import StrictBody
from gateway.boundary import BoundaryGuard
from gateway.deps import GuardDep, PrincipalDep, require_role
from nova.domain.checkpoints import MAX_APPROVALS_REQUIRED
from nova.domain.governance import MAX_PATTERNS, Effect, Rule, RuleMatch
from nova.domain.intent import Action, TaskType
from nova.domain.patterns import MAX_PATTERN_LENGTH, check_identity_budget
from nova.domain.roles import Role
from nova.entities.models import RuleEntity
from nova.errors import ConflictError
from nova.ids import uuid7

router = APIRouter(prefix="/api/v2/governance/rules", tags=["governance"])

MAX_RULES_PER_IDENTITY: Final = 100
RULE_WRITER_ROLES: Final = ("approver",)  # admin always may (require_role)
Provider = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH)]


class MatchBody(StrictBody):
    """Conditions; unset means "any". All set conditions must hold for the rule to fire."""

    # An empty list would match nothing: the domain refuses it, and so does the schema.
    actions: list[Action] | None = Field(default=None, min_length=1, max_length=16)
    task_types: list[TaskType] | None = Field(default=None, min_length=1, max_length=16)
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=16)
    providers: list[Provider] | None = Field(default=None, min_length=1, max_length=32)
    min_cost_usd: float | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0, description="at least min_cost_usd")
    text_patterns: list[Pattern] = Field(
        default_factory=list, max_length=MAX_PATTERNS,
        description="RE2 syntax without back-references or lookarounds; an identity's patterns "
        "share a budget of RE2 instructions",
    )
    amount_above: float | None = Field(
        default=None, ge=0, description="fire only when the stated amount is above this"
    )

    def to_match(self) -> RuleMatch:
        """The domain conditions; raises ``InvalidRuleError`` (a ``ValueError``)."""
        return RuleMatch(
            actions=None if self.actions is None else frozenset(self.actions),
            task_types=None if self.task_types is None else frozenset(self.task_types),
            roles=None if self.roles is None else frozenset(self.roles),
            providers=None if self.providers is None else frozenset(self.providers),
            min_cost_usd=self.min_cost_usd,
            max_cost_usd=self.max_cost_usd,
            text_patterns=tuple(self.text_patterns),
            amount_above=self.amount_above,
        )


class RuleBody(StrictBody):
    effect: Effect
    priority: int = Field(default=0, ge=-1000, le=1000)
    approvals_required: int = Field(
        default=1,
        ge=1,
        le=MAX_APPROVALS_REQUIRED,
        description="distinct approvers (never the submitter) a checkpoint it causes needs",
    )
    sphere_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")] | None
    ) = None
    match: MatchBody = Field(default_factory=MatchBody)

    @model_validator(mode="after")
    def _domain_valid(self) -> RuleBody:
        self.rule("probe", "probe")  # InvalidRuleError is a ValueError: pydantic reports a 422
        return self

    def rule(self, rule_id: str, identity_id: str) -> Rule:
        return Rule(
            rule_id=rule_id,
            identity_id=identity_id,
            sphere_id=self.sphere_id,
            effect=self.effect,
            priority=self.priority,
            match=self.match.to_match(),
            approvals_required=self.approvals_required,
        )

    def entity(self, rule_id: str, identity_id: str) -> RuleEntity:
        return RuleEntity.from_rule(self.rule(rule_id, identity_id))


class MatchOut(BaseModel):
    actions: list[str] | None
    task_types: list[str] | None
    roles: list[str] | None
    providers: list[str] | None
    min_cost_usd: float | None
    max_cost_usd: float | None
    text_patterns: list[str]
    amount_above: float | None


class RuleOut(BaseModel):
    rule_id: str
    identity_id: str
    sphere_id: str | None
    effect: str
    priority: int
    approvals_required: int
    match: MatchOut
    version: int

    @classmethod
    def of(cls, r: RuleEntity, version: int) -> RuleOut:
        def opt(values: tuple[str, ...] | None) -> list[str] | None:
            return None if values is None else list(values)

        return cls(
            rule_id=r.rule_id,
            identity_id=r.identity_id,
            sphere_id=r.sphere_id,
            effect=r.effect,
            priority=r.priority,
            approvals_required=r.approvals_required,
            version=version,
            match=MatchOut(
                actions=opt(r.actions),
                task_types=opt(r.task_types),
                roles=opt(r.roles),
                providers=opt(r.providers),
                min_cost_usd=r.min_cost_usd,
                max_cost_usd=r.max_cost_usd,
                text_patterns=list(r.text_patterns),
                amount_above=r.amount_above,
            ),
        )


def check_pattern_budget(guard: BoundaryGuard, rule: RuleEntity) -> None:
    """422 when the identity's text patterns, this rule's with its other rules', would cost
    more than the per-identity budget (``nova.domain.patterns``)."""
    kept = (
        p
        for other in guard.store.owned(RuleEntity, rule.identity_id)
        if other.rule_id != rule.rule_id
        for p in other.text_patterns
    )
    check_identity_budget(kept, rule.text_patterns)


@router.post(
    "", status_code=201, response_model=RuleOut, responses={401: {}, 403: {}, 409: {}, 422: {}}
)
async def create_rule(body: RuleBody, principal: PrincipalDep, guard: GuardDep) -> RuleOut:
    require_role(principal, *RULE_WRITER_ROLES)
    if guard.store.count_owned(RuleEntity.ENTITY_TYPE, principal.identity) >= (
        MAX_RULES_PER_IDENTITY
    ):
        raise ConflictError(f"an identity holds at most {MAX_RULES_PER_IDENTITY} rules")
    rule = body.entity(uuid7(), principal.identity)
    check_pattern_budget(guard, rule)
    stored = await guard.writer.put(rule)
    return RuleOut.of(rule, stored.version)


@router.get("", response_model=list[RuleOut], responses={401: {}, 403: {}})
async def list_rules(
    principal: PrincipalDep,
    guard: GuardDep,
    identity: Annotated[str | None, Query(description="must be the caller's identity")] = None,
) -> list[RuleOut]:
    """The caller identity's rules, highest priority first."""
    owner = await guard.listing(principal, "rule", identity)
    rules = sorted(guard.store.owned(RuleEntity, owner), key=lambda r: (-r.priority, r.rule_id))
    store = guard.store
    return [RuleOut.of(r, store.version(RuleEntity.ENTITY_TYPE, r.rule_id)) for r in rules]


@router.get("/{rule_id}", response_model=RuleOut, responses={401: {}, 403: {}, 404: {}})
async def get_rule(rule_id: str, principal: PrincipalDep, guard: GuardDep) -> RuleOut:
    rule = await guard.owned(principal, RuleEntity, rule_id)
    return RuleOut.of(rule, guard.store.version(RuleEntity.ENTITY_TYPE, rule_id))


@router.put("/{rule_id}", response_model=RuleOut, responses={401: {}, 403: {}, 404: {}, 422: {}})
async def replace_rule(
    rule_id: str, body: RuleBody, principal: PrincipalDep, guard: GuardDep
) -> RuleOut:
    """Replace the rule's effect, priority, sphere and conditions (the id and owner stay)."""
    current = await guard.owned(principal, RuleEntity, rule_id, operation="replace")
    require_role(principal, *RULE_WRITER_ROLES)
    rule = body.entity(current.rule_id, current.identity_id)
    check_pattern_budget(guard, rule)
    stored = await guard.writer.put(rule)
    return RuleOut.of(rule, stored.version)


@router.delete("/{rule_id}", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def delete_rule(rule_id: str, principal: PrincipalDep, guard: GuardDep) -> Response:
    current = await guard.owned(principal, RuleEntity, rule_id, operation="delete")
    require_role(principal, *RULE_WRITER_ROLES)
    await guard.writer.delete(current)
    return Response(status_code=204)
