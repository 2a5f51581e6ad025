"""Every Redis key the service uses, built in one place.

Layout, with `{S}` the account's shard number used as the Redis Cluster hash tag:

    mc:shard-count                              shard count the data was written with
    mc:{S}:seen:<len(account)>:<account>:<message_id>   dedupe record of one message
    mc:{S}:hours:<YYYY-MM-DD>:<account>         hash of hour "HH" -> count, one UTC date
    mc:{S}:total:<YYYY-MM-DD>:<account>         running total of one counting day
    mc:{S}:outbox                               stream of daily-total events to deliver
    mc:{S}:dead                                 stream of events that failed for good

Every key one script touches carries the same tag, so a cluster keeps them in one slot.
Keys are injective. The tag and kind come first, and the date has a fixed width. The
account id is length-prefixed wherever another free-form id follows it. So no two
different ids map to the same key, whatever characters they contain.
"""

from __future__ import annotations

import zlib
from datetime import date

PREFIX = "mc"
SHARD_COUNT_KEY = f"{PREFIX}:shard-count"
CONSUMER_GROUP = "dispatchers"
DEFAULT_SHARD_COUNT = 16


def shard_of(account_id: str, shard_count: int) -> int:
    """Map an account to its shard with CRC-32, which is stable across processes and versions."""
    return zlib.crc32(account_id.encode()) % shard_count


def _tagged(shard: int) -> str:
    return f"{PREFIX}:{{{shard}}}"


def seen_key(shard: int, account_id: str, message_id: str) -> str:
    return f"{_tagged(shard)}:seen:{len(account_id)}:{account_id}:{message_id}"


# NOTE: hours and total keys never expire, so Redis memory grows with every account-day.
def hours_key(shard: int, account_id: str, day: date) -> str:
    return f"{_tagged(shard)}:hours:{day.isoformat()}:{account_id}"


def total_key(shard: int, account_id: str, day: date) -> str:
    return f"{_tagged(shard)}:total:{day.isoformat()}:{account_id}"


def outbox_key(shard: int) -> str:
    return f"{_tagged(shard)}:outbox"


def dead_letter_key(shard: int) -> str:
    return f"{_tagged(shard)}:dead"


def hour_field(hour: int) -> str:
    """Name the field of an hour (0-23) inside an hours hash."""
    return f"{hour:02d}"
