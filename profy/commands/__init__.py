"""The ``profy`` subcommands, one module each: ``add_parser(sub)`` registers the command's
arguments next to the handler that reads them.

:mod:`profy.cli` builds the parser from :data:`COMMANDS` (in ``--help`` order) and
dispatches. A command module imports only ``argparse``/``pathlib`` at the top and its
heavy dependencies inside the handler, so ``profy --help`` stays fast. Shared pieces
(exit codes, the console) live in :mod:`profy.commands._common`.
"""

from profy.commands import (
    ablate,
    collect,
    data,
    demo,
    export,
    features,
    release_notes,
    report,
    synth,
    tags,
    train,
)

__all__ = ["COMMANDS"]

# Registration order is the order ``profy --help`` lists them in.
COMMANDS = (synth, data, features, train, collect, tags, ablate, export, demo, report,
            release_notes)
