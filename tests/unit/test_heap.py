"""Fixing glibc's mmap threshold: after a large block is freed, a smaller large block still
gets a mapping of its own (returned to the OS when freed) instead of coming from the heap.
Each case runs in a fresh interpreter, since the threshold is process-wide."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

# Where a 512 KiB block lands after a 1 MiB one was freed: the bytes glibc holds in
# mappings of their own while it is alive (mallinfo2's `hblkhd`), before and with it.
PROBE = """
import ctypes, sys
from streams.heap import fix_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc.free(libc.malloc(1 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(512 << 10)
print(libc.mallinfo2().hblkhd - before)
libc.free(block)
"""


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018 - glibc >= 2.33
    except (OSError, AttributeError):
        return False
    return True


def mapped_bytes_for_the_smaller_block(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc's mallinfo2")
def test_a_large_block_keeps_its_own_mapping_after_a_larger_one_was_freed() -> None:
    assert mapped_bytes_for_the_smaller_block("default") == 0  # glibc raised its threshold
    assert mapped_bytes_for_the_smaller_block("fixed") >= 512 << 10


FREEZE_PROBE = """
import gc, weakref
from streams.heap import freeze_startup_objects

class Node:
    pass

kept = [Node() for _ in range(1000)]
freeze_startup_objects()
assert gc.get_freeze_count() >= len(kept), gc.get_freeze_count()
later = Node()
later.self = later  # a cycle made after the freeze is still garbage the collector finds
gone = weakref.ref(later)
del later
gc.collect()
assert gone() is None
print("ok")
"""


def test_freeze_leaves_start_up_objects_out_and_collects_later_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE_PROBE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
