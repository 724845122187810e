"""The command lines' contract, for every flag of every program: a bad value (zero, negative, NaN, not a
number, a missing file, a directory, a file where a folder should be, a choice not offered) exits with
status 2 and one ``error:`` line naming the flag as typed; a damaged file given to a flag, likewise.

The bad values are drawn from each flag's declared domain (:mod:`compat.cli`), read from the parser itself,
so a new flag is covered without a new test; a flag that declares no domain fails the test."""
from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path
from typing import Dict, List, Tuple
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from compat import __version__, cli

import compat.convert.__main__ as convert_cli
import ports.caffe_sequence.cli as caffe_cli
import ports.tf_ptb.cli as ptb_cli
import ports.tf_shakespeare.cli as shakespeare_cli
import ports.tf_sine.cli as sine_cli
import ports.theano_imdb.cli as imdb_cli
from tests.convert_cases import GOLDEN_CONVERT

PROGRAMS = {"ports.theano_imdb": imdb_cli, "ports.tf_ptb": ptb_cli, "ports.tf_shakespeare": shakespeare_cli,
            "ports.tf_sine": sine_cli, "ports.caffe_sequence": caffe_cli, "compat.convert": convert_cli}


def _flags(parser: argparse.ArgumentParser, prefix: Tuple[str, ...] = ()):
    """(subcommand words, action) for every action that takes a value, subcommands' included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _flags(sub, prefix + (name,))
        elif action.nargs != 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield prefix, action


FLAGS = [(name, words, action) for name, module in PROGRAMS.items()
         for words, action in _flags(module.build_parser())]


def _id(case) -> str:
    name, words, action = case
    return " ".join((name, *words, action.option_strings[0] if action.option_strings else action.dest))


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> Dict[str, str]:
    root = tmp_path_factory.mktemp("places")
    (root / "a-file").write_text("not a model, a checkpoint or a folder\n")
    (root / "a-folder").mkdir()
    return {"file": str(root / "a-file"), "folder": str(root / "a-folder"), "missing": str(root / "missing" / "x"),
            "under-a-file": str(root / "a-file" / "x")}


not_int = st.sampled_from(["", "abc", "1.5", "1e3", "nan", "0x10", "--", "¼"])
not_float = st.sampled_from(["", "abc", "nan", "NaN", "inf", "-inf", "1,5", "0x1p3"])


def bad_values(action: argparse.Action, places: Dict[str, str]) -> st.SearchStrategy:
    """Values outside the flag's domain, from the domain the parser declares."""
    domain = action.type
    if action.choices is not None:
        return st.text(min_size=0, max_size=12).filter(lambda s: s not in action.choices)
    if isinstance(domain, cli.Int):
        options = [not_int]
        if domain.minimum is not None:
            options.append(st.integers(max_value=domain.minimum - 1).filter(lambda v: v not in domain.also).map(str))
        if domain.maximum is not None:
            options.append(st.integers(min_value=domain.maximum + 1).map(str))
        return st.one_of(options)
    if isinstance(domain, cli.Float):
        options = [not_float]
        if domain.minimum is not None:
            below = st.floats(max_value=domain.minimum, exclude_max=not domain.above, allow_nan=False,
                              allow_infinity=False)
            options.append(below.map(repr))
        if domain.maximum is not None:
            options.append(st.floats(min_value=domain.maximum, exclude_min=True, allow_nan=False,
                                     allow_infinity=False).map(repr))
        return st.one_of(options)
    if isinstance(domain, cli.ByteSize):
        return st.sampled_from(["", "0", "-1", "12Q", "abc", "0.1"])
    if isinstance(domain, cli.Device):
        return st.sampled_from(["gpu", "cuda:x", "tpu", "", "cpu:cuda"])
    if isinstance(domain, cli.InputFile):
        return st.sampled_from([places["missing"], places["folder"], ""])
    if isinstance(domain, cli.InputDir):
        return st.sampled_from([places["missing"], places["file"], ""])
    if isinstance(domain, cli.InputPath):
        return st.sampled_from([places["missing"], places["under-a-file"], ""])
    if isinstance(domain, cli.OutputFile):
        return st.sampled_from([places["folder"], places["under-a-file"]] + ([] if domain.empty else [""]))
    if isinstance(domain, cli.OutputDir):
        return st.sampled_from([places["file"], places["under-a-file"], ""])
    if isinstance(domain, cli.Text):
        return st.nothing() if domain.empty else st.just("")
    raise AssertionError(f"{action.option_strings or action.dest}: declares no domain (give it choices or a type "
                         "from compat.cli)")


