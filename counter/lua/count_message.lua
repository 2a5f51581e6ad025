-- Count one message once within the dedupe TTL, atomically.
--
-- KEYS[1]  seen key     dedupe record: created_at of the counted message, in epoch microseconds
-- KEYS[2]  hours key    hash of hour "HH" -> messages counted in that UTC hour
-- KEYS[3]  total key    running total of the counting day
-- KEYS[4]  outbox key   stream of daily-total events waiting for delivery
-- ARGV[1]  created_at in epoch microseconds (compares instants, whatever offset was sent)
-- ARGV[2]  hour field ("00".."23")
-- ARGV[3]  dedupe TTL in seconds
-- ARGV[4]  account_id
-- ARGV[5]  counting day (YYYY-MM-DD)
-- ARGV[6]  message_id
-- ARGV[7]  computed_at in epoch milliseconds
--
-- Returns {"counted", day_total} for a new message, {"duplicate", day_total} when the id
-- was counted with the same created_at, and {"reused", day_total, stored_created_us}
-- when it was counted with another created_at. Only "counted" writes anything.

local seen_key, hours_key, total_key, outbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local created_us = ARGV[1]
local hour_field = ARGV[2]
local dedupe_ttl_s = ARGV[3]
local account_id, day, message_id = ARGV[4], ARGV[5], ARGV[6]
local computed_at_ms = ARGV[7]

local previous = redis.call('SET', seen_key, created_us, 'NX', 'GET', 'EX', dedupe_ttl_s)
if previous then
    local total = tonumber(redis.call('GET', total_key) or '0')
    if previous == created_us then
        return {'duplicate', total}
    end
    return {'reused', total, previous}
end

redis.call('HINCRBY', hours_key, hour_field, 1)
local total = redis.call('INCR', total_key)
redis.call('XADD', outbox_key, '*',
    'account_id', account_id,
    'date', day,
    'total', total,
    'message_id', message_id,
    'computed_at', computed_at_ms)
return {'counted', total}
