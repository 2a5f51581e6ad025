"""Lua scripts shipped as package data, read once and registered with redis-py.

redis-py's Script runs EVALSHA and reloads the script on NOSCRIPT, so a Redis restart
that flushed the script cache costs one extra round trip.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def script_source(name: str) -> str:
    """Return the text of `counter/lua/<name>.lua`."""
    return resources.files("counter").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def register(redis: Redis, name: str) -> AsyncScript:
    return redis.register_script(script_source(name))
