"""The agent registry: ``/api/v2/agents``.

An agent is an owner's definition of a governed loop lane F runs (``nova.domain.agents``):
role, system prompt, tools, limits. Unlike a thread it may be shared: ``public`` agents are
listed to every identity, which may use and rate them; ``private`` ones stay in their owner's
boundary like any owned resource.

- ``POST /``: a writer creates one, owned by the token's identity (at most 100 per identity).
  A ``provider``/``model`` pin is checked against the router now (unknown, or a provider the
  ``nova`` role is locked away from, is a 422), not at the first run.
- ``GET /``: discovery: the caller's own agents and every public one, filtered by ``role``,
  ``tool`` and ``q`` (name or description), best rated first, each with its rating average
  and count. Only the owner sees an agent's system prompt and allow list.
- ``GET /{id}``: an own or public agent; another identity's private agent is a recorded
  crossing (403, no data, an IDENTITY_BOUNDARY fact), an unknown id a 404.
- ``PATCH /{id}``, ``DELETE /{id}``: the owner only, public or not (403 and a fact
  otherwise), audited before the change (``RESOURCE_CHANGE``) and soft, like the owned
  resources (``gateway.owned.change_owned``).
- ``POST /{id}/ratings``: a writer rates an agent it may see, 1 to 5 stars; one rating per
  identity (rating again replaces it: 201 the first time, 200 after). An owner does not rate
  its own agent (409): the registry's averages are other identities' judgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from gateway.bodies import StrictBody
from gateway.boundary import BoundaryGuard
from gateway.deps import GuardDep, PrincipalDep, ServicesDep, require_role
from gateway.owned import WRITER_ROLES, ChangeBody, changeable
from gateway.problems import problem
from nova.domain.agents import (
    MAX_STARS,
    MIN_STARS,
    AgentQuery,
    AgentRole,
    ToolName,
    Visibility,
    summarize,
)
from nova.entities.models import AgentEntity, AgentRatingEntity, ms_to_datetime
from nova.errors import ConfigError, ConflictError, ProviderError
from nova.ids import uuid7
from nova.llm.routing import RouteRequest
from nova.records import now_ms

MAX_AGENTS_PER_IDENTITY = 100
MAX_TOOLS = 16
MAX_HOSTS = 32

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
SystemPrompt = Annotated[str, StringConstraints(max_length=16_000)]
Host = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$",
    max_length=253)]
Tools = Annotated[list[ToolName], Field(max_length=MAX_TOOLS)]
Hosts = Annotated[list[Host], Field(max_length=MAX_HOSTS)]
Steps = Annotated[int, Field(ge=1, le=50)]
Cost = Annotated[float, Field(gt=0, le=100)]
Provider = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Model = Annotated[str, StringConstraints(min_length=1, max_length=128)]

router = APIRouter(prefix="/api/v2/agents", tags=["agents"])


class AgentCreate(StrictBody):
    name: Name
    description: Description = ""
    role: AgentRole
    system_prompt: SystemPrompt = ""
    tools: Tools = Field(default_factory=list)
    provider: Provider | None = None
    model: Model | None = None
    max_steps: Steps = Field(default=8, description="model calls a run may make")
    max_cost_usd: Cost = Field(default=1.0, description="what a run may spend, in USD")
    allowed_hosts: Hosts = Field(default_factory=list,
                                 description="hosts http_call may reach (exact names)")
    visibility: Visibility = "private"


class AgentChange(ChangeBody):
    name: Name | SkipJsonSchema[None] = changeable()
    description: Description | SkipJsonSchema[None] = changeable()
    role: AgentRole | SkipJsonSchema[None] = changeable()
    system_prompt: SystemPrompt | SkipJsonSchema[None] = changeable()
    tools: Tools | SkipJsonSchema[None] = changeable()
    provider: Provider | SkipJsonSchema[None] = changeable()
    model: Model | SkipJsonSchema[None] = changeable()
    max_steps: Steps | SkipJsonSchema[None] = changeable()
    max_cost_usd: Cost | SkipJsonSchema[None] = changeable()
    allowed_hosts: Hosts | SkipJsonSchema[None] = changeable()
    visibility: Visibility | SkipJsonSchema[None] = changeable()


class RatingCreate(StrictBody):
    stars: Annotated[int, Field(ge=MIN_STARS, le=MAX_STARS)]


class AgentOut(BaseModel):
    """An agent as the registry shows it; ``system_prompt`` and ``allowed_hosts`` are its
    owner's only (null for anyone else)."""

    id: str
    owner: str
    name: str
    description: str
    role: str
    tools: list[str]
    provider: str | None
    model: str | None
    max_steps: int
    max_cost_usd: float
    visibility: str
    system_prompt: str | None
    allowed_hosts: list[str] | None
    rating_average: float | None
    rating_count: int
    created_at: datetime

    @classmethod
    def of(cls, agent: AgentEntity, guard: BoundaryGuard, viewer: str) -> AgentOut:
        summary = summarize(r.stars for r in guard.store.ratings(agent.id))
        own = agent.owner == viewer
        return cls(
            id=agent.id, owner=agent.owner, name=agent.name, description=agent.description,
            role=agent.role, tools=list(agent.tools), provider=agent.provider,
            model=agent.model, max_steps=agent.max_steps, max_cost_usd=agent.max_cost_usd,
            visibility=agent.visibility,
            system_prompt=agent.system_prompt if own else None,
            allowed_hosts=list(agent.allowed_hosts) if own else None,
            rating_average=summary.average, rating_count=summary.count,
            created_at=ms_to_datetime(agent.created_at),
        )


