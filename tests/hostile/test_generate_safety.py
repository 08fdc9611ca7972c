"""``posref golden generate`` / ``write_corpus`` never lose a file they did not write.

Every test here failed before the in-place writer: foreign files deleted
(with and without ``--force``), directories made 0700 whatever the umask,
``.posref-old-*`` and ``.posref-tmp-*`` leftovers, no way to write into a
read-only parent, and a crash that could leave a half-swapped directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import posref.golden.format as fmt
from posref.cli import main
from posref.golden import CorpusError, GoldenCase, read_corpus, verify_corpus, write_corpus
from posref.golden.registry import CaseSpec, Values, build_case

# -- helpers ---------------------------------------------------------------------------------------


def case(cid: str, last: int = 5) -> GoldenCase:
    """A small real case; ``last`` changes its bytes but not its id."""
    return build_case(CaseSpec(id=cid, function="rope_angles", inputs={"positions": Values([0, 1, last], "int64")},
                               params={"dim": 4}, tolerance="angle"))


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (files by content, directories and links by kind)."""
    out: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


def signature(cases) -> list[tuple[str, str]]:
    """Ids and file hashes: what a corpus holds, independent of where it came from."""
    return [(c.id, fmt._encode_case(c)[0]["file_sha256"]) for c in sorted(cases, key=lambda c: c.id)]


