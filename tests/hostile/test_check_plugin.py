"""The pytest plugin runs adapters in the worker too, and agrees with ``posref check`` on statuses and mistakes."""

from __future__ import annotations

import os

import pytest

from .checking import TESTS_DIR, TRIGGER, adapter


def _path(*directories: str) -> str:
    """PYTHONPATH with ``directories`` first (the posref under test stays importable)."""
    return os.pathsep.join([*directories, *[p for p in [os.environ.get("PYTHONPATH")] if p]])


@pytest.fixture
def run(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", _path(TESTS_DIR))

    def run(*args: str):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--posref-family", "rope",
                                             "--posref-max-examples", "0", "--posref-dtype", "float64", *args)

    return run


def test_a_crash_fails_one_item_and_the_session_goes_on(run):
    result = run("--posref-adapter", adapter("SEGFAULT"))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 6
    result.stdout.fnmatch_lines([f"*{TRIGGER}*", "*crash: the worker process died: killed by SIGSEGV*"])


def test_a_hang_is_a_failed_item(run):
    result = run("--posref-adapter", adapter("LOOP_IN_C"), "--posref-timeout", "1")
    assert result.parseoutcomes().get("failed") == 1
    result.stdout.fnmatch_lines(["*timeout: no answer within 1 s*"])


def test_the_judge_is_out_of_reach(run):
    result = run("--posref-adapter", adapter("PATCHES_COMPARE"), "-k", "apply_rope and not invalid")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 12 and outcomes.get("passed", 0) == 0


@pytest.mark.parametrize("args, words", [
    (("--posref-family", "rop"), "--family 'rop' matches nothing; near matches: rope"),
    (("--posref-timeout", "nan"), "must be a positive, finite number of seconds"),
    (("--posref-seed", "-1"), "must be a whole number, 0 or more"),
])
def test_option_mistakes_are_usage_errors(run, args, words):
    result = run("--posref-adapter", "reference", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert words in result.stderr.str()


def test_unknown_xfails_ids_and_unloadable_adapters_are_usage_errors(run, pytester):
    xfails = pytester.path / "xfails.txt"
    xfails.write_text("no.such.case\n")
    result = run("--posref-adapter", "reference", "--posref-xfails", str(xfails))
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "no.such.case" in result.stderr.str()
    result = run("--posref-adapter", adapter("NONE_FACTORY"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "returned None" in result.stderr.str()


def test_lenient_cases_pass_with_a_warning_and_fail_under_strict(pytester, monkeypatch):
    pytester.makepyfile(lenient_adapter='''
        from posref.rope import rope_frequencies as spec
        ADAPTER_DTYPES = ("float64",)
        def rope_frequencies(dim, /, *, base=10_000.0):
            return spec(dim + dim % 2, base=max(base, 2.0))
    ''')
    monkeypatch.setenv("PYTHONPATH", _path(str(pytester.path)))
    args = ("-p", "no:cacheprovider", "-q", "--posref-adapter", "lenient_adapter", "--posref-dtype", "float64",
            "--posref-max-examples", "0", "--posref-family", "rope", "-k", "rope_frequencies")
    result = pytester.runpytest_subprocess(*args)
    assert result.parseoutcomes().get("passed") == 7 and "PosrefLenientWarning" in result.stdout.str()
    result = pytester.runpytest_subprocess(*args, "--posref-strict")
    assert result.parseoutcomes().get("failed") == 2
