"""Every documented form of the list-valued GATEWAY_* variables (issue: the README's comma
form stopped the gateway with SettingsError; only a JSON list worked)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.gateway.settings import GatewaySettings
from serving.gateway.settings_messages import settings_errors


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


@pytest.mark.parametrize(
    "url", ["localhost:8501", "ftp://host/", "http://host:99999", "http://host/?a=1", "http://[::1"]
)
def test_a_rest_url_the_backend_cannot_call_is_checked_at_start(monkeypatch, url: str) -> None:
    """It was read as is, and every worker failed to boot on it (a traceback, gunicorn's
    'Worker failed to boot'), where a setting's error stops the start with its name."""
    monkeypatch.setenv("GATEWAY_REST_URL", url)
    with pytest.raises(ValidationError, match="rest_url"):
        GatewaySettings()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8501", "https://u:p@[::1]:1/prefix/"])
def test_a_rest_url_the_backend_calls_is_read(monkeypatch, url: str) -> None:
    monkeypatch.setenv("GATEWAY_REST_URL", url)
    assert GatewaySettings().rest_url == url


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        # Each was taken, then failed every worker's boot with a traceback (gunicorn's
        # "Worker failed to boot"), or every request: REQUEST_TIMEOUT_SECONDS=inf made each
        # backend call DEADLINE_EXCEEDED at once (503).
        ("GATEWAY_LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING"),
        ("GATEWAY_REQUEST_TIMEOUT_SECONDS", "inf", "finite number"),
        ("GATEWAY_VERSION_POLL_SECONDS", "Infinity", "finite number"),
        ("GATEWAY_COALESCE_MAX_HOLD_MS", "nan", "finite number"),
        ("GATEWAY_CLIENT_READ_TIMEOUT_SECONDS", "inf", "finite number"),
        ("GATEWAY_CLIENT_READ_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("GATEWAY_CLIENT_READ_TIMEOUT_SECONDS", "-1", "greater than 0"),
        ("GATEWAY_RATE_LIMIT_STORAGE_URI", "foo://", "unknown storage scheme"),
        ("GATEWAY_API_KEYS_FILE", "/nonexistent/keys", "cannot be read"),
        ("GATEWAY_MAX_MESSAGE_BYTES", "3000000000", "less than or equal to 2147483647"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        GatewaySettings()
    message = settings_errors(refused.value)
    assert message.startswith(name)
    assert said in message


@pytest.mark.parametrize(("value", "level"), [("debug", "DEBUG"), (" Warning ", "WARNING")])
def test_a_log_level_is_read_in_any_case(
    monkeypatch: pytest.MonkeyPatch, value: str, level: str
) -> None:
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", value)
    assert GatewaySettings().log_level == level


@pytest.mark.parametrize(
    "name",
    [
        "GATEWAY_REQUEST_TIMEOUT_SECONDS",
        "GATEWAY_CHECK_TIMEOUT_SECONDS",
        "GATEWAY_CONNECT_TIMEOUT_SECONDS",
        "GATEWAY_VERSION_POLL_SECONDS",
        "GATEWAY_RETRY_BACKOFF_MAX_SECONDS",
        "GATEWAY_CLIENT_READ_TIMEOUT_SECONDS",
    ],
)
def test_a_wait_longer_than_an_hour_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # GATEWAY_REQUEST_TIMEOUT_SECONDS=1e10 was taken: a gRPC deadline that far is already
    # over (int64 nanoseconds), so every call was DEADLINE_EXCEEDED at once (503), /readyz too.
    monkeypatch.setenv(name, "1e10")
    with pytest.raises(ValidationError) as refused:
        GatewaySettings()
    assert settings_errors(refused.value).startswith(f"{name}='1e10': Input should be less")
    monkeypatch.setenv(name, "3600")
    GatewaySettings()


@pytest.mark.parametrize("uri", ["memory://", "MEMORY://", "memory:///"])
def test_reading_the_settings_starts_no_thread(uri: str) -> None:
    # Found as an intermittent CI failure: checking the default rate-limit storage built one,
    # which starts a threading.Timer; the gevent worker reads its settings before gevent
    # patches threading, and such a thread ending just after the patch wrote "Exception
    # ignored in thread started by ... KeyError" on stderr: a line of the log that is no JSON.
    import threading

    before = set(threading.enumerate())
    GatewaySettings(rate_limit_storage_uri=uri)
    assert set(threading.enumerate()) - before == set()
