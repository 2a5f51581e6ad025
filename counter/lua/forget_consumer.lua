-- Remove a consumer from the group of one outbox stream, unless it still has pending events.
--
-- KEYS[1]  outbox key
-- ARGV[1]  consumer group
-- ARGV[2]  consumer name
--
-- Deleting a consumer drops its pending events from the group, so no other consumer
-- could claim them. A consumer with pending events therefore stays. Returns 1 when it
-- was removed.

local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then
    return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
