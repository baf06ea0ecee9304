"""The provider registry is data validated at load: bad entries fail start-up by name."""

from pathlib import Path

import pytest
import yaml

from nova.cli.stack import has_real_providers
from nova.errors import ConfigError
from nova.llm.registry import (
    base_url_variable,
    deployment_registry,
    fake_registry,
    load_registry,
    parse_registry,
)
from nova.settings import load_settings

EXPECTED_PROVIDERS = {
    "anthropic", "openai", "google", "mistral", "cohere", "meta", "groq", "together",
    "fireworks", "deepseek", "xai", "perplexity", "openrouter", "azure-openai", "ollama",
    "vllm", "lmstudio", "openai-compatible",
}  # fmt: skip


def good_entry(**changes):
    entry = {
        "name": "acme",
        "api": "openai-compatible",
        "base_url": "https://api.acme.test/v1",
        "api_key_env": "ACME_API_KEY",
        "rpm": 100,
        "tpm": 10000,
        "priority": 5,
        "default_model": "acme-1",
        "models": [{"id": "acme-1", "context_window": 8000, "input": 1.0, "output": 2.0}],
    }
    entry.update(changes)
    return entry


def test_packaged_registry_has_the_eighteen_providers():
    registry = load_registry()
    assert set(registry.names) == EXPECTED_PROVIDERS
    assert len(registry) == 18


def test_anthropic_is_the_only_anthropic_style_provider_and_serves_claude():
    registry = load_registry()
    styles = {p.name: p.api for p in registry}
    assert [n for n, s in styles.items() if s == "anthropic"] == ["anthropic"]
    claude = registry.provider("anthropic")
    assert {"claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"} <= {
        m.id for m in claude.models
    }
    assert claude.api_key_env == "ANTHROPIC_API_KEY"


def test_every_model_has_a_window_and_prices():
    for provider in load_registry():
        assert provider.rpm > 0
        assert provider.tpm > 0
        for model in provider.models:
            assert model.context_window > 0
            assert model.input >= 0
            assert model.output >= 0
            if model.cached_input is not None:
                assert model.cached_input <= model.input, (provider.name, model.id)


def test_default_model_comes_first_in_preference():
    openai = load_registry().provider("openai")
    assert openai.models_in_preference()[0].id == openai.default_model


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (good_entry(default_model="nope"), "default_model 'nope'"),
        (good_entry(api="grpc"), "api"),
        (good_entry(rpm=0), "rpm"),
        (good_entry(base_url="ftp://x"), "base_url"),
        (good_entry(models=[]), "models"),
        (
            good_entry(models=[{"id": "acme-1", "context_window": 8000, "input": -1, "output": 2}]),
            "models.0.input",
        ),
        (
            good_entry(
                models=[
                    {"id": "acme-1", "context_window": 8000, "input": 1, "output": 2},
                    {"id": "acme-1", "context_window": 9000, "input": 1, "output": 2},
                ]
            ),
            "duplicate model ids",
        ),
        (good_entry(surprise=True), "surprise"),
        (
            good_entry(models=[
                {"id": "acme-1", "context_window": 8000, "input": 1, "output": 2},
                {"id": "acme-2", "context_window": 8000, "input": 1, "output": 2,
                 "aliases": ["acme-1"]},
            ]),
            "aliases ['acme-1'] name more than one model",
        ),
        (
            good_entry(models=[
                {"id": "acme-1", "context_window": 8000, "input": 1, "output": 2,
                 "aliases": ["old"]},
                {"id": "acme-2", "context_window": 8000, "input": 1, "output": 2,
                 "aliases": ["old"]},
            ]),
            "aliases ['old'] name more than one model",
        ),
    ],
)
def test_a_bad_entry_fails_with_its_name_and_position(entry, fragment):
    data = {"providers": [good_entry(name="fine"), entry]}
    with pytest.raises(ConfigError) as caught:
        parse_registry(data, source="test.yaml")
    message = str(caught.value)
    assert "test.yaml: provider entry #1 ('acme')" in message
    assert fragment in message


def test_a_provider_declared_twice_is_refused():
    with pytest.raises(ConfigError, match="declared twice"):
        parse_registry({"providers": [good_entry(), good_entry()]})


@pytest.mark.parametrize("data", [None, [], {"providers": "x"}, {"other": []}])
def test_a_file_without_a_providers_list_is_refused(data):
    with pytest.raises(ConfigError, match="'providers' list"):
        parse_registry(data)


def test_load_registry_reports_unreadable_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_registry(broken)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"providers": [good_entry()]}))
    assert load_registry(ok).provider("acme").model("acme-1").output == 2.0


def test_unknown_provider_and_model_lookups_raise_config_errors():
    registry = load_registry()
    with pytest.raises(ConfigError, match="unknown LLM provider 'nope'"):
        registry.provider("nope")
    with pytest.raises(ConfigError, match="has no model 'gpt-0'"):
        registry.model("openai", "gpt-0")


