"""Known divergences: lists of golden case ids on which an implementation is known to differ, with reasons.

A list is text: one case id per line, followed by a ``#`` comment that
gives the reason, or preceded by a comment block that explains the ids
below it (up to the next blank line).  ``posref check --known FILE`` and
the plugin's ``--posref-known FILE`` read such files; each built-in
adapter carries its own, ``<adapter>-<dtype>.txt`` in ``KNOWN_DIR``
(``posref/adapters/known``, the data of :mod:`posref.adapters.known`),
applied by default.
"""

from __future__ import annotations

import pathlib

__all__ = ["KNOWN_DIR", "known_divergences", "known_file", "parse_known"]

#: The directory of the built-in adapters' lists (``posref/adapters/known``).
KNOWN_DIR = pathlib.Path(__file__).resolve().parent.parent / "adapters" / "known"


def parse_known(text: str) -> dict[str, str]:
    """Case id -> reason, from the text of a list.

    The reason is the comment after the id on its line, or else the comment
    block above the id (a block explains the ids that follow it, up to the
    next blank line).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    reasons: dict[str, str] = {}
    pending, after_ids = "", False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = stripped.lstrip("# ").strip()
            pending = comment if after_ids else f"{pending} {comment}".strip()
            after_ids = False
            continue
        if not stripped:
            pending, after_ids = "", False
            continue
        case_id, _, comment = stripped.partition("#")
        reasons[case_id.strip()] = comment.strip() or pending
        after_ids = True
    return reasons


def known_file(adapter: str, dtype: str, directory: pathlib.Path | None = None) -> pathlib.Path | None:
    """The list of ``adapter`` in ``dtype`` in ``directory`` (default ``KNOWN_DIR``), if there is one."""
    for name, value in (("adapter", adapter), ("dtype", dtype)):
        if not isinstance(value, str) or not value or "/" in value or "\\" in value or value.startswith("."):
            raise ValueError(f"{name} must be a plain name such as 'transformers' or 'float32', got {name}={value!r}")
    path = (KNOWN_DIR if directory is None else pathlib.Path(directory)) / f"{adapter}-{dtype}.txt"
    return path if path.is_file() else None


def known_divergences(adapter: str, dtype: str, directory: pathlib.Path | None = None) -> dict[str, str]:
    """Case id -> reason for a built-in adapter in a dtype (empty when it has no list)."""
    path = known_file(adapter, dtype, directory)
    return {} if path is None else parse_known(path.read_text(encoding="utf-8"))
