"""Every documented form of the list-valued GATEWAY_* variables (issue: the README's comma
form stopped the gateway with SettingsError; only a JSON list worked)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("qa,profile,similarity", ("qa", "profile", "similarity")),
        ("qa, profile ,similarity", ("qa", "profile", "similarity")),
        ('["qa", "profile"]', ("qa", "profile")),
        ("qa", ("qa",)),
    ],
)
def test_models_env_forms(monkeypatch, value, expected) -> None:
    monkeypatch.setenv("GATEWAY_MODELS", value)
    assert GatewaySettings().models == expected


@pytest.mark.parametrize("value", ["k1,k2", '["k1", "k2"]'])
def test_api_keys_env_forms(monkeypatch, value) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", value)
    assert GatewaySettings().api_key_values() == ["k1", "k2"]


def test_rate_limit_is_checked_at_start(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMIT", "lots per second")
    with pytest.raises(ValidationError):
        GatewaySettings()
    monkeypatch.setenv("GATEWAY_RATE_LIMIT", "100/minute;2000/hour")
    assert GatewaySettings().rate_limit == "100/minute;2000/hour"
