"""Run one piece of work in a forked child process while the parent does another.

``guardrails ci`` overlaps its table checks (Great Expectations, pandas: Python that holds
the GIL) with its ONNX inference checks. Threads would fight over the GIL (measured: the
two lanes in threads took 10.7-11.3 s against 12.4 s one after the other); a forked
child has its own interpreter, so each lane gets a core. Fork copies the parent's
memory, so nothing is pickled on the way in (the run context, the registry and its
lambdas travel as they are); only the child's return value or exception comes back
through a pipe.

Where ``fork`` is not available (not Linux), the work runs in the parent when its
result is asked for: the same results, no overlap.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

from guardrails.errors import GuardrailsError

__all__ = ["ForkedCall"]


class ForkedCall:
    """Start ``func()`` in a forked child now; :meth:`result` waits for its value.

    Args:
        func: a callable with no arguments whose return value pickles.
        name: names the work in error messages.
    """

    def __init__(self, func: Callable[[], Any], *, name: str) -> None:
        self.name = name
        self._func: Callable[[], Any] | None = func
        self._process = self._conn = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child_main, args=(func, child_conn),
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
            status, payload = self._conn.recv()
        except EOFError:
            self._process.join()
            raise GuardrailsError(f"the {self.name} lane's process died without a result "
                                  f"(exit code {self._process.exitcode})") from None
        finally:
            self._conn.close()
        self._process.join()
        if status == "error":
            raise payload
        return payload


    def cancel(self) -> None:
        """Stop the child (the parent failed and will not ask for the result)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _child_main(func: Callable[[], Any], conn: Any) -> None:
    try:
        answer: tuple[str, Any] = ("ok", func())
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        answer = ("error", exc)
    try:
        data = pickle.dumps(answer)
        # our own bytes, made one line above (not untrusted input): an exception whose
        # class cannot be rebuilt from its pickle fails here, not in the parent
        pickle.loads(data)  # noqa: S301
    except Exception as exc:  # noqa: BLE001
        data = pickle.dumps(("error", GuardrailsError(
            f"{answer[1]!r} (could not be sent back from the child: {exc})")))
    conn.send_bytes(data)
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the parent's atexit handlers and buffers, inherited by the fork
