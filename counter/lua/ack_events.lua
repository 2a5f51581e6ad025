-- Acknowledge delivered or superseded events and delete them from the outbox, atomically.
--
-- KEYS[1]  outbox key
-- ARGV[1]  consumer group
-- ARGV[2..] stream entry ids
--
-- Returns how many entries were deleted. Deleting keeps the stream's length equal to the
-- backlog of undelivered events.

local outbox_key, group = KEYS[1], ARGV[1]
local ids = {unpack(ARGV, 2)}

redis.call('XACK', outbox_key, group, unpack(ids))
return redis.call('XDEL', outbox_key, unpack(ids))
