"""Redis key layout in counter.keys: injectivity, hash tags and sharding."""

from __future__ import annotations

import itertools
import random
from datetime import date

import pytest

from counter.keys import (
    DEFAULT_SHARD_COUNT,
    SHARD_COUNT_KEY,
    dead_letter_key,
    hour_field,
    hours_key,
    outbox_key,
    seen_key,
    shard_of,
    total_key,
)

# Pieces chosen to confuse a key parser: separators, hash-tag braces, digits that look
# like a length prefix, and multi-byte characters whose byte and character lengths differ.
PIECES = ["a", "b", "1", "12", ":", "::", "{", "}", "{1}", " ", "ü", "日本", "a:1", "1:b", "3:"]
RANDOM_ALPHABET = "ab1:{} ü日"
RANDOM_ID_COUNT = 150
DATES = [date(2025, 9, 18), date(2025, 9, 19), date(2025, 1, 1), date(1, 1, 1), date(9999, 12, 31)]


def id_corpus() -> list[str]:
    """Build a fixed corpus of ids: every piece, every pair of pieces, and seeded random ids.

    Pairs of pieces make many ids prefixes of each other, such as "a", "a:" and "a:1".
    """
    ids = set(PIECES)
    ids.update(first + second for first, second in itertools.product(PIECES, repeat=2))
    rng = random.Random(20250918)
    for _ in range(RANDOM_ID_COUNT):
        length = rng.randint(1, 6)
        ids.add("".join(rng.choice(RANDOM_ALPHABET) for _ in range(length)))
    return sorted(ids)


IDS = id_corpus()


def hash_tag(key: str) -> str:
    """Return the Redis Cluster hash tag: the text between the first '{' and the next '}'."""
    start = key.index("{") + 1
    end = key.index("}", start)
    return key[start:end]


def shard(account_id: str) -> int:
    return shard_of(account_id, DEFAULT_SHARD_COUNT)


def test_id_corpus_covers_hard_cases() -> None:
    assert len(IDS) > 300
    assert "a" in IDS
    assert "a:" in IDS
    assert "a:1" in IDS
    assert "a:1:" in IDS
    assert "{1}" in IDS
    assert "日本ü" in IDS


def test_seen_key_injective() -> None:
    pairs = list(itertools.product(IDS, repeat=2))

    keys = {seen_key(shard(account), account, message) for account, message in pairs}

    assert len(keys) == len(pairs)


def test_seen_key_injective_within_one_shard() -> None:
    # Accounts that land in the same shard must still get different keys.
    pairs = list(itertools.product(IDS, repeat=2))

    keys = {seen_key(0, account, message) for account, message in pairs}

    assert len(keys) == len(pairs)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a:1", "b"), ("a", "1:b")),
        (("a", "1:b"), ("a:1", "b")),
        (("1:a", "b"), ("1", "a:b")),
        (("ü", "x"), ("üx", "")),
        (("2:ab", "c"), ("2", "ab:c")),
    ],
    ids=["colon-in-account", "colon-in-message", "digit-prefix", "multi-byte", "length-lookalike"],
)
def test_seen_key_crafted_pairs_differ(first: tuple[str, str], second: tuple[str, str]) -> None:
    # A fixed shard isolates the account and message parts of the key.
    assert seen_key(0, *first) != seen_key(0, *second)


def test_total_key_injective() -> None:
    pairs = list(itertools.product(IDS, DATES))

    keys = {total_key(shard(account), account, day) for account, day in pairs}

    assert len(keys) == len(pairs)


def test_hours_key_injective() -> None:
    pairs = list(itertools.product(IDS, DATES))

    keys = {hours_key(shard(account), account, day) for account, day in pairs}

    assert len(keys) == len(pairs)


def test_day_keys_injective_within_one_shard() -> None:
    # Accounts that land in the same shard must still get different keys.
    pairs = list(itertools.product(IDS, DATES))

    totals = {total_key(0, account, day) for account, day in pairs}
    hours = {hours_key(0, account, day) for account, day in pairs}

    assert len(totals) == len(pairs)
    assert len(hours) == len(pairs)


def test_keys_of_different_kinds_never_collide() -> None:
    seen = {seen_key(shard(account), account, message) for account in IDS for message in IDS[:40]}
    totals = {total_key(shard(account), account, day) for account in IDS for day in DATES}
    hours = {hours_key(shard(account), account, day) for account in IDS for day in DATES}
    streams = {outbox_key(number) for number in range(DEFAULT_SHARD_COUNT)}
    dead = {dead_letter_key(number) for number in range(DEFAULT_SHARD_COUNT)}
    kinds = [seen, totals, hours, streams, dead, {SHARD_COUNT_KEY}]

    for first, second in itertools.combinations(kinds, 2):
        assert first.isdisjoint(second)


@pytest.mark.parametrize("account_id", IDS[::7], ids=lambda account: repr(account))
def test_keys_of_one_message_share_shard_tag(account_id: str) -> None:
    number = shard(account_id)
    day = date(2025, 9, 18)
    message_keys = [
        seen_key(number, account_id, "m:{9}"),
        hours_key(number, account_id, day),
        total_key(number, account_id, day),
        outbox_key(number),
    ]

    for key in message_keys:
        assert hash_tag(key) == str(number), key


def test_dead_letter_key_tagged_with_shard() -> None:
    assert hash_tag(dead_letter_key(11)) == "11"


def test_shard_count_key_has_no_hash_tag() -> None:
    assert "{" not in SHARD_COUNT_KEY


@pytest.mark.parametrize(
    ("account_id", "shard_count", "expected"),
    [
        ("acc-1", 16, 1),
        ("acme", 16, 14),
        ("日本", 16, 12),
        ("a:1", 16, 6),
        ("ü", 16, 5),
        ("", 16, 0),
        ("acc-1", 1000, 9),
        ("acme", 1000, 814),
        ("日本", 1000, 756),
        ("acme", 1, 0),
    ],
    ids=[
        "acc-1-of-16",
        "acme-of-16",
        "cjk-of-16",
        "colon-of-16",
        "umlaut-of-16",
        "empty-of-16",
        "acc-1-of-1000",
        "acme-of-1000",
        "cjk-of-1000",
        "single-shard",
    ],
)
def test_shard_of_stable(account_id: str, shard_count: int, expected: int) -> None:
    # Expected values are zlib.crc32 of the UTF-8 bytes, modulo shard_count. Changing
    # them would move existing accounts' data to other shards.
    assert shard_of(account_id, shard_count) == expected


@pytest.mark.parametrize("shard_count", [1, 2, 7, 16, 1024], ids=lambda count: f"{count}-shards")
def test_shard_of_within_range(shard_count: int) -> None:
    shards = {shard_of(account, shard_count) for account in IDS}

    assert min(shards) >= 0
    assert max(shards) < shard_count


def test_shard_of_spreads_accounts() -> None:
    shards = {shard_of(f"acc-{number}", DEFAULT_SHARD_COUNT) for number in range(1000)}

    assert shards == set(range(DEFAULT_SHARD_COUNT))


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(0, "00"), (9, "09"), (10, "10"), (23, "23")],
    ids=["midnight", "one-digit", "two-digit", "last"],
)
def test_hour_field_two_digits(hour: int, expected: str) -> None:
    assert hour_field(hour) == expected
