"""The corpus reader and ``posref golden verify`` against hostile files: bounded, non-blocking, clear.

Every test here failed before: a case file was read whole before its size
was compared with the manifest (a 6 GB sparse file: MemoryError), a
consistent case cost twice its size in memory, and ``verify`` read
``manifest.json`` with ``read_text`` before the strict reader (a FIFO there
hung forever; a symbolic link to ``/dev/zero`` grew to gigabytes).  Whatever
could hang or exhaust memory runs in a child process with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posref.golden import GoldenCase, write_corpus
from posref.golden.format import MAX_MANIFEST_BYTES
from posref.golden.registry import CaseSpec, Values, build_case

MB = 2**20

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS is read from /proc (Linux)")


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "C"
    cases = [build_case(CaseSpec(id=f"demo.{n}", function="rope_angles",
                                 inputs={"positions": Values([0, 1, 7], "int64")}, params={"dim": 4},
                                 tolerance="angle")) for n in "ab"]
    write_corpus(cases, root)
    return root


def in_child(code: str, *args: str, timeout: float = 60) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, with its peak RSS growth added."""
    script = (
        "import json, sys\n"
        "import posref.golden, posref.golden.format, posref.cli\n"
        "def peak():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)\n"
        "    with open('/proc/self/status') as status:\n"
        "        return next(int(l.split()[1]) for l in status if l.startswith('VmHWM:')) * 1024\n"
        "base = peak()\n"
        "def report(**fields): print(json.dumps(dict(fields, grew=peak() - base)))\n"
        + code
    )
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


READ_ONE = (
    "from posref.golden import CorpusError, read_case\n"
    "try:\n"
    "    read_case(sys.argv[1], sys.argv[2]); report(error=None)\n"
    "except CorpusError as exc:\n"
    "    report(error=str(exc), type=type(exc).__name__)\n"
)

VERIFY = (
    "import contextlib, io\n"
    "from posref.cli import main\n"
    "out, err = io.StringIO(), io.StringIO()\n"
    "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
    "    code = main(['golden', 'verify', *sys.argv[1:], '--no-progress'])\n"
    "report(code=code, out=out.getvalue(), err=err.getvalue())\n"
)


def sparse(path: Path, size: int) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


# -- sizes checked before reading ------------------------------------------------------------------


def test_a_6_gb_sparse_case_file_is_refused_before_a_byte_is_read(corpus):
    sparse(corpus / "cases" / "demo.a.safetensors", 6 * 2**30)
    got = in_child(READ_ONE, str(corpus), "demo.a")
    assert got["type"] == "CorpusError"
    assert "file has 6442450944 bytes, the manifest says" in got["error"]
    assert got["grew"] < 50 * MB


def test_a_6_gb_sparse_case_file_fails_verify_with_a_problem_not_a_memory_error(corpus):
    sparse(corpus / "cases" / "demo.b.safetensors", 6 * 2**30)
    got = in_child(VERIFY, str(corpus), "--no-regenerate")
    assert got["code"] == 1 and "corrupt: case 'demo.b'" in got["out"] and "6442450944 bytes" in got["out"]
    assert got["grew"] < 50 * MB


@pytest.mark.parametrize("regenerate", [True, False], ids=["default", "no-regenerate"])
def test_a_manifest_over_the_limit_is_refused_unread(corpus, regenerate):
    sparse(corpus / "manifest.json", MAX_MANIFEST_BYTES + 1)
    got = in_child(VERIFY, str(corpus), *([] if regenerate else ["--no-regenerate"]))
    assert got["code"] == 1 and "more than the limit" in got["err"] and "Traceback" not in got["err"]
    assert got["grew"] < 50 * MB


# -- nothing but regular files is opened -----------------------------------------------------------


@pytest.mark.parametrize("regenerate", [True, False], ids=["default", "no-regenerate"])
def test_a_fifo_as_the_manifest_does_not_hang_verify(corpus, regenerate):
    (corpus / "manifest.json").unlink()
    os.mkfifo(corpus / "manifest.json")
    got = in_child(VERIFY, str(corpus), *([] if regenerate else ["--no-regenerate"]), timeout=60)
    assert got["code"] == 1 and got["out"] == ""
    assert got["err"].startswith("posref golden verify: manifest ") and "named pipe (FIFO)" in got["err"]


