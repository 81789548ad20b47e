"""The bench's CPU per item (`bench.cpu`) and the table's throughput and CPU rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from bench.cpu import CpuMeter, jit_cpu_s, process_cpu_s
from bench.report import table

#: a process that spends this much CPU, says so, and waits for its stdin to close
SPIN_S = 0.4
_SPIN = textwrap.dedent(
    f"""
    import sys, time
    while time.process_time() < {SPIN_S}:
        pass
    print("spun", flush=True)
    sys.stdin.read()
    """
)


def _spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _wait_spun(proc: subprocess.Popen[str], times: int = 1) -> None:
    assert proc.stdout is not None
    for _ in range(times):
        assert proc.stdout.readline().strip() == "spun"


def _close(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)


def test_the_meter_counts_a_process_and_its_descendants_but_not_the_bench() -> None:
    # a parent that starts a spinning child, spins itself, then waits for its stdin
    parent = _spawn(
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {_SPIN!r}], stdin=subprocess.PIPE)\n"
        f"{_SPIN}\n"
        "child.stdin.close()\n"
        "child.wait()\n"
    )
    try:
        meter = CpuMeter.start({"worker": [parent.pid]})
        _wait_spun(parent)
        # the child has spun too by the time the parent (which started it first) has
        for _ in range(200):
            if process_cpu_s(parent.pid) >= 2 * SPIN_S * 0.95:
                break
            time.sleep(0.05)
        used = meter.used(items=1000)
    finally:
        _close(parent)
    cpu = used["cpu_s"]
    assert isinstance(cpu, dict)
    assert cpu["worker"] >= 2 * SPIN_S * 0.9  # parent and child
    assert cpu["bench"] < SPIN_S  # the test's own process only waited
    assert cpu["all"] == round(cpu["worker"] + cpu["bench"], 2)
    assert used["cpu_us_per_item"] == round(cpu["all"] / 1000 * 1e6, 1)


def test_jit_cpu_counts_only_threads_named_as_hotspot_compilers() -> None:
    # a thread named as HotSpot names its compilers spins; the main thread spins as long
    spin = (
        "import sys, threading, time\n"
        "spun = threading.Event()\n"
        "def compiler():\n"
        "    tid = threading.get_native_id()\n"
        "    with open(f'/proc/self/task/{tid}/comm', 'w') as comm:\n"
        "        comm.write('C2 CompilerThread0')\n"
        f"    while time.thread_time() < {SPIN_S}:\n"
        "        pass\n"
        "    spun.set()\n"
        "    threading.Event().wait()  # alive (a thread gone leaves /proc) to the end\n"
        "threading.Thread(target=compiler, daemon=True).start()\n"
        f"while time.thread_time() < {SPIN_S}:\n"
        "    pass\n"
        "spun.wait()\n"
        "print('spun', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = _spawn(spin)
    try:
        _wait_spun(proc)
        compiling, whole = jit_cpu_s(proc.pid), process_cpu_s(proc.pid)
    finally:
        _close(proc)
    assert SPIN_S * 0.9 <= compiling < SPIN_S * 1.5
    assert whole >= compiling + SPIN_S * 0.9
    assert jit_cpu_s(proc.pid) == 0.0  # gone


def test_a_process_gone_counts_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert process_cpu_s(proc.pid) == 0.0


def test_the_table_gives_cpu_per_item_ratios_as_items_per_cpu_second() -> None:
    scenarios = {
        "single": {"items": 1000, "items_per_s": 100.0, "cpu_us_per_item": 200.0},
        "limit": {"single": {"items": 1000, "items_per_s": 400.0, "cpu_us_per_item": 50.0}},
        "celery": {"single": {"items": 1000, "items_per_s": 10.0, "cpu_us_per_item": 2000.0}},
    }
    row = next(line for line in table({"scenarios": scenarios}).splitlines() if "(a) CPU" in line)
    assert row.split()[-5:] == ["200.0", "50.0", "2,000.0", "0.25x", "10.00x"]
    assert "(b) CPU" not in table({"scenarios": scenarios})  # not measured: no row


def test_the_table_names_the_size_of_a_run_of_celery_alone() -> None:
    scenarios = {"celery": {"single": {"items": 1000, "items_per_s": 10.0}}}
    row = next(line for line in table({"scenarios": scenarios}).splitlines() if "(a) one" in line)
    assert "[1,000]" in row
