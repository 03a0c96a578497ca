"""GitHub Actions ``${{ }}`` expressions, evaluated for :mod:`workflow_sim` (tests only).

Literals, ``!``, ``==``/``!=`` (strings case-insensitive, loose across types), ``<``/``>``,
``&&``/``||`` (returning an operand, as GitHub does), property access on contexts and
function calls. A context :class:`Obj` marked strict turns a missing property into an
:class:`ExpressionError` (GitHub would return null), so a misspelled name fails.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["ExpressionError", "Obj", "equal", "evaluate", "render", "substitute", "truthy"]

# ---------------------------------------------------------------- expressions

class ExpressionError(ValueError):
    """A ``${{ }}`` expression that does not parse or names something unknown."""


class Obj(dict):
    """A context object: a missing property is null, or an error when ``strict``."""

    def __init__(self, data: dict[str, Any] | None = None, *, strict: bool = False,
                 what: str = "") -> None:
        super().__init__(data or {})
        self.strict, self.what = strict, what


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
                    r"|(?P<op>==|!=|&&|\|\||<=|>=|[()!.,\[\]<>])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse {text[pos:]!r} in {text!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def truthy(v: Any) -> bool:
    if isinstance(v, float) and math.isnan(v):
        return False
    return v not in (None, False, 0, "")


def _number(v: Any) -> float:
    if v is None or v == "":
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return math.nan


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b) or isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return a == b
    return _number(a) == _number(b)  # GitHub's loose equality across types


def render(v: Any) -> str:
    """An evaluated value as GitHub writes it into a string."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


class _Parser:
    def __init__(self, text: str, contexts: dict[str, Any], functions: dict[str, Any]):
        self.text, self.toks, self.i = text, _tokens(text), 0
        self.contexts, self.functions = contexts, functions

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            value = right if truthy(value) else value
        return value

    def cmp(self) -> Any:
        value = self.unary()
        tok = self.peek()
        if tok and tok[1] in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            if op in ("==", "!="):
                return equal(value, right) == (op == "==")
            a, b = _number(value), _number(right)
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == ("op", "("):
            return self.call(text)
        if text not in self.contexts:
            raise ExpressionError(f"unknown context {text!r} in {self.text!r}")
        value = self.contexts[text]
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = render(self.or_())
                self.take("]")
            value = self.member(value, key)
        return value

    def member(self, value: Any, key: str) -> Any:
        if isinstance(value, Obj) and key not in value and value.strict:
            raise ExpressionError(f"unknown {value.what}.{key} in {self.text!r}")
        return value.get(key) if isinstance(value, dict) else None

    def call(self, name: str) -> Any:
        if name not in self.functions:
            raise ExpressionError(f"unknown function {name}() in {self.text!r}")
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        return self.functions[name](*args)


def evaluate(text: str, contexts: dict[str, Any], functions: dict[str, Any] | None = None
             ) -> Any:
    """Evaluate one expression (without ``${{ }}``)."""
    return _Parser(text, contexts, functions or {}).parse()


def substitute(text: str, contexts: dict[str, Any], functions: dict[str, Any] | None = None
               ) -> str:
    """Every ``${{ expr }}`` in ``text`` replaced by its rendered value."""
    return re.sub(r"\$\{\{(.*?)\}\}",
                  lambda m: render(evaluate(m.group(1), contexts, functions)), str(text),
                  flags=re.S)
