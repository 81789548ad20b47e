"""The worker's memory: large blocks in mappings of their own, returned to the OS when freed
(glibc only), and the objects made at start-up kept out of Python's cyclic collector.

glibc serves a block of 128 KiB or more from a mapping of its own, and each time it frees
one it raises that threshold to the block's size (up to 32 MiB), so later blocks of that
size come from the heap instead. A worker allocates ~1 MB blocks in bursts (a big batch's
parts, their ledger events and changelog records); after the first burst they came from
the heap, were freed among small long-lived blocks, and the heap did not shrink again: a
100,000-item batch left a worker at ~140 MiB after its burst, against ~115 MiB with the
threshold fixed (setting it turns the adjustment off, see mallopt(3)).
"""

from __future__ import annotations

import ctypes
import gc
import sys

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial threshold, kept


def fix_mmap_threshold() -> bool:
    """Keep glibc's mmap threshold at `MMAP_THRESHOLD_BYTES`; False where there is no glibc
    to tell (another OS or C library), which changes nothing else."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def freeze_startup_objects() -> None:
    """Move every object made so far (modules, the app, its agents, tables and views, all
    living as long as the worker) out of the cyclic collector's reach (`gc.freeze`).

    A full collection walked them all: during an 80,000-item batch a worker ran ~10 full
    collections of ~37 ms each (~5% of the batch's time, and each a pause every item in
    flight waited out); with them frozen, ~4 ms each. Garbage made later is collected as
    before."""
    gc.collect()
    gc.freeze()
