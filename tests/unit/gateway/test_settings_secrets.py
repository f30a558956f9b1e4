"""A password in an address setting never reaches a start-up error or a log line: the
setting errors, pydantic's text and the rate-limit storage's error mask it (``user:***@``)."""

from __future__ import annotations

import pytest
from flask import Flask
from limits.errors import ConfigurationError
from pydantic import ValidationError

from serving.gateway.access import install_access_control
from serving.gateway.settings import GatewaySettings
from serving.gateway.settings_messages import settings_errors
from serving.redaction import redact_url

SECRET = "s3cret"


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{SECRET}@bad host:8501",  # a blank in the host was accepted
        f"http://user:{SECRET}@host:99999",
        f"ftp://user:{SECRET}@host:8501",
        f"http://user:{SECRET}@host:8501/?a=1",
        f"http://user:{SECRET}@[::1:8501",
        f"http://user:p@{SECRET}@host:1/?",  # an unencoded @ in the password
    ],
)
def test_a_bad_rest_url_is_refused_with_its_password_masked(monkeypatch, url: str) -> None:
    # Found by the closing note: the setting error showed the URL as given, password included
    # (settings_errors' value, our message and pydantic's input_value all repeated it).
    monkeypatch.setenv("GATEWAY_REST_URL", url)
    with pytest.raises(ValidationError) as caught:
        GatewaySettings()
    shown = settings_errors(caught.value)
    assert shown.startswith("GATEWAY_REST_URL='http") or shown.startswith("GATEWAY_REST_URL='ftp")
    assert "user:***@" in shown
    assert SECRET not in shown and SECRET not in str(caught.value)


def test_a_grpc_target_with_credentials_is_refused_masked(monkeypatch) -> None:
    # gRPC takes no credentials in a target: they were only repeated by every failed call's
    # message ("errors resolving user:s3cret@host:8500"), logged on each status poll.
    monkeypatch.setenv("GATEWAY_GRPC_TARGET", f"user:{SECRET}@host:8500")
    with pytest.raises(ValidationError) as caught:
        GatewaySettings()
    shown = settings_errors(caught.value)
    assert "GATEWAY_GRPC_TARGET='user:***@host:8500'" in shown
    assert SECRET not in shown and SECRET not in str(caught.value)
    monkeypatch.setenv("GATEWAY_GRPC_TARGET", "dns:///model-server:8500")
    assert GatewaySettings().grpc_target == "dns:///model-server:8500"


def test_an_unknown_rate_limit_storage_is_refused_masked() -> None:
    # Refused with the settings, at start (it was each worker's boot traceback), masked.
    uri = f"nosuch://user:{SECRET}@host:6379"
    with pytest.raises(ValidationError) as refused:
        GatewaySettings(rate_limit="10/minute", rate_limit_storage_uri=uri)
    assert "unknown storage scheme : nosuch://user:***@host:6379" in str(refused.value)
    assert SECRET not in str(refused.value) and SECRET not in settings_errors(refused.value)
    assert refused.value.__suppress_context__ or refused.value.__cause__ is None
    # Settings made without validation still meet the same masking in the app.
    settings = GatewaySettings.model_construct(rate_limit="10/minute", rate_limit_storage_uri=uri)
    with pytest.raises(ConfigurationError) as caught:
        install_access_control(Flask(__name__), settings)
    assert "nosuch://user:***@host:6379" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("http://user:pw@host:8501/p", "http://user:***@host:8501/p"),
        ("https://token@host", "https://***@host"),
        ("host:8500", "host:8500"),
        ("redis://:pw@host:6379", "redis://:***@host:6379"),
    ],
)
def test_redact_url(value: str, shown: str) -> None:
    assert redact_url(value) == shown


@pytest.mark.parametrize("name", ["GATEWAY_GRPC_TARGET", "GATEWAY_MODEL_REPO"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_address_or_repo_is_refused_at_start(monkeypatch, name: str, value: str) -> None:
    # Found by newuser10: an unset variable in a deploy file (GATEWAY_GRPC_TARGET=${TARGET})
    # started a gateway whose /readyz said only "backend internal", and GATEWAY_MODEL_REPO=""
    # served the working directory (Path("")); every other setting refuses an empty value.
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        GatewaySettings()
    assert settings_errors(caught.value).startswith(f"{name}={value!r}: Value error, empty: ")
