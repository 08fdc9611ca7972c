"""The one exception type of the golden-corpus reader."""

from __future__ import annotations

__all__ = ["CorpusError"]


class CorpusError(ValueError):
    """A golden corpus, manifest or case file is malformed, corrupt or unsafe.

    The message names the case id and the file when the problem belongs to
    one case.  It is a :class:`ValueError`, so callers that already handle
    bad values need no new ``except`` clause.
    """
