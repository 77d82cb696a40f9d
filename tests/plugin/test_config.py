"""OTEL_TOKENS_* settings: parsed from the environment, arguments win, bad values named."""

from __future__ import annotations

import pytest

from otel_tokens.config import ALL_SDKS, Settings, load_settings


def test_defaults_without_environment() -> None:
    assert load_settings({}) == Settings()
    assert load_settings({}).instrument == ALL_SDKS


def test_environment_variables_are_read() -> None:
    settings = load_settings(
        {
            "OTEL_TOKENS_PROPAGATE": "true",
            "OTEL_TOKENS_INSTRUMENT": "openai, gemini",
            "OTEL_TOKENS_METRICS": "0",
            "OTEL_TOKENS_ESTIMATE": "off",
            "OTEL_TOKENS_PRICES": "/etc/prices.yaml",
            "OTEL_TOKENS_DISABLED": "no",
        }
    )
    assert settings.propagate is True
    assert settings.instrument == ("openai", "google_genai")
    assert settings.metrics is False and settings.estimate is False
    assert settings.prices == "/etc/prices.yaml" and settings.disabled is False


def test_arguments_win_over_environment() -> None:
    settings = load_settings({"OTEL_TOKENS_PROPAGATE": "true"}, propagate=False, instrument="none")
    assert settings.propagate is False and settings.instrument == ()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"OTEL_TOKENS_PROPAGATE": "maybe"}, "OTEL_TOKENS_PROPAGATE"),
        ({"OTEL_TOKENS_INSTRUMENT": "openai,cohere"}, "OTEL_TOKENS_INSTRUMENT"),
        ({"OTEL_TOKENS_METRICS": "2"}, "OTEL_TOKENS_METRICS"),
    ],
)
def test_bad_value_raises_value_error_naming_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings(env)


def test_bad_argument_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="propagate"):
        load_settings({}, propagate="yes")