def run(module, argv: List[str]) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = module.main(argv)
        except SystemExit as e:  # pragma: no cover - the contract says this never happens
            status = e.code
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", FLAGS, ids=[_id(c) for c in FLAGS])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_a_bad_value_is_one_error_line_naming_the_flag_as_typed(case, places, data):
    name, words, action = case
    values = bad_values(action, places)
    if isinstance(action.type, cli.Device):
        values = st.one_of(values, st.just("cuda"))
    value = data.draw(values, label="value")
    if action.option_strings:
        flag = data.draw(st.sampled_from(action.option_strings), label="flag")
        argv = [*words, f"{flag}={value}"]
    else:
        flag, argv = None, [*words, "--", value]
    with mock.patch("torch.cuda.is_available", lambda: False):  # "cuda" is then a bad --device value too
        status, out, err = run(PROGRAMS[name], argv)
    assert status == 2, (argv, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    if flag is not None:
        assert lines[0].startswith(f"error: {flag}: "), (flag, err)
    else:
        assert lines[0].startswith(f"error: {action.dest}: "), err


def test_every_value_of_every_flag_has_a_domain(places):
    for case in FLAGS:
        assert bad_values(case[2], places) is not None


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_version_everywhere(name):
    status, out, err = None, io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        PROGRAMS[name].main(["--version"])
    assert exit_.value.code == 0
    assert out.getvalue() == f"python -m {name} {__version__}\n"


def test_help_shows_every_default_once():
    text = sine_cli.build_parser().format_help()
    assert "(default: 1000)" in text  # --save-every
    assert text.count("(default: ") == len(re.findall(r"\(default: ", text))
    assert "(default: None)" not in text and "(default: False)" not in text


# A damaged file given to each file flag: the program's reader refuses it, and the one error line starts
# with the flag. Each file flag of every program needs its row (the next test checks): the other flags the
# program needs to get as far as reading that file.
# a TF checkpoint whose own .meta the damaged one given by --meta replaces
TF_META_CHECKPOINT = GOLDEN_CONVERT / "tf_meta" / "basic_forget0" / "model.ckpt"


def _damaged(tmp: Path) -> Dict[Tuple[str, str], List[str]]:
    junk = tmp / "junk"
    for suffix in ("", ".pkl", ".npz", ".json", ".caffemodel", ".prototxt", ".txt"):
        Path(str(junk) + suffix).write_bytes(b"\x89not what it claims to be\x00\xff" * 3)
    folder = tmp / "empty-folder"
    folder.mkdir()
    ptb = tmp / "ptb"
    ptb.mkdir()
    words = " ".join(f"w{i}" for i in range(10000))  # the test preset's 10,000 words
    for part in ("train", "valid", "test"):
        (ptb / f"ptb.{part}.txt").write_text(f" {words}\n" * 2)
    (tmp / "empty.caffemodel").write_bytes(b"")  # a NetParameter with no field: read, then the prototxt
    out = ["--out", str(tmp / "out")]
    return {
        ("ports.theano_imdb", "--dataset"): ["--dataset", f"{junk}.pkl", "--no-progress", *out],
        ("ports.theano_imdb", "--reload_model"): ["--dataset", "embedded", "--reload_model", f"{junk}.npz",
                                                  "--max_epochs", "1", "--no-progress", *out],
        ("ports.tf_ptb", "--data-path"): ["--data-path", str(folder)],
        ("ports.tf_ptb", "--resume"): ["--data-path", str(ptb), "--model", "test", "--resume", f"{junk}.json"],
        ("ports.tf_ptb", "--load-tf"): ["--data-path", str(ptb), "--model", "test", "--load-tf", f"{junk}.npz"],
        ("ports.tf_shakespeare", "--data-path"): ["train", "--data-path", f"{junk}.txt", "--save-dir",
                                                  str(tmp / "sh"), "--no-progress", "--no-plot"],
        ("ports.tf_shakespeare", "--model"): ["sample", "--model", f"{junk}.json", "--prime", "thou"],
        ("ports.tf_shakespeare", "--tf-checkpoint"): ["sample", "--tf-checkpoint", str(junk), "--vocab",
                                                      f"{junk}.pkl", "--prime", "thou"],
        ("ports.tf_shakespeare", "--vocab"): ["sample", "--tf-checkpoint", str(folder), "--vocab", f"{junk}.pkl",
                                              "--prime", "thou"],
        ("ports.tf_shakespeare", "--save-dir"): ["report", "--save-dir", str(folder)],
        ("ports.caffe_sequence", "--resume"): ["--config", "lstm_short", "--resume", f"{junk}.json", "--iters", "1",
                                               "--no-plot", "--no-progress", *out],
        ("ports.caffe_sequence", "--caffemodel"): ["--config", "lstm_short", "--caffemodel", f"{junk}.caffemodel",
                                                   "--no-plot", "--no-progress", *out],
        ("compat.convert", "--prototxt"): [str(tmp / "empty.caffemodel"), "--prototxt", f"{junk}.prototxt", "--to",
                                           str(tmp / "c.safetensors")],
        ("compat.convert", "source"): [f"{junk}.npz", "--to", str(tmp / "c.safetensors")],
        ("compat.convert", "--meta"): [str(TF_META_CHECKPOINT), "--meta", str(junk), "--to", str(tmp / "m.safetensors")],
    }


def _file_flags():
    found = set()
    for name, words, action in FLAGS:
        if isinstance(action.type, (cli.InputFile, cli.InputDir, cli.InputPath)):
            found.add((name, action.option_strings[0] if action.option_strings else action.dest))
    return found


def test_every_file_flag_has_a_damaged_file_case(tmp_path):
    assert set(_damaged(tmp_path)) == _file_flags()


@pytest.mark.parametrize("key", sorted(_file_flags()), ids=" ".join)
def test_a_damaged_file_is_one_error_line_naming_the_flag(key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    name, flag = key
    status, out, err = run(PROGRAMS[name], _damaged(tmp_path)[key])
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert status == 2, (out, err)
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err, err
    lines = errors
    if flag.startswith("-"):
        assert lines[0].startswith(f"error: {flag}"), err
