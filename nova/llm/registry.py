"""The provider registry: which providers and models exist, what they cost, where they live.

Kept as data (``providers.yaml``) so adding a model or changing a price is a reviewed one-line
diff, not a code change. Every entry is validated when loaded, and a bad entry fails start-up
with a :class:`~nova.errors.ConfigError` that names it, instead of failing the first request
routed to it. :func:`fake_registry` rewrites every base URL to Nova's fake provider server so
tests and the offline demo exercise the real SDKs without reaching the network.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nova.errors import ConfigError

ApiStyle = Literal["anthropic", "openai-compatible"]


class ModelSpec(BaseModel):
    """One model of a provider; prices in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    context_window: int = Field(gt=0)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class ProviderSpec(BaseModel):
    """One provider: how to reach it, its default limits and its models (default first in use)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    api: ApiStyle
    base_url: str = Field(pattern=r"^https?://\S+$")
    api_key_env: str | None = None
    rpm: int = Field(gt=0)
    tpm: int = Field(gt=0)
    priority: int = Field(ge=0)
    enabled: bool = True
    # OpenAI's own API and Azure's take ``max_completion_tokens``; most others ``max_tokens``.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    default_model: str
    models: tuple[ModelSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _models_consistent(self) -> ProviderSpec:
        ids = [m.id for m in self.models]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate model ids {duplicates}")
        if self.default_model not in ids:
            raise ValueError(f"default_model {self.default_model!r} is not one of its models")
        return self

    def model(self, model_id: str) -> ModelSpec:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        raise ConfigError(f"provider {self.name!r} has no model {model_id!r}")

    def has_model(self, model_id: str) -> bool:
        return any(m.id == model_id for m in self.models)

    def models_in_preference(self) -> tuple[ModelSpec, ...]:
        """The default model first, then the others in file order."""
        default = self.model(self.default_model)
        return (default, *(m for m in self.models if m.id != self.default_model))


@dataclass(frozen=True)
class Registry:
    """The validated set of providers, looked up by name."""

    providers: tuple[ProviderSpec, ...]
    _by_name: Mapping[str, ProviderSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, ProviderSpec] = {}
        for spec in self.providers:
            if spec.name in by_name:
                raise ConfigError(f"provider {spec.name!r} is declared twice")
            by_name[spec.name] = spec
        object.__setattr__(self, "_by_name", by_name)

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self.providers)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.providers)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def provider(self, name: str) -> ProviderSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(
                f"unknown LLM provider {name!r}; known: {sorted(self._by_name)}"
            ) from None

    def model(self, provider: str, model: str) -> ModelSpec:
        return self.provider(provider).model(model)


DEFAULT_REGISTRY_FILE = "providers.yaml"


def parse_registry(data: Any, *, source: str = "registry") -> Registry:
    """Validate already-parsed YAML/JSON data; the error names the offending entry."""
    if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
        raise ConfigError(f"{source}: expected a mapping with a 'providers' list")
    specs: list[ProviderSpec] = []
    for index, entry in enumerate(data["providers"]):
        label = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            specs.append(ProviderSpec.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(
                f"{source}: provider entry #{index} ({label!r}) is invalid: {problems}"
            ) from None
    return Registry(tuple(specs))


def load_registry(path: Path | None = None) -> Registry:
    """Load and validate the registry file (the packaged ``providers.yaml`` by default)."""
    if path is None:
        text = resources.files("nova.llm").joinpath(DEFAULT_REGISTRY_FILE).read_text("utf-8")
        source = DEFAULT_REGISTRY_FILE
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read LLM registry {path}: {exc}") from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_registry(data, source=source)


def fake_base_url(fake_url: str, spec: ProviderSpec) -> str:
    """Where the fake server answers for ``spec``: routed by path prefix per provider."""
    root = fake_url.rstrip("/")
    if spec.api == "anthropic":
        return f"{root}/{spec.name}"
    return f"{root}/{spec.name}/v1"


def fake_registry(fake_url: str, registry: Registry | None = None) -> Registry:
    """The registry with every base URL on the fake server and every provider enabled.

    Enabling all of them lets tests and the demo route to local-only providers too.
    """
    base = registry or load_registry()
    return Registry(
        tuple(
            spec.model_copy(update={"base_url": fake_base_url(fake_url, spec), "enabled": True})
            for spec in base
        )
    )
