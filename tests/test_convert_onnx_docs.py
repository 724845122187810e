"""docs/convert.md, "Whole models (ONNX)": the worked example from an ONNX file to predictions runs as printed."""
from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from tests.convert_cases import GOLDEN_CONVERT

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "convert.md"


def test_the_worked_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    from compat.convert.__main__ import main

    section = GUIDE.read_text(encoding="utf-8").split("\n## Whole models (ONNX)", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.S)
    shutil.copy(GOLDEN_CONVERT / "onnx_models" / "torch_sentiment_opset14_dynamic.onnx", tmp_path / "sentiment.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = shlex.split(command.strip())
    assert args[:3] == ["python", "-m", "compat.convert"]
    assert main(args[3:]) == 0
    capsys.readouterr()
    try:
        exec(compile(snippet, str(GUIDE), "exec"), {})
    finally:
        sys.modules.pop("sentiment", None)
    expected = [line[2:] for line in snippet.splitlines() if line.startswith("# ")]
    assert capsys.readouterr().out.splitlines() == expected
