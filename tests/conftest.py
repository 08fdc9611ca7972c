"""Shared test configuration.

Hypothesis runs derandomized (a fixed seed per test) so that a run on CI is
reproducible; set ``POSREF_HYPOTHESIS_PROFILE=explore`` to search with fresh
random seeds and more examples.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("explore", deadline=None, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("POSREF_HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402

#: Variables pytest-xdist sets in its workers; a pytest run that a test starts (pytester, a subprocess)
#: is not a worker, and plugins that read them (pytest-benchmark) would think it is.
_XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.fixture(autouse=True)
def _not_an_xdist_worker_inside(monkeypatch):
    for name in _XDIST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
