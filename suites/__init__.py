"""Evaluation suites shipped as data (YAML + data + small hooks). No torch imports here."""
