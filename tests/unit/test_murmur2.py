"""`streams.murmur2` gives the partitions Kafka's (and aiokafka's) default partitioner gives."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference

from streams.murmur2 import default_partition, murmur2


def test_murmur2_matches_aiokafka_for_keys_of_every_length_up_to_200_bytes() -> None:
    rng = random.Random(11)
    for length in range(201):
        for _ in range(40):
            key = rng.randbytes(length)
            assert murmur2(key) == reference(key), key


def test_murmur2_of_batchwire_keys_and_high_bytes() -> None:
    keys = [b"acme/bench-0e994c1d/12345", "tenant/ünïcode/é".encode(), b"\xff" * 7, b""]
    for key in keys:
        assert murmur2(key) == reference(key), key


def test_default_partition_matches_the_default_partitioner() -> None:
    rng = random.Random(5)
    partitioner = DefaultPartitioner()
    for count in (1, 3, 8, 12):
        partitions = list(range(count))
        for _ in range(500):
            key = rng.randbytes(rng.randrange(1, 64))
            assert default_partition(key, count) == partitioner(key, partitions, partitions)
