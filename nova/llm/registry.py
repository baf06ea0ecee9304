"""The provider registry: which providers and models exist, what they cost, where they live.

Kept as data (``providers.yaml``) so adding a model or changing a price is a reviewed one-line
diff, not a code change. Every entry is validated when loaded, and a bad entry fails start-up
with a :class:`~nova.errors.ConfigError` that names it (and its line, for a file), instead of
failing the first request routed to it. :func:`fake_registry` rewrites every base URL to Nova's
fake provider server so tests and the offline demo exercise the real SDKs without reaching the
network.

A deployment changes the registry without editing the package (:func:`deployment_registry`):
``NOVA_PROVIDERS_FILE`` replaces the whole file (same format), and ``<PROVIDER>_BASE_URL``
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``AZURE_OPENAI_BASE_URL``…: the provider's name in
capitals, dashes as underscores, as the official SDKs name theirs) moves one provider to a proxy
or a self-hosted server. Setting the base URL of a provider the file leaves disabled (the local
servers) enables it: pointing Nova at a server says it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nova.errors import ConfigError
from nova.settings import Settings

ApiStyle = Literal["anthropic", "openai-compatible"]


class ModelSpec(BaseModel):
    """One model of a provider; prices in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    context_window: int = Field(gt=0)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    # Older names this model answers to (the seed's ``claude-3-haiku``, ``gpt-4o``...): a
    # request naming one is served by this model, and its answer says so (docs/llm.md).
    aliases: tuple[str, ...] = ()

    @property
    def blended_price(self) -> float:
        """Input plus output list price per million tokens: what cheaper and premium mean."""
        return self.input + self.output


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
        names = [a for m in self.models for a in m.aliases]
        clashes = sorted({a for a in names if names.count(a) > 1 or a in ids})
        if clashes:
            raise ValueError(f"aliases {clashes} name more than one model")
        return self

    def model(self, model_id: str) -> ModelSpec:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        raise ConfigError(f"provider {self.name!r} has no model {model_id!r}")

    def has_model(self, model_id: str) -> bool:
        return any(m.id == model_id for m in self.models)

    def resolve(self, name: str) -> str | None:
        """The id of the model ``name`` is (its id) or stands for (one of its aliases)."""
        for spec in self.models:
            if spec.id == name or name in spec.aliases:
                return spec.id
        return None

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


def parse_registry(
    data: Any, *, source: str = "registry", lines: _Lines | None = None
) -> Registry:
    """Validate already-parsed YAML/JSON data; the error names the offending entry (and its
    line, when ``lines`` maps the data's positions to the file's lines)."""
    if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
        raise ConfigError(f"{source}: expected a mapping with a 'providers' list")
    specs: list[ProviderSpec] = []
    for index, entry in enumerate(data["providers"]):
        label = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            specs.append(ProviderSpec.model_validate(entry))
        except ValidationError as exc:
            errors = exc.errors()
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in errors
            )
            where = source
            if lines is not None:
                line = lines.line(("providers", index, *errors[0]["loc"]))
                where = f"{source}, line {line}"
            raise ConfigError(
                f"{where}: provider entry #{index} ({label!r}) is invalid: {problems}"
            ) from None
    try:
        return Registry(tuple(specs))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


class _Lines:
    """Where each value of a YAML document starts (1-based lines), by its path of keys/indexes."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, path: tuple[Any, ...]) -> int:
        """The line of the deepest node of ``path`` that exists (the entry's, at worst)."""
        node = self.root
        found = node.start_mark.line + 1 if node is not None else 1
        for step in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == step),
                             None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                child = node.value[step] if 0 <= step < len(node.value) else None
            if child is None:
                break
            node, found = child, child.start_mark.line + 1
        return found


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
        lines = _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    return parse_registry(data, source=source, lines=lines)


_URL = re.compile(r"^https?://\S+$")


def base_url_variable(provider: str) -> str:
    """The environment variable that moves ``provider`` elsewhere (``AZURE_OPENAI_BASE_URL``)."""
    return f"{provider.upper().replace('-', '_')}_BASE_URL"


def with_base_urls(registry: Registry, env: Mapping[str, str]) -> Registry:
    """``registry`` with each provider whose ``<PROVIDER>_BASE_URL`` is set moved (and enabled)."""
    specs = []
    for spec in registry:
        variable = base_url_variable(spec.name)
        url = env.get(variable, "").strip()
        if not url:
            specs.append(spec)
            continue
        if not _URL.match(url):
            raise ConfigError(f"{variable}={url!r} is not an http(s) URL: set it to the "
                              "server's base URL, e.g. http://127.0.0.1:4000/v1, or unset it")
        specs.append(spec.model_copy(update={"base_url": url.rstrip("/"), "enabled": True}))
    return Registry(tuple(specs))


def deployment_registry(settings: Settings, env: Mapping[str, str]) -> Registry:
    """The registry this deployment routes over: ``NOVA_PROVIDERS_FILE`` (else the packaged
    file), base URLs from ``env``, and every provider on the fake server when
    ``NOVA_LLM_FAKE_URL`` is set (which wins: tests and the demo never leave the machine)."""
    registry = with_base_urls(load_registry(settings.providers_file), env)
    if settings.llm_fake_url:
        return fake_registry(settings.llm_fake_url, registry)
    return registry


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
