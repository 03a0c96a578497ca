"""Run one piece of work in a forked child process while the parent does another.

``guardrails ci`` overlaps its table checks (Great Expectations, pandas: Python that holds
the GIL) with its ONNX inference checks. Threads would fight over the GIL (measured: the
two lanes in threads took 10.7-11.3 s against 12.4 s one after the other); a forked
child has its own interpreter, so each lane gets a core. Fork copies the parent's
memory, so nothing is serialised on the way in (the run context, the registry and its
lambdas travel as they are); only the child's return value or exception comes back
through a pipe, as JSON.

Where ``fork`` is not available (not Linux), the work runs in the parent when its
result is asked for: the same results, no overlap.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guardrails.errors import GuardrailsError
from guardrails.errors import _rebuild as rebuild_error

__all__ = ["ForkedCall"]

# Exceptions the parent rebuilds with their type; any other comes back as GuardrailsError.
_REBUILDABLE_MODULES = ("builtins", "guardrails.errors")


class ForkedCall:
    """Start ``func()`` in a forked child now; :meth:`result` waits for its value.

    The answer comes back as JSON, not pickle: nothing the parent reads can run code.

    Args:
        func: a callable with no arguments.
        name: names the work in error messages.
        encode: turns ``func``'s value into JSON-able data in the child. (Default: as is)
        decode: turns that data back into the value in the parent. (Default: as is)
    """

    def __init__(self, func: Callable[[], Any], *, name: str,
                 encode: Callable[[Any], Any] | None = None,
                 decode: Callable[[Any], Any] | None = None) -> None:
        self.name = name
        self._func: Callable[[], Any] | None = func
        self._decode = decode or (lambda data: data)
        self._process = self._conn = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child_main,
                                    args=(func, encode or (lambda value: value), child_conn),
                                    name=f"guardrails-{name}", daemon=True)
        self._process.start()
        child_conn.close()  # the child holds its end; EOF here then means it died

    def result(self) -> Any:
        """The child's return value; its exception is raised here again.

        Raises:
            GuardrailsError: the child died without an answer (killed, out of memory).
        """
        if self._process is None:
            func, self._func = self._func, None
            return func() if func is not None else None
        try:
            status, payload = json.loads(self._conn.recv_bytes())
        except EOFError:
            self._process.join()
            raise GuardrailsError(f"the {self.name} lane's process died without a result "
                                  f"(exit code {self._process.exitcode})") from None
        finally:
            self._conn.close()
        self._process.join()
        if status == "error":
            raise _rebuild(payload)
        return self._decode(payload)

    def cancel(self) -> None:
        """Stop the child (the parent failed and will not ask for the result)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _describe(exc: BaseException) -> dict[str, Any]:
    """An exception as its class, ``args`` and attributes, as JSON."""
    from guardrails._result import jsonable

    return {"module": type(exc).__module__, "name": type(exc).__qualname__,
            "args": jsonable(exc.args), "state": jsonable(dict(getattr(exc, "__dict__", {}))),
            "text": str(exc)}


def _rebuild(info: dict[str, Any]) -> BaseException:
    """The child's exception with its own type when that type is ours or built in."""
    if info.get("module") in _REBUILDABLE_MODULES:
        cls = getattr(importlib.import_module(info["module"]), str(info.get("name")), None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            try:
                if issubclass(cls, GuardrailsError):  # __init__ signatures vary: no call
                    state = dict(info.get("state") or {})
                    if "path" in state:
                        state["path"] = Path(state["path"])
                    return rebuild_error(cls, tuple(info.get("args", ())), state)
                return cls(*info.get("args", ()))
            except Exception:  # noqa: BLE001, S110 - falls through to the generic error
                pass
    return GuardrailsError(f"{info.get('name')}: {info.get('text')}")


def _child_main(func: Callable[[], Any], encode: Callable[[Any], Any], conn: Any) -> None:
    try:
        answer: list[Any] = ["ok", encode(func())]
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        answer = ["error", _describe(exc)]
    try:
        data = json.dumps(answer, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:  # not JSON: say so instead of hanging the parent
        data = json.dumps(["error", _describe(GuardrailsError(
            f"{answer[1]!r} (could not be sent back from the child: {exc})"))]).encode()
    conn.send_bytes(data)
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the parent's atexit handlers and buffers, inherited by the fork
