"""The bench names its results file after what ran, and never replaces an earlier run's."""

from __future__ import annotations

from pathlib import Path

from bench.profiles import SCENARIOS
from bench.run import results_stem

ALL = set(SCENARIOS)


def test_the_name_says_profile_scenarios_and_flags(tmp_path: Path) -> None:
    assert results_stem(tmp_path, "2026-12-03", "full", ALL, ()) == "2026-12-03"
    assert results_stem(tmp_path, "2026-12-03", "quick", ALL, ()) == "2026-12-03-quick"
    flags = ("--processes", "1", "--release-window", "1000")
    assert (
        results_stem(tmp_path, "2026-12-03", "full", ALL - {"rss"}, flags)
        == "2026-12-03-skip-rss-processes-1-release-window-1000"
    )
    assert results_stem(tmp_path, "2026-12-03", "full", {"rss"}, ()) == "2026-12-03-only-rss"


def test_a_second_run_of_the_day_gets_its_own_file(tmp_path: Path) -> None:
    first = results_stem(tmp_path, "2026-12-03", "full", {"rss"}, ())
    (tmp_path / f"{first}.json").write_text("{}")
    second = results_stem(tmp_path, "2026-12-03", "full", {"rss"}, ())
    assert second == "2026-12-03-only-rss-run2"
    (tmp_path / f"{second}.json").write_text("{}")
    assert results_stem(tmp_path, "2026-12-03", "full", {"rss"}, ()) == "2026-12-03-only-rss-run3"
