pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.workers",
    "tests.fixtures.targets",
    "tests.fixtures.receivers",
]
