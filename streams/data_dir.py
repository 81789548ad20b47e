"""A worker's data dir belongs to the Kafka cluster its tables were filled from.

Faust's RocksDB stores keep the changelog offsets they have read. On another cluster (a
broker that came back without its data, `batchwire kafka up` formatting anew, a new
cluster at the same address) those offsets lie past the new changelogs' ends, and faust's
recovery stopped the worker at every start with a ConsistencyError until someone removed
the data dir by hand. The data dir now records the cluster's id (`CLUSTER_ID_FILE`); a
worker that finds another cluster moves the old contents aside, to
`<data dir>.cluster-<old id>`, and starts empty: the tables then hold what the current
cluster's changelogs hold, and the old state (of batches the lost cluster held) stays on
disk for whoever wants to look at it.

A data dir is one worker's (`lock`): a second worker started on it by mistake ran
without a word, and the two would open the same RocksDB stores as partitions moved
between them.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from streams.errors import InUse

log = logging.getLogger(__name__)
CLUSTER_ID_FILE = "kafka-cluster-id"
#: the open lock files of this process's data dirs: a lock lasts as long as its file is open
_held: dict[Path, IO[str]] = {}


def lock(data_dir: Path) -> None:
    """Hold `<data dir>.lock`, beside the data dir (`claim` may move the dir itself
    aside), until this process ends; `InUse` when another process holds it."""
    path = data_dir.with_name(f"{data_dir.name}.lock")
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise InUse(
            f"the data dir {data_dir} (BATCHWIRE_DATA_DIR) is in use by another worker"
            f"{f' (pid {holder})' if holder else ''}: each worker needs its own"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held[path] = handle


def claim(data_dir: Path, cluster_id: str) -> Path | None:
    """Make `data_dir` the one of `cluster_id`; returns where another cluster's contents
    were moved, if they were."""
    marker = data_dir / CLUSTER_ID_FILE
    moved = None
    if marker.exists():
        previous = marker.read_text().strip()
        if previous == cluster_id:
            return None
        moved = _free_name(data_dir.with_name(f"{data_dir.name}.cluster-{previous}"))
        data_dir.rename(moved)
        log.warning(
            "%s holds the tables of Kafka cluster %s, not of %s at the bootstrap address; "
            "moved to %s, starting with empty tables",
            data_dir,
            previous,
            cluster_id,
            moved,
        )
    # a data dir without the file (new, or from a version before it) is taken as it is
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(cluster_id + "\n")
    return moved


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate
