"""The README's Python API example runs as written."""

import re
from pathlib import Path

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
