"""Shared test assertions (importable from any test module: tests/ is on sys.path)."""

from pathlib import Path

import pytest


def raises_naming(exc_type, path: Path, *words: str, call):
    """Assert ``call(path)`` raises ``exc_type`` whose message names the file and ``words``.

    Returns:
        The message, for further checks.
    """
    with pytest.raises(exc_type) as info:
        call(path)
    text = str(info.value)
    assert path.name in text, text
    for word in words:
        assert word.lower() in text.lower(), text
    return text
