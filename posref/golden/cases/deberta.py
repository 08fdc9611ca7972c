"""DeBERTa golden cases.

The log buckets of DeBERTa-v3 at and around every boundary (both signs), a
bucket count where the exact ceiling and a float ceiling differ, and the
disentangled c2p + p2c scores with and without buckets.
"""

from __future__ import annotations

from typing import Any

from posref.golden.registry import Arange, CaseSpec, Normal, Values
from posref.golden.strategies import MAX_POSITION, composite, lead_shape, positions_1d, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_BOUNDARY = [0, 1, 127, 128, 129, 255, 256, 257, 511, 512, 513, 4000]
_DEBERTA_REL = Values(sorted({s * r for r in _BOUNDARY for s in (1, -1)}), "int64")
_add(
    CaseSpec(id="deberta_log_bucket.b256.m512.boundaries", function="deberta_log_bucket",
             inputs={"relative_position": _DEBERTA_REL}, params={"bucket_size": 256, "max_position": 512},
             tolerance="exact",
             description="DeBERTa-v3 buckets at |r| = 127, 128, 129, 255, 256, 257, 511, 512, 513, 4000, both signs"),
    CaseSpec(id="deberta_log_bucket.b256.m512.sweep", function="deberta_log_bucket",
             inputs={"relative_position": Arange(-600, 601)}, params={"bucket_size": 256, "max_position": 512},
             tolerance="exact", description="every relative position in [-600, 600]"),
    CaseSpec(id="deberta_log_bucket.b4.m11.exact_ceiling", function="deberta_log_bucket",
             inputs={"relative_position": Values([-250, -249, -3, -2, 0, 2, 3, 10, 50, 249, 250, 251], "int64")},
             params={"bucket_size": 4, "max_position": 11}, tolerance="exact",
             description="ln(125)/ln(5) = 3 exactly at |r| = 250: bucket 5, where a float ceiling gives 6"),
    CaseSpec(id="deberta_log_bucket.invalid.max_position", function="deberta_log_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"bucket_size": 256, "max_position": 129},
             expect_error="ValueError", error_match="max_position",
             description="max_position must exceed bucket_size // 2 + 1"),
    CaseSpec(id="deberta_log_bucket.invalid.bucket_size", function="deberta_log_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"bucket_size": 1, "max_position": 512},
             expect_error="ValueError", error_match="bucket_size", description="fewer than 2 buckets"),
)
_add(
    CaseSpec(id="deberta_relative_scores.buckets", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 12, 8)), "k": Normal((1, 2, 12, 8)), "pos_key": Normal((2, 8, 8)),
                     "pos_query": Normal((2, 8, 8)), "query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"bucket_size": 4, "max_position": 11}, tolerance="contraction",
             description="c2p + p2c with log buckets (span 4) over 12 tokens, out-of-range rows clamped"),
    CaseSpec(id="deberta_relative_scores.no_buckets", function="deberta_relative_scores",
             inputs={"q": Normal((2, 2, 6, 8)), "k": Normal((2, 2, 6, 8)), "pos_key": Normal((2, 6, 8)),
                     "pos_query": Normal((2, 6, 8)), "query_positions": Arange(0, 6), "key_positions": Arange(0, 6)},
             params={"bucket_size": None, "max_position": 3}, tolerance="contraction",
             description="DeBERTa v1 style: no buckets, span 3, distances beyond it clamped"),
    CaseSpec(id="deberta_relative_scores.c2p_only.decoding", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 9, 8)), "pos_key": Normal((2, 8, 8)),
                     "query_positions": Arange(6, 9), "key_positions": Arange(0, 9)},
             params={"pos_query": None, "bucket_size": 4, "max_position": 11, "p2c": False},
             tolerance="contraction", description="c2p only (f = 2), the last 3 of 9 tokens as queries"),
    CaseSpec(id="deberta_relative_scores.invalid.table_shape", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 3, 8)), "pos_key": Normal((2, 6, 8)),
                     "pos_query": Normal((2, 8, 8)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"bucket_size": 4, "max_position": 11}, expect_error="ValueError", error_match="pos_key",
             description="the key table needs 2 * span = 8 rows"),
    CaseSpec(id="deberta_relative_scores.invalid.missing_table", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 3, 8)), "pos_query": Normal((2, 8, 8)),
                     "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"pos_key": None, "bucket_size": 4, "max_position": 11}, expect_error="TypeError",
             error_match="pos_key", description="c2p enabled without its table"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@composite
def deberta_options(draw):
    """Valid ``bucket_size`` and ``max_position``."""
    bucket_size = draw(st.one_of(st.sampled_from((4, 256)), st.integers(2, 512)))
    max_position = draw(st.one_of(st.just(512), st.integers(bucket_size // 2 + 2, 4096))
                        .filter(lambda m: m > bucket_size // 2 + 1))
    return {"bucket_size": bucket_size, "max_position": max_position}


@strategy("deberta_log_bucket", tolerance="exact")
def deberta_log_bucket_case(draw, ctx):
    count = draw(st.integers(1, 32))
    signed = st.one_of(st.integers(-64, 64), st.integers(-4096, 4096), st.integers(-MAX_POSITION, MAX_POSITION))
    relative = Values(draw(st.lists(signed, min_size=count, max_size=count)), "int64")
    return ctx.case(draw, {"relative_position": relative}, draw(deberta_options()))


@strategy("deberta_relative_scores", tolerance="contraction")
def deberta_relative_scores_case(draw, ctx):
    if draw(st.booleans()):
        params: dict[str, Any] = draw(deberta_options())
        span = params["bucket_size"]
    else:
        span = draw(st.integers(1, 32))
        params = {"bucket_size": None, "max_position": span}
    c2p, p2c = draw(st.sampled_from(((True, True), (True, False), (False, True))))
    params.update(c2p=c2p, p2c=p2c)
    lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 16))
    tq, tk = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    table = Normal((heads, 2 * span, d))
    inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)),
              "pos_key": table if c2p else None, "pos_query": table if p2c else None,
              "query_positions": draw(positions_1d(tq, 4096)), "key_positions": draw(positions_1d(tk, 4096))}
    inputs = {name: value for name, value in inputs.items() if value is not None}
    if not c2p:
        params["pos_key"] = None
    if not p2c:
        params["pos_query"] = None
    return ctx.case(draw, inputs, params)