class RatingOut(BaseModel):
    agent_id: str
    stars: int
    rating_average: float | None
    rating_count: int


AgentId = Annotated[str, Path(max_length=128)]


def _unroutable(services: Any, role: str, provider: str | None, model: str | None
                ) -> JSONResponse | None:
    """A 422 for a pin no router could serve (unknown, or the role is locked away from it)."""
    if provider is None and model is None:
        return None
    try:
        services.llm.router.explicit(RouteRequest(role=role, provider=provider, model=model))
    except ConfigError as exc:
        return problem(422, str(exc), slug="unknown-model", provider=provider, model=model)
    except ProviderError as exc:
        return problem(422, str(exc), slug="locked-role", role=role, provider=exc.provider)
    return None


@router.post("", status_code=201, response_model=AgentOut, name="create_agent",
             responses={401: {}, 403: {}, 409: {}})
async def create_agent(body: AgentCreate, principal: PrincipalDep, guard: GuardDep,
                       services: ServicesDep) -> Any:
    require_role(principal, *WRITER_ROLES)
    refused = _unroutable(services, body.role, body.provider, body.model)
    if refused is not None:
        return refused
    if guard.store.count_owned(AgentEntity.ENTITY_TYPE, principal.identity) >= (
        MAX_AGENTS_PER_IDENTITY
    ):
        raise ConflictError(f"an identity holds at most {MAX_AGENTS_PER_IDENTITY} agents")
    agent = AgentEntity(
        id=uuid7(), owner=principal.identity, name=body.name, description=body.description,
        role=body.role, system_prompt=body.system_prompt, tools=tuple(body.tools),
        provider=body.provider, model=body.model, max_steps=body.max_steps,
        max_cost_usd=body.max_cost_usd, allowed_hosts=tuple(body.allowed_hosts),
        visibility=body.visibility, created_at=now_ms(),
    )
    await guard.writer.put(agent)
    return AgentOut.of(agent, guard, principal.identity)


@router.get("", response_model=list[AgentOut], name="list_agents", responses={401: {}},
            description="Discovery: the caller's own agents and every public one matching "
                        "each filter given, best rated first (then most rated, then newest).")
