"""The ``guardrails`` subcommands, one short module each (``guardrails.cli`` lists them).

Every module exposes ``add_parser(subparsers)``. The commands that end in a verdict
(``ci``, ``data``, ``audit``, ``onnx``, ``replay``, ``gate``) are each a
:class:`~guardrails.commands._verdict.VerdictCommand`: the shared skeleton (output
options, criteria, report folder, run, emit) with the command's own steps as hooks. The
listing commands (``schemas``, ``checks``, ``history``) print and exit.

Nothing is imported here: ``guardrails --help`` loads only the parsers, and a command's
heavy imports (Great Expectations, onnxruntime) happen when it runs.
"""

__all__: list[str] = []
