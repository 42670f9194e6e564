"""Every error `code` the gateway can answer is in the OpenAPI document and in the
README's and docs/protocols.md's tables, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.app import providers_for
from gateway.errors import error_codes
from gateway.openapi import document
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def table_codes(text: str, heading: str) -> set[str]:
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {code for row in rows for code in re.findall(r"`([A-Z_]+)`", row.split("|")[1])}


def test_the_openapi_error_schema_lists_every_code() -> None:
    schema = document(providers_for(Settings()))["components"]["schemas"]["Error"]
    assert schema["required"] == ["error", "code"]
    assert schema["properties"]["code"]["enum"] == error_codes()
    for code in ("RATE_LIMITED", "QUOTA_EXCEEDED", "SESSION_LIMIT", "ORIGIN_NOT_ALLOWED"):
        assert code in error_codes()


def test_the_readme_and_protocols_tables_name_exactly_the_codes() -> None:
    codes = set(error_codes()) | {"FRAME_SIZE_EXCEEDED"}  # the stream endpoint's message
    readme = (ROOT / "README.md").read_text()
    assert table_codes(readme, "Every JSON error carries a stable `code`") == codes
    protocols = (ROOT / "docs" / "protocols.md").read_text()
    assert table_codes(protocols, "### Error codes") == codes