async def list_agents(
    principal: PrincipalDep,
    guard: GuardDep,
    role: Annotated[AgentRole | None, Query()] = None,
    tool: Annotated[ToolName | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200,
                                   description="text in the name or description")] = None,
    mine: Annotated[bool, Query(description="only the caller's own agents")] = False,
) -> list[AgentOut]:
    query = AgentQuery(role=role, tool=tool, text=q)
    found = [
        AgentOut.of(a, guard, principal.identity)
        for a in guard.store.agents_visible_to(principal.identity)
        if (not mine or a.owner == principal.identity)
        and query.matches(a.role, a.tools, a.name, a.description)
    ]
    return sorted(found, key=lambda a: (-(a.rating_average or 0), -a.rating_count,
                                        -a.created_at.timestamp(), a.id))


@router.get("/{agent_id}", response_model=AgentOut, name="get_agent",
            responses={401: {}, 403: {}, 404: {}})
async def get_agent(agent_id: AgentId, principal: PrincipalDep, guard: GuardDep) -> AgentOut:
    agent = await guard.usable_agent(principal, agent_id)
    return AgentOut.of(agent, guard, principal.identity)


@router.patch("/{agent_id}", response_model=AgentOut, name="update_agent",
              responses={401: {}, 403: {}, 404: {}, 503: {}},
              description="The owner changes the fields the body names; the agent as it is now.")
async def update_agent(agent_id: AgentId, body: AgentChange, principal: PrincipalDep,
                       guard: GuardDep, services: ServicesDep) -> Any:
    agent = await guard.owned(principal, AgentEntity, agent_id, operation="update")
    require_role(principal, *WRITER_ROLES)
    changes = body.model_dump(exclude_unset=True)
    changed = AgentEntity.model_validate({**agent.model_dump(), **changes})
    refused = _unroutable(services, changed.role, changed.provider, changed.model)
    if refused is not None:
        return refused
    if changed != agent:
        fields = sorted(k for k in changes if getattr(agent, k) != getattr(changed, k))
        await guard.owner_change(principal, AgentEntity.ENTITY_TYPE, agent.id,
                                 operation="update", detail={"fields": fields})
        await guard.writer.update(changed)
    return AgentOut.of(changed, guard, principal.identity)


@router.delete("/{agent_id}", status_code=204, response_class=Response, name="delete_agent",
               responses={401: {}, 403: {}, 404: {}, 503: {}},
               description="The owner deletes the agent (soft, audited); its ratings go with "
                           "it.")
async def delete_agent(agent_id: AgentId, principal: PrincipalDep, guard: GuardDep) -> Response:
    agent = await guard.owned(principal, AgentEntity, agent_id, operation="delete")
    require_role(principal, *WRITER_ROLES)
    ratings = len(guard.store.ratings(agent.id))
    await guard.owner_change(principal, AgentEntity.ENTITY_TYPE, agent.id, operation="delete",
                             detail={"ratings": ratings})
    await guard.writer.delete(agent, live=True)
    return Response(status_code=204)


@router.post("/{agent_id}/ratings", status_code=201, response_model=RatingOut,
             name="rate_agent", responses={200: {"model": RatingOut}, 401: {}, 403: {},
                                           404: {}, 409: {}},
             description="Rate an agent the caller may see (own agents excepted): 201 for the "
                         "identity's first rating of it, 200 when it replaces the earlier one.")
async def rate_agent(agent_id: AgentId, body: RatingCreate, principal: PrincipalDep,
                     guard: GuardDep, response: Response) -> RatingOut:
    agent = await guard.usable_agent(principal, agent_id, operation="rate")
    require_role(principal, *WRITER_ROLES)
    if agent.owner == principal.identity:
        raise ConflictError("an agent's owner does not rate it")
    rating = AgentRatingEntity(agent_id=agent.id, rater=principal.identity, stars=body.stars,
                               created_at=now_ms())
    replaced = guard.store.get(AgentRatingEntity, rating.entity_id) is not None
    await guard.writer.put(rating)
    if replaced:
        response.status_code = 200
    summary = summarize(r.stars for r in guard.store.ratings(agent.id))
    return RatingOut(agent_id=agent.id, stars=body.stars, rating_average=summary.average,
                     rating_count=summary.count)
