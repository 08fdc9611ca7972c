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