def is_clean(root: Path) -> bool:
    return sorted(os.listdir(root)) == ["cases", "manifest.json"]


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def unprivileged() -> list[str]:
    """A command prefix under which permission bits apply (root drops its override capabilities)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"] if setpriv else None
    if prefix is None or subprocess.run(prefix + ["true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without a working setpriv: permission bits cannot be exercised")
    return prefix


def cli(*args: str, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "posref", "golden", *args, "--no-progress"],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def corpus(tmp_path):
    """A corpus of the 'nope' family written by the CLI, as a user has it."""
    root = tmp_path / "C"
    assert main(["golden", "generate", "--out", str(root), "--family", "nope", "--no-progress"]) == 0
    return root


# -- foreign files ---------------------------------------------------------------------------------

FOREIGN = {
    "README.md": "README.md",
    ".git/config": ".git/",
    "cases/my_own_case.safetensors": "cases/my_own_case.safetensors",
    "notes.txt": "notes.txt",
    "cases/sub/x.bin": "cases/sub/",
    ".posref-tmp-0123456789abcdef/notes.txt": ".posref-tmp-0123456789abcdef/",  # looks like staging, is not
    ".posref-tmp-mine/manifest.json": ".posref-tmp-mine/",
}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("rel", list(FOREIGN))
def test_a_foreign_file_makes_generate_refuse_and_nothing_is_deleted(corpus, capsys, rel, force):
    path = corpus / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mine")
    before = tree(corpus)
    capsys.readouterr()
    args = ["golden", "generate", "--out", str(corpus), "--family", "nope", "--no-progress"]
    assert main(args + (["--force"] if force else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"posref golden generate: {corpus} holds {FOREIGN[rel]}, which the corpus manifest")
    assert "never deletes" in err and "Traceback" not in err
    assert tree(corpus) == before


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_the_first_foreign_file_is_named(corpus, capsys, force):
    for rel in ("README.md", ".git/HEAD", "cases/my_own_case.safetensors"):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text("mine")
    before = tree(corpus)
    capsys.readouterr()
    args = ["golden", "generate", "--out", str(corpus), "--family", "cpe", "--no-progress"]
    assert main(args + (["--force"] if force else [])) == 2
    assert f"{corpus} holds .git/ (and 2 more), which" in capsys.readouterr().err
    assert tree(corpus) == before


def test_force_replaces_a_corpus_but_keeps_nothing_it_did_not_list(corpus, capsys):
    assert main(["golden", "generate", "--out", str(corpus), "--family", "cpe", "--force", "--no-progress"]) == 0
    assert is_clean(corpus)
    assert {c.family for c in read_corpus(corpus)} == {"cpe"}


@pytest.mark.parametrize(
    "make",
    [
        lambda root: (root / "manifest.json").write_text('{"name": "my-package", "version": "1.0.0"}'),
        lambda root: (root / "manifest.json").write_bytes(b"\xff\xfe not json"),
        lambda root: ((root / "manifest.json").unlink(), (root / "manifest.json").symlink_to(root / "cases")),
        lambda root: (shutil.rmtree(root / "cases"), (root / "cases").symlink_to(root.parent)),
    ],
    ids=["other-manifest", "garbage-manifest", "symlinked-manifest", "symlinked-cases"],
)
def test_what_is_not_a_posref_corpus_is_never_replaced(corpus, make):
    make(corpus)
    before, outside = tree(corpus), sorted(os.listdir(corpus.parent))
    for force in (False, True):
        with pytest.raises(FileExistsError, match=r"which the corpus manifest there does not list"):
            write_corpus([case("demo.a")], corpus, force=force)
        assert tree(corpus) == before and sorted(os.listdir(corpus.parent)) == outside


def test_a_file_in_place_of_the_directory_is_never_replaced(tmp_path):
    (tmp_path / "C").write_text("mine")
    for force in (False, True):
        with pytest.raises(FileExistsError, match=r"exists and is not a directory"):
            write_corpus([case("demo.a")], tmp_path / "C", force=force)
    assert (tmp_path / "C").read_text() == "mine"


def test_a_different_corpus_still_needs_force(corpus, capsys):
    before = tree(corpus)
    capsys.readouterr()
    assert main(["golden", "generate", "--out", str(corpus), "--family", "cpe", "--no-progress"]) == 2
    assert "lists different cases or versions" in capsys.readouterr().err
    assert tree(corpus) == before


# -- modes, leftovers, identity --------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_modes_follow_the_umask(tmp_path, mask):
    root = tmp_path / "deep" / "C"
    with umask(mask):
        write_corpus([case("demo.a"), case("demo.b")], root)
    for directory in (tmp_path / "deep", root, root / "cases"):
        assert mode(directory) == 0o777 & ~mask, directory
    for file in (root / "manifest.json", *sorted((root / "cases").iterdir())):
        assert mode(file) == 0o666 & ~mask, file


def test_the_cli_makes_a_0755_corpus_under_umask_022(tmp_path):
    with umask(0o022):
        assert main(["golden", "generate", "--out", str(tmp_path / "C"), "--family", "nope", "--no-progress"]) == 0
    assert mode(tmp_path / "C") == 0o755 and mode(tmp_path / "C" / "cases") == 0o755


@pytest.mark.parametrize("dir_mode", [0o755, 0o750, 0o700, 0o775])
def test_replacing_keeps_the_directory_its_mode_and_inode(tmp_path, dir_mode):
    root = tmp_path / "C"
    with umask(0o022):
        write_corpus([case("demo.a"), case("demo.b")], root)
        os.chmod(root, dir_mode)
        inode = os.stat(root).st_ino
        write_corpus([case("demo.a", last=9), case("demo.c")], root, force=True)
    assert mode(root) == dir_mode and os.stat(root).st_ino == inode
    assert is_clean(root) and sorted(os.listdir(tmp_path)) == ["C"]
    assert signature(read_corpus(root)) == signature([case("demo.a", last=9), case("demo.c")])


def test_no_leftovers_after_any_successful_write(tmp_path):
    root = tmp_path / "C"
    for cases, force in (
        ([case("demo.a")], False),  # new
        ([case("demo.a")], False),  # identical: untouched
        ([case("demo.a", last=7)], False),  # same id, new bytes
        ([case("demo.b"), case("demo.c")], True),  # other ids
        ([], True),  # empty
    ):
        write_corpus(cases, root, force=force)
        assert is_clean(root) and sorted(os.listdir(tmp_path)) == ["C"]
        assert verify_corpus(root, cases).ok
        listed = json.loads((root / "manifest.json").read_text())["cases"]
        assert sorted(os.listdir(root / "cases")) == sorted(e["file"].removeprefix("cases/") for e in listed)
        assert [e["id"] for e in listed] == sorted(c.id for c in cases)


def test_a_changed_case_takes_its_other_name_and_back(tmp_path):
    import hashlib

    root = tmp_path / "C"
    names = []
    for last in (1, 7, 8, 8):
        write_corpus([case("demo.a", last=last)], root, force=True)
        (name,) = os.listdir(root / "cases")
        digest = hashlib.sha256((root / "cases" / name).read_bytes()).hexdigest()
        assert name in ("demo.a.safetensors", f"demo.a@{digest[:16]}.safetensors")
        names.append(name)
    assert names[0] == "demo.a.safetensors" and "@" in names[1] and names[2] == "demo.a.safetensors"
    assert names[3] == names[2]  # unchanged bytes keep their name


def test_unchanged_case_files_are_not_touched(tmp_path):
    root = tmp_path / "C"
    write_corpus([case("demo.a"), case("demo.b")], root)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (root / "cases").iterdir()}
    write_corpus([case("demo.a"), case("demo.b", last=9)], root)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (root / "cases").iterdir()}
    assert after["demo.a.safetensors"] == before["demo.a.safetensors"]
    assert "demo.b.safetensors" not in after and len(after) == 2  # demo.b changed: a new file, its second name


@pytest.mark.parametrize("failing", ["_write_file", "_rename", "_fsync_dir"])
def test_a_failed_write_into_a_new_directory_leaves_nothing(tmp_path, monkeypatch, failing):
    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fmt, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        write_corpus([case("demo.a")], tmp_path / "C")
    assert os.listdir(tmp_path) == []


def test_a_concurrent_write_is_refused(tmp_path):
    root = tmp_path / "C"
    write_corpus([case("demo.a")], root)
    before = tree(root)
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(OSError, match=r"another write to .* is in progress"):
            write_corpus([case("demo.a", last=9)], root)
    finally:
        os.close(fd)
    assert tree(root) == before


# -- read-only directories (run unprivileged: root ignores permission bits) ------------------------


@pytest.fixture
def restore_modes():
    paths: list[Path] = []
    yield paths
    for path in paths:
        os.chmod(path, 0o755)


def test_a_read_only_corpus_is_refused_cleanly_and_left_whole(corpus, restore_modes):
    prefix = unprivileged()
    before, outside = tree(corpus), sorted(os.listdir(corpus.parent))
    os.chmod(corpus, 0o555)
    restore_modes.append(corpus)
    done = cli("generate", "--out", str(corpus), "--family", "cpe", "--force", prefix=prefix)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("posref golden generate: ") and "Permission denied" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert tree(corpus) == before and sorted(os.listdir(corpus.parent)) == outside
    current = cli("generate", "--out", str(corpus), "--family", "nope", prefix=prefix)  # nothing to write
    assert current.returncode == 0 and "already current" in current.stdout


def test_a_read_only_cases_directory_is_refused_cleanly_and_left_whole(corpus, restore_modes):
    prefix = unprivileged()
    before = tree(corpus)
    os.chmod(corpus / "cases", 0o555)
    restore_modes.append(corpus / "cases")
    done = cli("generate", "--out", str(corpus), "--family", "cpe", "--force", prefix=prefix)
    assert done.returncode == 2 and "Permission denied" in done.stderr and "Traceback" not in done.stderr
    assert tree(corpus) == before


def test_a_writable_corpus_in_a_read_only_parent_is_replaced(corpus, restore_modes):
    prefix = unprivileged()
    parent = corpus.parent
    os.chmod(parent, 0o555)
    restore_modes.append(parent)
    done = cli("generate", "--out", str(corpus), "--family", "cpe", "--force", prefix=prefix)
    assert done.returncode == 0, done.stderr
    assert os.listdir(parent) == ["C"] and is_clean(corpus)
    assert {c.family for c in read_corpus(corpus)} == {"cpe"}
    assert verify_corpus(corpus).ok


def test_a_new_corpus_in_a_read_only_parent_is_a_clean_error(tmp_path, restore_modes):
    prefix = unprivileged()
    parent = tmp_path / "ro"
    parent.mkdir()
    os.chmod(parent, 0o555)
    restore_modes.append(parent)
    done = cli("generate", "--out", str(parent / "C"), "--family", "nope", prefix=prefix)
    assert done.returncode == 2
    assert done.stderr == f"posref golden generate: {parent / 'C'}: Permission denied\n"
    assert os.listdir(parent) == []


# -- crashes ---------------------------------------------------------------------------------------

#: The writer's I/O steps; the child process is killed just before the n-th one.
STEPS = ("_write_file", "_rename", "_unlink", "_fsync_dir")


def killed_at(step: int, write) -> bool:
    """Run ``write()`` in a forked child that SIGKILLs itself before I/O step ``step``; True if it died."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            count = [0]
            for name in STEPS:
                def counted(*args, _real=getattr(fmt, name)):
                    count[0] += 1
                    if count[0] == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return _real(*args)

                setattr(fmt, name, counted)
            write()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the write failed in the child"
    return False


