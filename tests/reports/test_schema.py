"""reports/audit.schema.json is generated from the models; a stale file fails here."""

from __future__ import annotations

import json

from reports import schema


def test_the_shipped_audit_schema_is_generated_from_the_models():
    assert schema.SCHEMA_PATH.read_text() == schema.schema_text(), (
        "reports/audit.schema.json is stale: run 'python -m reports.schema' and commit the file")


def test_the_schema_describes_the_decision_and_pdf():
    s = json.loads(schema.SCHEMA_PATH.read_text())
    assert {"decision", "lineage", "rules", "pdf", "schema_version"} <= set(s["required"]) | set(s["properties"])
    decision = s["$defs"]["Decision"]["properties"]["status"]["enum"]
    assert "promoted" in decision and "rejected" in decision