def test_a_fifo_as_a_case_file_does_not_hang_the_reader(corpus):
    (corpus / "cases" / "demo.a.safetensors").unlink()
    os.mkfifo(corpus / "cases" / "demo.a.safetensors")
    got = in_child(READ_ONE, str(corpus), "demo.a", timeout=60)
    assert "is not a regular file (it is a named pipe (FIFO))" in got["error"]
    got = in_child(VERIFY, str(corpus), "--no-regenerate", timeout=60)
    assert got["code"] == 1 and "corrupt: case 'demo.a'" in got["out"] and "named pipe" in got["out"]


@pytest.mark.parametrize("regenerate", [True, False], ids=["default", "no-regenerate"])
def test_a_manifest_linked_to_dev_zero_is_refused_at_once(corpus, regenerate):
    (corpus / "manifest.json").unlink()
    (corpus / "manifest.json").symlink_to("/dev/zero")
    got = in_child(VERIFY, str(corpus), *([] if regenerate else ["--no-regenerate"]), timeout=60)
    assert got["code"] == 1 and "is a symbolic link" in got["err"]
    assert got["grew"] < 50 * MB


def test_a_case_file_linked_to_dev_zero_is_refused_at_once(corpus):
    (corpus / "cases" / "demo.b.safetensors").unlink()
    (corpus / "cases" / "demo.b.safetensors").symlink_to("/dev/zero")
    got = in_child(READ_ONE, str(corpus), "demo.b", timeout=60)
    assert "is a symbolic link" in got["error"] and got["grew"] < 50 * MB


def test_a_device_as_a_case_file_is_never_opened(corpus):
    path = corpus / "cases" / "demo.a.safetensors"
    path.unlink()
    try:
        os.mknod(path, 0o666 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero's numbers
    except (PermissionError, AttributeError):
        pytest.skip("cannot create a device node here")
    got = in_child(READ_ONE, str(corpus), "demo.a", timeout=60)
    assert "is not a regular file (it is a character device)" in got["error"] and got["grew"] < 50 * MB


def test_a_directory_in_place_of_the_corpus_manifest(corpus):
    (corpus / "manifest.json").unlink()
    (corpus / "manifest.json").mkdir()
    got = in_child(VERIFY, str(corpus), "--no-regenerate")
    assert got["code"] == 1 and "is not a regular file (it is a directory)" in got["err"]


def test_verify_of_a_missing_directory_is_a_usage_error(tmp_path):
    got = in_child(VERIFY, str(tmp_path / "nowhere"))
    assert got["code"] == 2 and got["err"] == f"posref golden verify: {tmp_path / 'nowhere'} is not a directory\n"


# -- bounded memory for a consistent case ----------------------------------------------------------

BIG = 200 * MB

READ_BIG = (
    "import numpy as np\n"
    "from posref.golden import read_case, verify_corpus\n"
    "case = read_case(sys.argv[1], 'big')\n"
    "x = case.inputs['x']\n"
    "ok = bool(x.flags.writeable and x[0] == 0.0 and x[-1] == x.size - 1 and case.outputs['output'][0] == 1.5)\n"
    "x[0] = 1.0\n"
    "report(ok=ok)\n"
)

VERIFY_BIG = (
    "from posref.golden import verify_corpus\n"
    "report(ok=verify_corpus(sys.argv[1]).ok)\n"
)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("big") / "C"
    x = np.arange(BIG // 8, dtype=np.float64)
    write_corpus([GoldenCase(id="big", function="rope_angles", family="rope", params={}, inputs={"x": x},
                             outputs={"output": np.array([1.5])})], root)
    del x
    return root


@pytest.mark.parametrize("code", [READ_BIG, VERIFY_BIG], ids=["read_case", "verify_corpus"])
def test_a_consistent_200_mb_case_costs_its_size_in_memory_once(big_corpus, code):
    size = (big_corpus / "cases" / "big.safetensors").stat().st_size
    got = in_child(code, str(big_corpus), timeout=120)
    assert got["ok"]
    print(f"peak RSS growth {got['grew'] / MB:.0f} MiB for a {size / MB:.0f} MiB case ({got['grew'] / size:.2f}x)")
    assert got["grew"] < 1.25 * size


def test_the_reader_holds_no_second_copy_of_the_data(big_corpus):
    # The arrays of a case are views of the one buffer the file was read into.
    from posref.golden import read_case

    case = read_case(big_corpus, "big")
    x = case.inputs["x"]
    owner = x
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    assert not isinstance(owner, np.ndarray), "the array is a copy, not a view of the buffer read"
    assert x.flags.writeable and not np.shares_memory(x, case.outputs["output"])
    assert json.dumps(x[:3].tolist()) == "[0.0, 1.0, 2.0]"
