"""The golden corpus committed under conformance/golden is whole, current and small."""

import pathlib

from posref.golden import read_corpus, verify_corpus
from posref.golden.cases import CASES
from posref.golden.registry import build_cases

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "conformance" / "golden"


def test_committed_corpus_is_current():
    report = verify_corpus(CORPUS, build_cases(CASES))
    assert report.ok, f"regenerate with: posref golden generate --out conformance/golden --force\n{report}"


def test_committed_corpus_stays_under_40_mb():
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 40 * 10**6, f"corpus is {size / 10**6:.1f} MB"


def test_committed_corpus_reads_back_through_the_public_reader():
    cases = read_corpus(CORPUS)
    assert len(cases) == len(CASES)
    invalid = [c for c in cases if c.expect_error]
    assert invalid and all(not c.outputs for c in invalid)
