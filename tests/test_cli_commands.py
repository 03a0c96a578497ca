"""``profy``'s parser is built per command: each ``profy.commands`` module registers its
own subcommands next to its handlers; building the parser loads no model code."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

from profy.cli import build_parser
from profy.commands import COMMANDS

# The order ``profy --help`` has always listed them in.
ORDER = ["synth", "data", "features", "train", "collect", "tag", "tags", "ablate", "export",
         "demo", "report", "release-notes"]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_is_registered_by_its_own_module_in_help_order():
    subs = _subcommands(build_parser())
    assert list(subs) == ORDER
    for name, sub in subs.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        handlers = ([p.get_default("func") for p in nested[0].choices.values()] if nested
                    else [sub.get_default("func")])
        for handler in handlers:  # the handler lives in the module that registered it
            module = sys.modules[handler.__module__]
            assert module in COMMANDS and callable(module.add_parser), (name, module)
            probe = argparse.ArgumentParser().add_subparsers()
            module.add_parser(probe)
            assert name in probe.choices, (name, module.__name__)


def test_building_the_parser_loads_no_model_code():
    code = textwrap.dedent("""
        import contextlib, io, sys
        from profy.cli import main
        for argv in (["--help"], ["train", "--help"], ["export", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main(argv)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio")
                       or m.startswith(("profy.training", "profy.features", "profy.models")))
        print(",".join(heavy))
    """)
    result = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", result.stdout


def test_synth_help_names_real_sizes_and_another_size_is_exit_2(tmp_path):
    """``--size`` help names sizes the generator has; an unknown size is bad input (exit 2)
    listing every size (defect corpora included), before anything is written."""
    import re

    from profy.data._synth_config import SIZES

    synth = _subcommands(build_parser())["synth"]
    (size,) = [a for a in synth._actions if "--size" in a.option_strings]
    named = re.findall(r"\b(tiny|small|medium|full)\b", size.help)
    assert named and set(named) <= set(SIZES) and f"{named[-1]}-defects" in SIZES
    done = subprocess.run([sys.executable, "-m", "profy.cli", "synth", "--size", "huge",
                           "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert done.returncode == 2 and "full-defects" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "c").exists()
