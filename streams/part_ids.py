"""The item ids of a batch's accepted parts, kept by the exploder while more parts may come.

Ids are unique within a batch (contract). Validation checks a part on its own; a part that
follows others is checked here against theirs, so that an id repeated across parts is
`duplicate_item_id` wherever the parts come from (the HTTP API checks a whole submission
itself; parts sent straight to Kafka have only this check).

Each accepted part of a batch that still expects parts stores its ids as digests (16 bytes
of BLAKE2b each, at most `CHUNK_IDS` per entry, so that an entry stays far below one Kafka
message in the changelog); all of the batch's entries go once its last part is accepted, or
when the exploder forgets the batch id. A one-part batch stores nothing. They are kept in
the table's store, not in memory: a 1,000,000-item batch's ids take 16 MB.

Entries are written while handling a submission of the batch's tenant, so they live in the
changelog partition of the tenant's submissions, as `submissions` does.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from hashlib import blake2b

from streams import tables
from streams.errors import SubmissionError
from streams.keys import SEP, part_key
from streams.validation import DUPLICATE_ITEM_ID, Submission

CHUNK_IDS = 16_384
DIGEST_BYTES = 16
#: at most this many of a part's repeated ids are named in the error's details
MAX_DETAILS = 100


def digests(ids: Sequence[str]) -> array[int]:
    """Each id's digest as two 64-bit words, one id after the other."""
    words = array("Q")
    words.frombytes(
        b"".join(
            blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()
            for item_id in ids
        )
    )
    return words


def repeated(new: array[int], stored: array[int], firsts: set[int] | None = None) -> list[int]:
    """The positions of the ids of `new` (`digests`) that `stored` holds too (`firsts`:
    the first words of `new`, when the caller checks `new` against many chunks).

    The first words are compared in C (`isdisjoint`); only when one matches are the pairs
    built, which is a repeated id nearly always (a false match needs 64 equal bits)."""
    if firsts is None:
        firsts = set(new[0::2])
    if firsts.isdisjoint(stored[0::2]):
        return []
    pairs = {pair for pair in zip(stored[0::2], stored[1::2], strict=True) if pair[0] in firsts}
    return [i for i, pair in enumerate(zip(new[0::2], new[1::2], strict=True)) if pair in pairs]


def digests_of(sub: Submission) -> array[int] | None:
    """The part's ids as `digests`, or None when the batch is one part (nothing to check or
    keep): computed once for `problem` and `keep`."""
    return digests([item["id"] for item in sub.items]) if sub.parts > 1 else None


def problem(sub: Submission, new: array[int] | None) -> SubmissionError | None:
    """`duplicate_item_id` when an item of this part (its ids' `digests_of`: `new`) has the
    id of an item of an earlier part of its batch, one detail per such item (at most
    `MAX_DETAILS`), in item order."""
    if sub.part == 0 or new is None:
        return None
    firsts = set(new[0::2])
    found: dict[int, int] = {}  # position in this part -> the earlier part
    for part in range(sub.part):
        for stored in _chunks(sub.tenant, sub.batch_id, part):
            for position in repeated(new, stored, firsts):
                found.setdefault(position, part)
    if not found:
        return None
    details = [
        {"path": f"$.items[{position}].id", "message": f"also used in part {found[position]}"}
        for position in sorted(found)[:MAX_DETAILS]
    ]
    first = min(found)
    more = f" ({len(found)} ids of this part in all)" if len(found) > 1 else ""
    return SubmissionError(
        DUPLICATE_ITEM_ID,
        f"batch {sub.batch_id} (tenant {sub.tenant}) part {sub.part}: item id "
        f"{sub.items[first]['id']!r} is also used in part {found[first]}{more}",
        details,
    )


def keep(sub: Submission, new: array[int] | None) -> None:
    """Record an accepted part (its ids' `digests_of`: `new`): its ids while parts are still
    to come, else none of the batch's (the last part forgets the earlier ones)."""
    if sub.part + 1 < sub.parts and new is not None:
        _store(sub.tenant, sub.batch_id, sub.part, new)
    elif sub.part > 0:
        forget(sub.tenant, sub.batch_id, sub.part)


def forget(tenant: str, batch_id: str, parts: int) -> None:
    """Delete the ids of the batch's parts below `parts`."""
    for part in range(parts):
        _delete_from(tenant, batch_id, part, 0)


def _store(tenant: str, batch_id: str, part: int, new: array[int]) -> None:
    chunks = range(0, len(new), 2 * CHUNK_IDS)  # two words per id
    for number, start in enumerate(chunks):
        chunk = new[start : start + 2 * CHUNK_IDS]
        tables.part_ids[_key(tenant, batch_id, part, number)] = chunk.tobytes()
    # a copy of this part with other content (stored before a crash, never recorded) may
    # have left more chunks
    _delete_from(tenant, batch_id, part, len(chunks))


def _chunks(tenant: str, batch_id: str, part: int) -> Iterator[array[int]]:
    number = 0
    while (value := tables.part_ids.get(_key(tenant, batch_id, part, number))) is not None:
        words = array("Q")
        words.frombytes(value)
        yield words
        number += 1


def _delete_from(tenant: str, batch_id: str, part: int, number: int) -> None:
    while (key := _key(tenant, batch_id, part, number)) in tables.part_ids:
        del tables.part_ids[key]
        number += 1


def _key(tenant: str, batch_id: str, part: int, chunk: int) -> str:
    return f"{part_key(tenant, batch_id, part)}{SEP}{chunk:04d}"
