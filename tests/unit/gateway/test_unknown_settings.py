"""``unknown_variables``: GATEWAY_* variables no setting reads (a typo kept the default)."""

from __future__ import annotations

import pytest

from serving.gateway.settings import GatewaySettings
from serving.gateway.settings_messages import GUNICORN_VARIABLES, unknown_variables


def test_every_setting_and_gunicorn_variable_is_known() -> None:
    names = {f"GATEWAY_{name.upper()}": "x" for name in GatewaySettings.model_fields}
    assert unknown_variables({**names, **dict.fromkeys(GUNICORN_VARIABLES, "x")}) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("GATEWAY_WORKRES", "(did you mean GATEWAY_WORKERS?)"),
        ("GATEWAY_GRPC_TARGTE", "(did you mean GATEWAY_GRPC_TARGET?)"),
        ("GATEWAY_REQUEST_TIMEOUT", "(did you mean GATEWAY_REQUEST_TIMEOUT_SECONDS?)"),
        # gunicorn_conf.py reads its names as written; pydantic-settings reads any case
        ("gateway_port", "(did you mean GATEWAY_PORT?)"),
        ("GATEWAY_FOO", ""),  # nothing close: the shared prefix alone is no match
    ],
)
def test_a_variable_no_setting_reads(name: str, message: str) -> None:
    expected = f"{name} is not a gateway setting and is ignored"
    assert unknown_variables({name: "1", "PATH": "/bin"}) == [
        f"{expected} {message}" if message else expected
    ]


def test_settings_read_in_any_case_are_known() -> None:
    assert unknown_variables({"gateway_backend": "rest", "Gateway_Max_Top_K": "3"}) == []


def test_the_gunicorn_list_is_what_gunicorn_conf_reads() -> None:
    # GUNICORN_VARIABLES repeats the names gunicorn_conf.py (and affinity.py, which it calls)
    # read from the environment: a name added there and not here would be warned as misspelt.
    import re
    from pathlib import Path

    import serving.gateway

    folder = Path(serving.gateway.__file__).parent
    source = "".join((folder / name).read_text() for name in ("gunicorn_conf.py", "affinity.py"))
    read = set(re.findall(r"""(?:get\(|\[)\s*["'](GATEWAY_[A-Z_]+)["']""", source))
    settings = {f"GATEWAY_{name.upper()}" for name in GatewaySettings.model_fields}
    assert read - settings == GUNICORN_VARIABLES
