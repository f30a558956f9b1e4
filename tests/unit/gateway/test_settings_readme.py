"""The gateway README's settings table lists every ``GATEWAY_*`` setting with its default.

A new user configures the gateway from that table: the five access-control settings
(``GATEWAY_API_KEYS`` ... ``GATEWAY_RATE_LIMIT_STORAGE_URI``) were missing from it, so they
were found only in deploy/README.md or the source.
"""

from __future__ import annotations

import re
from pathlib import Path

from serving.gateway.settings import GatewaySettings

README = Path(__file__).resolve().parents[3] / "serving" / "gateway" / "README.md"
ROW = re.compile(r"^\| `GATEWAY_([A-Z_]+)` \| ([^|]+) \|")


def table_rows() -> dict[str, str]:
    """``{field name: default cell}`` of the table under ``## Settings``."""
    section = README.read_text("utf-8").split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = (ROW.match(line) for line in section.splitlines())
    return {row.group(1).lower(): row.group(2).strip() for row in rows if row}


def shown(value: object) -> str:
    """A default as the table writes it: JSON-style booleans, the rest as ``str``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_setting_is_in_the_table() -> None:
    assert sorted(table_rows()) == sorted(GatewaySettings.model_fields)


def test_every_literal_default_is_the_settings_default() -> None:
    for name, cell in table_rows().items():
        if cell.startswith("`"):  # "(empty)", "(none)": a described default, not a literal
            default = GatewaySettings.model_fields[name].default
            assert cell == f"`{shown(default)}`", name
