"""The walkthrough page (docs/guides/walkthrough.rst) shows real runs.

Every ``console`` block of the page is one command and its output.  Each
block is run here, in a fresh directory holding the adapter files of
``docs/examples/walkthrough/`` under the names the page uses, and its
output must equal the one printed on the page, so the page cannot drift
from what posref prints.  Numbers that move with the CPU or the clock (the
shares of the error budget, pytest's duration) are compared loosely; the
exit status, the FAIL lines, the diagnosis and the counts exactly.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "guides" / "walkthrough.rst"
EXAMPLES = DOCS / "examples" / "walkthrough"


@dataclass(frozen=True)
class Step:
    """One console block of the page: which files sit in the directory, what it needs, its exit status."""

    name: str
    files: dict[str, str]  # name on the page -> file under docs/examples/walkthrough
    needs: str  # "torch" or "jax"
    exit_code: int


BUGGY = {"rope_torch.py": "rope_torch_bug.py"}
FIXED = {"rope_torch.py": "rope_torch.py"}

#: The console blocks of the page, in order.
STEPS = (
    Step("check-bug", BUGGY, "torch", 1),
    Step("check-fixed-float32", FIXED, "torch", 0),
    Step("check-fixed-bfloat16", FIXED, "torch", 0),
    Step("pytest-fixed", FIXED, "torch", 0),
    Step("pytest-bug", BUGGY, "torch", 1),
    Step("check-jax", {"rope_jax.py": "rope_jax.py"}, "jax", 0),
)


def _blocks(directive: str) -> list[list[str]]:
    """The lines of every ``.. code-block:: <directive>`` of the page, dedented."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != f".. code-block:: {directive}":
            continue
        indent = len(line) - len(line.lstrip()) + 3
        body = []
        for text in lines[number + 1:]:
            if text.strip() and len(text) - len(text.lstrip()) < indent:
                break
            body.append(text[indent:].rstrip())
        while body and not body[0]:
            body.pop(0)
        while body and not body[-1]:
            body.pop()
        blocks.append(body)
    return blocks


def _normalise(lines: list[str]) -> list[str]:
    """Loosen what moves with the machine: budget shares, pytest's timing and its line padding."""
    out = []
    for line in lines:
        line = re.sub(r"\(share [0-9.e+-]+\)", "(share S)", line)
        line = re.sub(r"\([0-9.e+-]+x\)", "(Nx)", line)
        line = re.sub(r"budget share [0-9.e+-]+", "budget share S", line)
        line = re.sub(r"max abs [0-9.e+-]+, max rel [0-9.e+-]+, max ULP [0-9.e+-]+",
                      "max abs A, max rel R, max ULP U", line)
        line = re.sub(r" in [0-9.]+s$", " in Ts", line)
        line = re.sub(r" +\[100%\]$", " [100%]", line)
        out.append(line.rstrip())
    return out


def _command(text: str) -> list[str]:
    words = shlex.split(text)
    if words[0] == "posref":
        return [sys.executable, "-m", "posref", *words[1:]]
    if words[0] == "pytest":
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *words[1:]]
    raise AssertionError(f"the walkthrough runs only posref and pytest, not {words[0]!r}")


def test_every_console_block_is_a_step():
    blocks = _blocks("console")
    assert len(blocks) == len(STEPS), "a console block was added to or removed from the walkthrough: update STEPS"
    for block, step in zip(blocks, STEPS):
        commands = [line for line in block if line.startswith("$ ")]
        assert len(commands) == 1 and block[0].startswith("$ "), f"{step.name}: one command per block, first"


def test_the_fix_shown_is_the_difference_between_the_files():
    (diff_block,) = _blocks("diff")
    bug = (EXAMPLES / "rope_torch_bug.py").read_text(encoding="utf-8").splitlines()
    fixed = (EXAMPLES / "rope_torch.py").read_text(encoding="utf-8").splitlines()
    changes = [line for line in difflib.unified_diff(bug, fixed, lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert diff_block == changes


def test_the_page_includes_the_adapter_files():
    text = PAGE.read_text(encoding="utf-8")
    for name in ("rope_torch_bug.py", "rope_jax.py"):
        assert f".. literalinclude:: ../examples/walkthrough/{name}" in text, name
    module = (EXAMPLES / "rope_torch.py").read_text(encoding="utf-8")
    assert "to_torch" in module and "from_torch" in module and "def rotate_half" in module
    assert 15 <= len([line for line in module.splitlines() if line.strip()]) <= 20


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # CI and BUILD_NUMBER make pytest print whole summary lines instead of the terminal-width ones shown
    for name in ("PYTEST_ADDOPTS", "PYTHONWARNINGS", "POSREF_HYPOTHESIS_PROFILE", "CI", "BUILD_NUMBER"):
        env.pop(name, None)
    env["COLUMNS"] = "80"  # pytest pads its progress line to the terminal width
    env["JAX_PLATFORMS"] = "cpu"
    return env


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[step.name for step in STEPS])
def test_console_block_output_is_real(index, tmp_path):
    step = STEPS[index]
    if importlib.util.find_spec(step.needs) is None:
        pytest.skip(f"{step.needs} is not installed; the walkthrough's {step.needs} adapter cannot run here")
    blocks = _blocks("console")
    assert len(blocks) == len(STEPS)
    block = blocks[index]
    for name, source in step.files.items():
        shutil.copy(EXAMPLES / source, tmp_path / name)
    completed = subprocess.run(_command(block[0][2:]), cwd=tmp_path, env=_env(), capture_output=True,
                               text=True, timeout=600)
    shown = f"page:\n{chr(10).join(block)}\n\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr[-4000:]}"
    assert completed.returncode == step.exit_code, shown
    assert _normalise(completed.stdout.strip("\n").splitlines()) == _normalise(block[1:]), shown
