"""The README's Python API example runs as written."""

import re
from pathlib import Path

import pytest

import gennas

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_api_example_runs(capsys):
    text = README.read_text()
    code = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "flops" in out and "rea" in out and "random" in out


def test_public_names_resolve_lazily():
    assert set(gennas.__all__) == {"compare", "cost", "design", "find", "generate", "prune"}
    assert callable(gennas.find) and gennas.find.__module__ == "gennas.api"


def test_design_fills_in_each_space_s_skeleton_as_the_cli_does(monkeypatch, tmp_path):
    import gennas.supernet.pipeline as pipeline
    from gennas.errors import GennasError
    from gennas.space.darts import DartsSpace

    seen = []
    monkeypatch.setattr(pipeline, "run_pipeline", lambda settings, out, **kw: seen.append(settings) or {})
    gennas.design("digits", tmp_path, space="darts")
    gennas.design("digits", tmp_path, space="darts", channels=4, layers=3)
    gennas.design("digits", tmp_path, channels=12)
    channels, layers = DartsSpace().training_skeleton
    assert [(s.space, s.channels, s.layers, s.cells_per_stage) for s in seen] == [
        ("darts", channels, layers, None), ("darts", 4, 3, None), ("nb201", 12, None, 2)]
    with pytest.raises(GennasError, match="--layers"):
        gennas.design("digits", tmp_path, layers=3)  # a darts knob on an nb201 run
