"""`streams.stop_deadline` ends a process whose stop outlasts its deadline (in a child
process: it ends the process it runs in)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from streams.stop_deadline import EXIT_STATUS


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_process_still_running_at_its_deadline_ends_saying_why() -> None:
    done = _run(
        """
        import time
        from streams import stop_deadline
        stop_deadline.arm(0.2, "told to stop")
        stop_deadline.arm(30, "told again")  # the first deadline stands
        time.sleep(20)
        print("not ended")
        """
    )
    assert done.returncode == EXIT_STATUS
    assert "not ended" not in done.stdout
    assert "told to stop: not stopped within 0.2 s" in done.stderr


def test_a_process_that_ends_first_keeps_its_own_exit_status() -> None:
    done = _run(
        """
        from streams import stop_deadline
        stop_deadline.arm(30, "told to stop")
        print("ended")
        """
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ended")
