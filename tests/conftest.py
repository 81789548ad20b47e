from collections.abc import Iterator

import pytest

from tests.fixtures.hostile import load_profile

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.workers",
    "tests.fixtures.targets",
    "tests.fixtures.receivers",
]

load_profile()  # hypothesis: `ci` unless BATCHWIRE_HYPOTHESIS_PROFILE says `soak`


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can see whether it failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
