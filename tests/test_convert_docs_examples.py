"""docs/convert.md's worked examples, from a legacy file to predictions, run as printed: each section's command
(``python -m compat.convert ...``) in a folder holding the file it names, then its Python block, whose printed
lines must be the ``# `` comments under them. (tests/test_docs.py runs every other block; these need the
command's output first.)"""
from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.convert_cases import GOLDEN_CONVERT

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "convert.md"

# The Caffe section's net (its ```protobuf block must be this text), written here with seeded weights
TAGGER = """name: "tagger"
layer { name: "data" type: "Input" top: "words" top: "cont"
        input_param { shape { dim: 4 dim: 2 } } }
layer { name: "embed" type: "Embed" bottom: "words" top: "emb"
        embed_param { num_output: 3 input_dim: 10 } }
layer { name: "lstm" type: "LSTM" bottom: "emb" bottom: "cont" top: "h"
        recurrent_param { num_output: 4 } }
layer { name: "drop" type: "Dropout" bottom: "h" top: "h" dropout_param { dropout_ratio: 0.5 } }
layer { name: "score" type: "InnerProduct" bottom: "h" top: "score"
        inner_product_param { num_output: 2 axis: 2 } }
layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" softmax_param { axis: 2 } }
"""


def _keras(folder: Path, section: str) -> None:
    shutil.copy(GOLDEN_CONVERT / "keras_models" / "tf_keras" / "sentiment.h5", folder / "sentiment.h5")


def _onnx(folder: Path, section: str) -> None:
    shutil.copy(GOLDEN_CONVERT / "onnx_models" / "torch_sentiment_opset14_dynamic.onnx", folder / "sentiment.onnx")


def _caffe(folder: Path, section: str) -> None:
    from compat.formats.caffemodel import write_caffemodel

    (prototxt,) = re.findall(r"```protobuf\n(.*?)```", section, re.S)
    assert prototxt == TAGGER
    rng = np.random.default_rng(7)
    f = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    (folder / "tagger.prototxt").write_text(TAGGER)
    write_caffemodel(folder / "tagger.caffemodel", {"embed": ("Embed", [f(10, 3), f(3)]),
                                                     "lstm": ("LSTM", [f(16, 3), f(16), f(16, 4)]),
                                                     "score": ("InnerProduct", [f(2, 4), f(2)])})


def _tf1(folder: Path, section: str) -> None:
    for f in (GOLDEN_CONVERT / "tf_meta" / "whole_ptb_word_lm").glob("model.ckpt.*"):
        shutil.copy(f, folder / f.name)


EXAMPLES = {"Whole models (Keras)": (_keras, "sentiment"), "Whole models (ONNX)": (_onnx, "sentiment"),
            "Whole nets (Caffe)": (_caffe, "tagger"), "Whole models (TF1)": (_tf1, "ptb_model")}


@pytest.mark.parametrize("heading", list(EXAMPLES))
def test_the_worked_example_runs_as_printed(heading, tmp_path, monkeypatch, capsys):
    from compat.convert.__main__ import main

    section = GUIDE.read_text(encoding="utf-8").split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.S)
    write_files, emitted_module = EXAMPLES[heading]
    write_files(tmp_path, section)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))   # the file --emit-python wrote is imported by its name
    args = shlex.split(command.strip())
    assert args[:3] == ["python", "-m", "compat.convert"]
    assert main(args[3:]) == 0
    capsys.readouterr()
    try:
        exec(compile(snippet, str(GUIDE), "exec"), {})
    finally:
        sys.modules.pop(emitted_module, None)
    expected = [line[2:] for line in snippet.splitlines() if line.startswith("# ")]
    assert capsys.readouterr().out.splitlines() == expected
