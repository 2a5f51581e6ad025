"""The `counter outbox status` table rendered by counter.cli.format_status."""

from __future__ import annotations

from counter.cli import format_status
from counter.outbox import ShardStatus

HEADER = ["shard", "backlog", "pending", "oldest_age_s", "dead_letters"]


def cells(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()]


def shard(
    number: int, backlog: int, pending: int, oldest_age_s: float | None, dead_letters: int
) -> ShardStatus:
    return ShardStatus(
        shard=number,
        backlog=backlog,
        pending=pending,
        oldest_age_s=oldest_age_s,
        dead_letters=dead_letters,
    )


def test_format_status_one_row_per_shard() -> None:
    shards = [shard(0, 3, 1, 12.34, 0), shard(1, 0, 0, None, 2), shard(2, 7, 4, 0.06, 1)]

    rows = cells(format_status(shards))

    assert rows[0] == HEADER
    assert rows[1] == ["0", "3", "1", "12.3", "0"]
    assert rows[2] == ["1", "0", "0", "-", "2"]
    assert rows[3] == ["2", "7", "4", "0.1", "1"]
    assert len(rows) == 5


def test_format_status_all_row_sums() -> None:
    shards = [shard(0, 3, 1, 12.34, 0), shard(1, 0, 0, None, 2), shard(2, 7, 4, 99.96, 1)]

    rows = cells(format_status(shards))

    assert rows[-1] == ["all", "10", "5", "100.0", "3"]


def test_format_status_all_row_takes_oldest_age() -> None:
    shards = [shard(0, 1, 0, 5.0, 0), shard(1, 1, 0, 50.0, 0), shard(2, 1, 0, 20.0, 0)]

    rows = cells(format_status(shards))

    assert rows[-1][3] == "50.0"


def test_format_status_dash_when_no_age() -> None:
    shards = [shard(0, 0, 0, None, 0), shard(1, 0, 0, None, 0)]

    rows = cells(format_status(shards))

    assert rows[1][3] == "-"
    assert rows[2][3] == "-"
    assert rows[-1] == ["all", "0", "0", "-", "0"]


def test_format_status_zero_age_is_not_dash() -> None:
    rows = cells(format_status([shard(0, 1, 1, 0.0, 0)]))

    assert rows[1][3] == "0.0"
    assert rows[-1][3] == "0.0"


def test_format_status_no_shards() -> None:
    rows = cells(format_status([]))

    assert rows == [HEADER, ["all", "0", "0", "-", "0"]]


def test_format_status_columns_right_aligned() -> None:
    lines = format_status([shard(0, 3, 1, 12.34, 0), shard(15, 12345, 0, None, 7)]).splitlines()

    assert len({len(line) for line in lines}) == 1
    assert lines[1].endswith(" 0")
    assert lines[2].startswith("   15")
