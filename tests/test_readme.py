"""The README's tour runs as written, and the README names exactly two commands."""

import doctest
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_tour_examples_run():
    result = doctest.testfile(str(README), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_the_two_commands_exist():
    text = README.read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert commands == ["bash conformance/run.sh", "bash .ci/run"]
    root = README.parent
    assert (root / "conformance" / "run.sh").is_file() and (root / ".ci" / "run").is_file()
