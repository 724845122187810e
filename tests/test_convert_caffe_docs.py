"""docs/convert.md, "Whole nets (Caffe)": the worked example from a net definition and its weights to predictions
runs as printed. The example's files are written here (a tagger: Embed, LSTM with cont, InnerProduct on axis 2,
Softmax on axis 2; seeded weights in a .caffemodel written by compat.formats.caffemodel)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "convert.md"
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


def write_example(folder: Path) -> None:
    from compat.formats.caffemodel import write_caffemodel

    rng = np.random.default_rng(7)
    f = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    (folder / "tagger.prototxt").write_text(TAGGER)
    write_caffemodel(folder / "tagger.caffemodel", {"embed": ("Embed", [f(10, 3), f(3)]),
                                                     "lstm": ("LSTM", [f(16, 3), f(16), f(16, 4)]),
                                                     "score": ("InnerProduct", [f(2, 4), f(2)])})


def test_the_worked_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    from compat.convert.__main__ import main

    section = GUIDE.read_text(encoding="utf-8").split("\n## Whole nets (Caffe)", 1)[1].split("\n## ", 1)[0]
    (prototxt,) = re.findall(r"```protobuf\n(.*?)```", section, re.S)
    assert prototxt == TAGGER
    (command,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.S)
    write_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command.strip())
    assert args[:3] == ["python", "-m", "compat.convert"]
    assert main(args[3:]) == 0
    capsys.readouterr()
    exec(compile(snippet, str(GUIDE), "exec"), {})
    expected = [line[2:] for line in snippet.splitlines() if line.startswith("# ")]
    assert capsys.readouterr().out.splitlines() == expected
