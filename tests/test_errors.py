"""Every exception class of both trees crosses a process boundary intact.

Worker processes (``profy features --workers 2``) hand their errors to the parent by
pickling; an exception whose ``__init__`` takes more than one argument used not to
unpickle (``DataError.__init__() missing 1 required positional argument: 'problem'``),
which broke the whole pool. The classes are discovered by importing every module of
both packages, so a new class cannot skip this test.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import guardrails
import profy
from guardrails.errors import GuardrailsError
from profy.errors import MalformedFileError, ProfyError


def _all_subclasses(root: type) -> set[type]:
    found, todo = set(), [root]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return found


def _exception_classes() -> list[type]:
    for package in (profy, guardrails):
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            importlib.import_module(info.name)
    classes = _all_subclasses(ProfyError) | _all_subclasses(GuardrailsError)
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _exception_classes()


def test_both_trees_are_found():
    names = {c.__name__ for c in CLASSES}
    assert {"DataError", "MalformedFileError", "FeatureError", "BadInputError",
            "ArtifactError", "CriteriaError"} <= names


def _required_params(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [p.name for p in list(sig.parameters.values())[1:]
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


_text = st.text(min_size=1, max_size=40)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_pickle_round_trip_keeps_type_message_and_file(cls, data):
    params = _required_params(cls)
    args = [data.draw(_text, label=name) for name in params] or [data.draw(_text)]
    exc = cls(*args)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert back.args == exc.args
    assert vars(back) == vars(exc)  # path and problem survive as they were
    if hasattr(exc, "path"):
        assert isinstance(back.path, Path) and back.path == exc.path


def _raise_in_worker(path: str) -> None:
    raise MalformedFileError(path, "8-bit audio (PCM_U8)")


def test_worker_error_reaches_parent_as_same_exception(tmp_path):
    import multiprocessing as mp

    target = str(tmp_path / "take" / "sound_raw.wav")
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool, \
            pytest.raises(MalformedFileError) as info:
        pool.submit(_raise_in_worker, target).result()
    assert info.value.path == Path(target)
    assert str(info.value) == f"{target}: 8-bit audio (PCM_U8)"
