"""The README's Python examples run as written (small sizes: seconds), so it cannot go stale."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
#: blocks that need what a test cannot have (a Dask cluster at a named address)
NEEDS_CLUSTER = "tcp://"


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("\n")[:6]
    assert any(line.startswith("pip install . && sketchnewton demo ") for line in head)
    assert any(line.startswith('pip install ".[test]" && python -m pytest -q ') for line in head)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index):
    code = BLOCKS[index]
    if NEEDS_CLUSTER in code:
        pytest.skip("needs a Dask cluster")
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "readme"})
