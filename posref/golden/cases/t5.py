"""T5 relative bias golden cases.

Every relative position in [-300, 300] for three bucket layouts, both
directions, the positions around and far beyond ``max_distance``, and the
bias for a long decoding step.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal, Values
from posref.golden.strategies import MAX_POSITION, composite, even, positions_1d, st, strategy

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


# -- fuzz strategies -------------------------------------------------------------------------


@composite
def t5_options(draw):
    """Valid ``bidirectional``, ``num_buckets`` and ``max_distance``."""
    bidirectional = draw(st.booleans())
    num_buckets = draw(even(4, 128)) if bidirectional else draw(st.integers(2, 128))
    max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    max_distance = draw(st.one_of(st.sampled_from((128, 256)).filter(lambda m: m > max_exact),
                                  st.integers(max_exact + 1, 4096)))
    return {"bidirectional": bidirectional, "num_buckets": num_buckets, "max_distance": max_distance}


@strategy("t5_relative_bucket", tolerance="t5_bucket")
def t5_relative_bucket_case(draw, ctx):
    if draw(st.booleans()):
        count = draw(st.integers(1, 32))
        signed = st.one_of(st.integers(-64, 64), st.integers(-MAX_POSITION, MAX_POSITION))
        relative = Values(draw(st.lists(signed, min_size=count, max_size=count)), "int64")
    else:
        half = draw(st.integers(0, 300))
        relative = Arange(-half, half + 1)
    return ctx.case(draw, {"relative_position": relative}, draw(t5_options()))


@strategy("t5_relative_bias", tolerance="t5_bias")
def t5_relative_bias_case(draw, ctx):
    options = draw(t5_options())
    inputs = {"table": Normal((options["num_buckets"], draw(st.integers(1, 16)))),
              "query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
              "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
    return ctx.case(draw, inputs, options)
