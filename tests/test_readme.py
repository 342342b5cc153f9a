"""The examples in README.md run and print what they say."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    """The python blocks of the two "Example" sections (the others are fragments)."""
    text = README.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    wanted = "".join(s for s in sections if s.startswith("Example"))
    return re.findall(r"```python\n(.*?)```", wanted, re.S)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(_examples())))
def test_readme_example_runs(index: int) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_examples()[index], f"README example {index}", "exec"), {"__name__": "readme"})
    assert out.getvalue().strip(), "the example printed nothing"


def test_sync_example_prints_its_results() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_examples()[0], "README example 0", "exec"), {"__name__": "readme"})
    assert out.getvalue().split() == ["100", "40", "Completed"]
