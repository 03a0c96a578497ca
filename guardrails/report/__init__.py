"""Verdict outputs: verdict.json, JUnit XML, Markdown summary, terminal table."""
