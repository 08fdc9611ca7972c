"""T5 relative bias golden cases.

Every relative position in [-300, 300] for three bucket layouts, both
directions, the positions around and far beyond ``max_distance``, and the
bias for a long decoding step.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal, Values

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_REL = Arange(-300, 301)
for bidirectional in (True, False):
    for nb, md in [(32, 128), (64, 256), (16, 64)]:
        word = "bidirectional" if bidirectional else "causal"
        _add(CaseSpec(
            id=f"t5_relative_bucket.{word}.b{nb}.d{md}", function="t5_relative_bucket", inputs={"relative_position": _REL},
            params={"bidirectional": bidirectional, "num_buckets": nb, "max_distance": md}, tolerance="t5_bucket",
            description=f"every relative position in [-300, 300], {nb} buckets, max distance {md}",
        ))
_add(
    CaseSpec(id="t5_relative_bucket.bidirectional.far", function="t5_relative_bucket",
             inputs={"relative_position": Values([-10**6, -131071, -129, -128, -127, 127, 128, 129, 131071, 10**6],
                                                  "int64")},
             params={}, tolerance="t5_bucket", description="around and far beyond max_distance"),
    CaseSpec(id="t5_relative_bucket.invalid.num_buckets", function="t5_relative_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"num_buckets": 0}, expect_error="ValueError",
             error_match="num_buckets", description="no buckets"),
)
for bidirectional in (True, False):
    word = "bidirectional" if bidirectional else "causal"
    _add(CaseSpec(
        id=f"t5_relative_bias.{word}", function="t5_relative_bias",
        inputs={"table": Normal((32, 8)), "query_positions": Arange(0, 40), "key_positions": Arange(0, 40)},
        params={"bidirectional": bidirectional}, tolerance="t5_bias",
        description=f"{word} bias for 40 tokens, 8 heads",
    ))
_add(
    CaseSpec(id="t5_relative_bias.decoding_long", function="t5_relative_bias",
             inputs={"table": Normal((32, 4)), "query_positions": Values([5000], "int64"),
                     "key_positions": Arange(0, 5001)},
             params={"bidirectional": False}, tolerance="t5_bias", description="one query after 5000 cached keys"),
    CaseSpec(id="t5_relative_bias.invalid.table", function="t5_relative_bias",
             inputs={"table": Normal((30, 4)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             expect_error="ValueError", error_match="table", description="table rows must equal num_buckets"),
)