def test_fake_registry_routes_every_provider_by_path_prefix_and_enables_all():
    registry = fake_registry("http://127.0.0.1:9999/")
    assert registry.provider("anthropic").base_url == "http://127.0.0.1:9999/anthropic"
    assert registry.provider("groq").base_url == "http://127.0.0.1:9999/groq/v1"
    assert registry.provider("azure-openai").base_url == "http://127.0.0.1:9999/azure-openai/v1"
    assert all(p.enabled for p in registry)
    assert not load_registry().provider("ollama").enabled


# ---- a deployment's registry: NOVA_PROVIDERS_FILE and <PROVIDER>_BASE_URL -------------------


def test_a_providers_file_replaces_the_packaged_registry(tmp_path: Path):
    own = tmp_path / "providers.yaml"
    own.write_text(yaml.safe_dump({"providers": [good_entry()]}))
    registry = deployment_registry(load_settings(providers_file=own), {})
    assert registry.names == ("acme",)


def test_an_invalid_providers_file_names_the_line_of_the_fault(tmp_path: Path):
    own = tmp_path / "providers.yaml"
    entry = good_entry(models=[{"id": "acme-1", "context_window": 8000, "input": -1.0,
                                "output": 2.0}])
    text = yaml.safe_dump({"providers": [good_entry(name="fine"), entry]}, sort_keys=False)
    own.write_text(text)
    fault = next(n for n, line in enumerate(text.splitlines(), 1) if "input: -1.0" in line)
    with pytest.raises(ConfigError) as caught:
        deployment_registry(load_settings(providers_file=own), {})
    assert f"{own}, line {fault}: provider entry #1 ('acme')" in str(caught.value)
    assert "models.0.input" in str(caught.value)


def test_a_providers_file_that_is_not_yaml_names_its_line(tmp_path: Path):
    own = tmp_path / "providers.yaml"
    own.write_text("providers:\n  - name: acme\n    api: [openai\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_registry(own)


def test_a_provider_declared_twice_in_a_file_names_the_file(tmp_path: Path):
    own = tmp_path / "providers.yaml"
    own.write_text(yaml.safe_dump({"providers": [good_entry(), good_entry()]}))
    with pytest.raises(ConfigError, match=f"{own}: provider 'acme' is declared twice"):
        load_registry(own)


def test_a_base_url_from_the_environment_moves_one_provider():
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:4000/v1/", "ANTHROPIC_BASE_URL": "https://p.test"}
    registry = deployment_registry(load_settings(), env)
    assert registry.provider("openai").base_url == "http://127.0.0.1:4000/v1"
    assert registry.provider("anthropic").base_url == "https://p.test"
    assert registry.provider("groq").base_url == load_registry().provider("groq").base_url


def test_a_base_url_enables_a_local_server_the_file_leaves_disabled():
    env = {"OLLAMA_BASE_URL": "http://10.0.0.5:11434/v1", "AZURE_OPENAI_BASE_URL": "https://a.test"}
    registry = deployment_registry(load_settings(), env)
    assert registry.provider("ollama").enabled
    assert registry.provider("ollama").base_url == "http://10.0.0.5:11434/v1"
    assert registry.provider("azure-openai").enabled
    assert not registry.provider("vllm").enabled
    assert base_url_variable("openai-compatible") == "OPENAI_COMPATIBLE_BASE_URL"


@pytest.mark.parametrize("url", ["localhost:4000", "ftp://x.test", "http://a b"])
def test_a_base_url_that_is_not_a_url_is_refused_by_its_variable(url):
    with pytest.raises(ConfigError, match=r"OPENAI_BASE_URL=.* is not an http"):
        deployment_registry(load_settings(), {"OPENAI_BASE_URL": url})


def test_the_fake_server_wins_over_base_urls():
    settings = load_settings(llm_fake_url="http://127.0.0.1:9999")
    registry = deployment_registry(settings, {"OPENAI_BASE_URL": "https://proxy.test/v1"})
    assert registry.provider("openai").base_url == "http://127.0.0.1:9999/openai/v1"


def test_a_base_url_alone_is_enough_to_call_real_providers():
    settings = load_settings()
    assert not has_real_providers(settings, {})
    assert has_real_providers(settings, {"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert has_real_providers(settings, {"OPENAI_API_KEY": "sk-x"})


DOCS = Path(__file__).resolve().parents[3] / "docs" / "llm.md"


def test_the_documented_model_names_table_is_the_packaged_registrys():
    """docs/llm.md's "Model names" table lists every alias of providers.yaml, and no other."""
    text = DOCS.read_text("utf-8")
    table = text[text.index("| Served by | Names a request may send for it |"):]
    table = table[: table.index("\n\n")]
    documented = {}
    for row in table.splitlines()[2:]:
        served, names = (cell.strip() for cell in row.strip("|").split("|"))
        documented[served.strip("`")] = tuple(n.strip().strip("`") for n in names.split(","))
    registry = {f"{p.name}/{m.id}": m.aliases for p in load_registry() for m in p.models
                if m.aliases}
    assert documented == registry


def test_an_alias_resolves_to_its_model_within_its_provider():
    anthropic = load_registry().provider("anthropic")
    assert anthropic.resolve("claude-3-haiku-20240307") == "claude-haiku-4-5"
    assert anthropic.resolve("claude-haiku-4-5") == "claude-haiku-4-5"
    assert anthropic.resolve("gpt-4o") is None
