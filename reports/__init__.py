"""Audit reports (HTML, PDF, JSON) for compliance readers."""
