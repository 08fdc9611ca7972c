r"""Write ``numpy.inv`` and ``torch.inv`` from the curated list ``curated.txt``.

The docs link to NumPy and PyTorch through intersphinx, from local
inventories only (the build needs no network).  Python's and SciPy's
inventories are the ``objects.inv`` files of Debian's ``python3.11-doc`` and
``python-scipy-doc`` packages, copied as they are; NumPy and PyTorch have no
such package, so their inventories are written here from a short list of
checked entries (see the header of ``curated.txt``).

The output is a Sphinx inventory, version 2: four header lines, then the
zlib-compressed entry lines ``name domain:role priority uri dispname``
(``-`` as dispname means "same as name").  The result depends only on
``curated.txt`` and zlib, so ``tests/test_docs_inventories.py`` can rebuild
the files and compare them with the committed ones.

Usage::

    python docs/_inventories/build_curated.py [OUTPUT_DIR]

``OUTPUT_DIR`` defaults to this file's directory.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CURATED = HERE / "curated.txt"

#: The keys of ``curated.txt`` and the inventory file each one is written to.
OUTPUTS = {"numpy": "numpy.inv", "torch": "torch.inv"}

_SETTINGS = ("project", "version", "base")


@dataclass(frozen=True)
class Entry:
    """One inventory entry: ``name domain:role priority uri``, and where its page was seen."""

    name: str
    role: str
    priority: int
    uri: str
    seen_at: str


@dataclass
class Project:
    """A documentation project of ``curated.txt``: its settings and entries."""

    key: str
    settings: dict[str, str] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.settings["base"]


def parse(text: str, /) -> dict[str, Project]:
    """Read the curated list.

    Parameters
    ----------
    text : str
        The contents of ``curated.txt``.

    Returns
    -------
    dict of str to Project
        The projects by key (``"numpy"``, ``"torch"``), in file order.
    """
    projects: dict[str, Project] = {}
    current: Project | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"curated.txt line {number}"
        if line.startswith("[") and line.endswith("]"):
            key = line[1:-1].strip()
            if key in projects:
                raise ValueError(f"{where}: project [{key}] is listed twice")
            current = projects[key] = Project(key)
            continue
        if current is None:
            raise ValueError(f"{where}: an entry before the first [project] line: {line!r}")
        if "=" in line and line.split("=", 1)[0].strip() in _SETTINGS:
            name, value = (part.strip() for part in line.split("=", 1))
            current.settings[name] = value
            continue
        fields = line.split()
        if len(fields) != 5:
            raise ValueError(f"{where}: expected 'name domain:role priority uri seen-at', got {line!r}")
        name, role, priority, uri, seen_at = fields
        if role.count(":") != 1:
            raise ValueError(f"{where}: the role must be domain:role, got {role!r}")
        if "://" in uri or uri.startswith("/"):
            raise ValueError(f"{where}: the uri must be relative to base, got {uri!r}")
        if not seen_at.startswith("https://"):
            raise ValueError(f"{where}: the last field must be the address the page was seen at, got {seen_at!r}")
        current.entries.append(Entry(name, role, int(priority), uri, seen_at))
    for project in projects.values():
        missing = [name for name in _SETTINGS if name not in project.settings]
        if missing:
            raise ValueError(f"curated.txt: project [{project.key}] lacks {', '.join(missing)}")
        if not project.base.endswith("/"):
            raise ValueError(f"curated.txt: the base of [{project.key}] must end with '/', got {project.base!r}")
        names = [(entry.role, entry.name) for entry in project.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"curated.txt: project [{project.key}] lists an entry twice")
    return projects


def header(project: Project, /) -> str:
    """The four header lines of a version 2 inventory."""
    return (
        "# Sphinx inventory version 2\n"
        f"# Project: {project.settings['project']}\n"
        f"# Version: {project.settings['version']}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )


def body(project: Project, /) -> str:
    """The entry lines of the inventory, before compression."""
    return "".join(f"{e.name} {e.role} {e.priority} {e.uri} -\n" for e in project.entries)


def render(project: Project, /) -> bytes:
    """The inventory file of ``project``: header, then the zlib-compressed entry lines."""
    return header(project).encode("utf-8") + zlib.compress(body(project).encode("utf-8"), 9)


def build(output_dir: Path | str = HERE, /, *, curated: Path | str = CURATED) -> list[Path]:
    """Write ``numpy.inv`` and ``torch.inv`` into ``output_dir``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    projects = parse(Path(curated).read_text(encoding="utf-8"))
    unknown = set(projects) - set(OUTPUTS)
    missing = set(OUTPUTS) - set(projects)
    if unknown or missing:
        raise ValueError(f"curated.txt must list exactly {sorted(OUTPUTS)}; "
                         f"unknown {sorted(unknown)}, missing {sorted(missing)}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for key, filename in OUTPUTS.items():
        path = out / filename
        path.write_bytes(render(projects[key]))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: build_curated.py [OUTPUT_DIR]", file=sys.stderr)
        return 2
    for path in build(args[0] if args else HERE):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
