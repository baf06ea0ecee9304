"""Every JSON body the gateway accepts is strict: no coercion, no unknown field, no NaN.

Found by walking the app's routes rather than listing models, so a route added later with a
lax body fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

import gateway.routes
from gateway.bodies import StrictBody
from gateway.routes.dataspaces import DataspaceChange
from gateway.routes.identities import IdentityCreate
from gateway.routes.llm import BudgetBody, DecideBody
from gateway.routes.meetings import MeetingChange, MeetingCreate
from gateway.routes.requests import SubmitRequest
from gateway.routes.threads import ThreadChange


def body_models() -> list[tuple[str, type[BaseModel]]]:
    found = []
    for info in pkgutil.iter_modules(gateway.routes.__path__):
        module = importlib.import_module(f"gateway.routes.{info.name}")
        for route in module.router.routes:
            if isinstance(route, APIRoute) and route.body_field is not None:
                annotation = route.body_field.field_info.annotation
                for model in get_args(annotation) or (annotation,):  # DecisionBody | None
                    if isinstance(model, type) and issubclass(model, BaseModel):
                        found.append((f"{sorted(route.methods or ())[0]} {route.path}", model))
    return found


def test_the_app_has_body_routes() -> None:
    assert len(body_models()) >= 10


@pytest.mark.parametrize(("route", "model"), body_models(), ids=lambda v: str(v))
def test_every_body_model_is_strict(route: str, model: type[BaseModel]) -> None:
    assert issubclass(model, StrictBody), f"{route} takes {model.__name__}, a lax body"
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert issubclass(annotation, StrictBody), f"{route}: {field_name} is lax"


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "hi", "wait_ms": "5000"},
        {"prompt": "hi", "wait_ms": 5000.5},
        {"prompt": "hi", "wait_ms": True},
        {"prompt": "hi", "wait_ms": -1},
        {"prompt": "hi", "wait_ms": 10**30},
        {"prompt": 42},
        {"prompt": "hi", "dataspace_ids": "ds-1"},
        {"prompt": "hi", "dataspace_ids": [1]},
        {"prompt": "hi", "action": "pay"},
        {"prompt": "hi", "identity_id": "someone-else"},
    ],
)
def test_submit_refuses_coercions(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SubmitRequest.model_validate(body)


def test_a_whole_number_written_with_a_fraction_is_that_integer() -> None:
    """JSON Schema's integer is any number without a fractional part (gateway.bodies)."""
    assert SubmitRequest.model_validate({"prompt": "hi", "wait_ms": 5000.0}).wait_ms == 5000
    assert DecideBody.model_validate({"estimated_tokens": 10.0}).estimated_tokens == 10
    # ...a constrained optional integer too (Annotated[int, Field(ge=1)] | None).
    from gateway.routes.monitoring_changes import LimitsBody, ThresholdsBody
    assert LimitsBody.model_validate({"rpm": 1315907.0}).rpm == 1315907
    assert ThresholdsBody.model_validate({"min_calls": 891.0}).min_calls == 891
    with pytest.raises(ValidationError):
        LimitsBody.model_validate({"rpm": 5.5})


def test_submit_accepts_the_documented_shape() -> None:
    body = SubmitRequest.model_validate({"prompt": "hi", "wait_ms": 5000, "action": "READ",
                                         "dataspace_ids": ["ds-1"]})
    assert body.wait_ms == 5000


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (BudgetBody, {"name": "b", "soft_usd": float("nan"), "hard_usd": 1}),
        (BudgetBody, {"name": "b", "soft_usd": 1, "hard_usd": float("inf")}),
        (BudgetBody, {"name": "b", "soft_usd": "1", "hard_usd": 2}),
        (DecideBody, {"estimated_tokens": "10"}),
        (DecideBody, {"estimated_tokens": 10.5}),
        (IdentityCreate, {"user_id": "alice\x00", "display_name": "A"}),
        (IdentityCreate, {"user_id": "alice\n", "display_name": "A"}),
        (IdentityCreate, {"user_id": 7, "display_name": "A"}),
    ],
)
def test_other_bodies_refuse_coercions_and_non_finite_numbers(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_a_float_field_still_takes_an_integer() -> None:
    budget = BudgetBody.model_validate({"name": "b", "soft_usd": 1, "hard_usd": 2})
    assert (budget.soft_usd, budget.hard_usd) == (1.0, 2.0)


@pytest.mark.parametrize(
    ("model", "body", "fragment"),
    [
        (ThreadChange, {}, "at least one field"),
        (ThreadChange, {"title": None}, "title may not be null"),
        (ThreadChange, {"title": "x" * 201}, "at most 200"),
        (ThreadChange, {"owner": "b"}, "Extra inputs"),  # a patch never moves a thread
        (ThreadChange, {"id": "other"}, "Extra inputs"),
        (DataspaceChange, {"name": ""}, "at least 1"),
        (DataspaceChange, {"name": None}, "name may not be null"),
        (DataspaceChange, {"name": 5}, "valid string"),
        (MeetingChange, {"participants": None}, "participants may not be null"),
        (MeetingChange, {"participants": ["bob w"]}, "pattern"),
        (MeetingChange, {"participants": ["p"] * 101}, "at most 100"),
        (MeetingChange, {"starts_at": "2026-12-01T09:00:00"}, "timezone"),
        (MeetingChange, {"starts_at": 1_764_579_600}, "RFC 3339"),  # never a Unix time
        (MeetingChange, {"starts_at": "1764579600"}, "RFC 3339"),
        (MeetingChange, {"owner": "b"}, "Extra inputs"),
        (MeetingCreate, {}, "title"),
        (MeetingCreate, {"title": ""}, "at least 1"),
    ],
)
def test_a_change_names_fields_of_the_resource_and_never_null(
    model: type[BaseModel], body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        model.model_validate(body)


def test_a_date_time_keeps_its_offset() -> None:
    change = MeetingChange.model_validate({"starts_at": "2026-12-01T09:30:00+01:00"})
    assert change.starts_at is not None
    assert change.starts_at.isoformat() == "2026-12-01T09:30:00+01:00"


def test_a_change_keeps_what_it_does_not_name() -> None:
    change = ThreadChange.model_validate({"title": ""})  # an empty title is a title
    assert change.model_dump(exclude_unset=True) == {"title": ""}