def check_crashed_corpus(root: Path, old, new) -> str:
    """What a crash left: 'old' or 'new' ('fresh': a new directory without a manifest yet); asserts the rest."""
    if not root.exists():
        assert old is None
        return "old"
    names = os.listdir(root)
    staging = [n for n in names if n.startswith(fmt.STAGING_PREFIX)]
    assert set(names) - set(staging) <= {"manifest.json", "cases"} and len(staging) <= 1, names
    try:
        got = signature(read_corpus(root))
    except CorpusError:
        # Only a fresh directory without a manifest yet: an existing corpus never reads as corrupt.
        assert old is None and not (root / "manifest.json").exists(), names
        return "fresh"
    assert got in (signature(old or []), signature(new)), got
    return "old" if got == signature(old or []) and got != signature(new) else "new"


SCENARIOS = {
    # old corpus, new corpus, force
    "replace": ([case("demo.a"), case("demo.b"), case("demo.c")],
                [case("demo.a"), case("demo.b", last=9), case("demo.d")], True),
    "same-ids": ([case("demo.a"), case("demo.b")], [case("demo.a", last=7), case("demo.b", last=8)], False),
    "add-only": ([case("demo.a")], [case("demo.a"), case("demo.b")], True),
    "remove-only": ([case("demo.a"), case("demo.b")], [case("demo.b")], True),
    "fresh": (None, [case("demo.a"), case("demo.b")], False),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kill_9_at_every_step_leaves_old_or_new_and_a_rerun_finishes(tmp_path, scenario):
    old, new, force = SCENARIOS[scenario]
    template = tmp_path / "template"
    if old is not None:
        write_corpus(old, template)
    root = tmp_path / "C"
    seen = set()
    for step in range(1, 200):
        if root.exists():
            shutil.rmtree(root)
        if old is not None:
            shutil.copytree(template, root)
        if not killed_at(step, lambda: write_corpus(new, root, force=force)):
            break
        state = check_crashed_corpus(root, old, new)
        seen.add(state)
        assert state != "fresh" or old is None, f"step {step}: the corpus must read as the old or the new one"
        report = verify_corpus(root, new) if root.exists() and (root / "manifest.json").exists() else None
        if report is not None and state == "new":
            assert all(p.kind == "extra" for p in report.problems), report
        # Running the write again (as the user would) finishes it, without force if it was not needed.
        write_corpus(new, root, force=force)
        assert verify_corpus(root, new).ok and is_clean(root), f"step {step}"
        assert sorted(os.listdir(tmp_path)) == (["C", "template"] if old is not None else ["C"])
        assert signature(read_corpus(root)) == signature(new)
    else:
        pytest.fail("the write never finished")
    assert step > 5 and "new" in seen and ("old" in seen or old is None)
    if scenario in ("replace", "same-ids"):  # changed cases got their second name, then the first again
        names = sorted(os.listdir(root / "cases"))
        assert any("@" in name for name in names) or scenario == "replace", names


def random_cases(seed):
    """Forty cases of 256 kB whose bytes depend on ``seed`` (also run in the child process)."""
    import numpy as np

    from posref.golden import GoldenCase

    return [GoldenCase(id=f"c{i:03d}", function="rope_angles", family="rope", params={"dim": 4},
                       inputs={"positions": np.arange(3)},
                       outputs={"output": np.random.default_rng(seed * 1000 + i).standard_normal((64, 512))})
            for i in range(40)]


CHILD = inspect.getsource(random_cases) + """
import sys
from posref.golden import write_corpus
cases = random_cases(int(sys.argv[2]))
print("ready", flush=True)
write_corpus(cases, sys.argv[1], force=True)
"""


def test_kill_9_at_random_moments_leaves_a_corpus_that_reads_whole_or_not_at_all(tmp_path):
    root = tmp_path / "C"

    def start(seed):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(seed)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        return child

    first = start(1)
    began = time.perf_counter()  # from "ready" to the end of the write (and of the process)
    assert first.wait(timeout=120) == 0
    duration = time.perf_counter() - began
    first.stdout.close()
    rng = random.Random(20240601)
    outcomes = []
    for seed in range(2, 6):
        before, after = signature(read_corpus(root)), signature(random_cases(seed))
        child = start(seed)
        time.sleep(rng.uniform(0.0, 1.2 * duration))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        try:
            got = signature(read_corpus(root))
        except CorpusError:  # inside the commit window: the new manifest is still journaled
            assert any((p / "manifest.json").is_file() for p in root.glob(fmt.STAGING_PREFIX + "*"))
            outcomes.append("window")
        else:
            assert got in (before, after)
            outcomes.append("old" if got == before else "new")
        write_corpus(random_cases(seed), root, force=True)  # run again: finishes
        assert is_clean(root) and verify_corpus(root).ok and signature(read_corpus(root)) == after
    print(f"kill -9 after a random delay (write takes {duration:.2f} s): {outcomes}")
