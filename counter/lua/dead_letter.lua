-- Move one outbox event to the dead-letter stream, atomically.
--
-- KEYS[1]  outbox key
-- KEYS[2]  dead-letter key
-- ARGV[1]  consumer group
-- ARGV[2]  outbox entry id
-- ARGV[3]  last HTTP status, or "" when no response arrived
-- ARGV[4]  last error, in words
-- ARGV[5]  delivery attempts made
-- ARGV[6]  dead-lettered at, epoch milliseconds
--
-- Returns 1 when moved, 0 when the entry is gone (another dispatcher delivered or moved
-- it first), so an event is never dead-lettered twice.

local outbox_key, dead_key = KEYS[1], KEYS[2]
local group, entry_id = ARGV[1], ARGV[2]
local last_status, last_error, attempts, dead_at_ms = ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local entries = redis.call('XRANGE', outbox_key, entry_id, entry_id)
if #entries == 0 then
    redis.call('XACK', outbox_key, group, entry_id)
    return 0
end

local fields = entries[1][2]
table.insert(fields, 'outbox_id')
table.insert(fields, entry_id)
table.insert(fields, 'last_status')
table.insert(fields, last_status)
table.insert(fields, 'last_error')
table.insert(fields, last_error)
table.insert(fields, 'attempts')
table.insert(fields, attempts)
table.insert(fields, 'dead_at')
table.insert(fields, dead_at_ms)

redis.call('XADD', dead_key, '*', unpack(fields))
redis.call('XACK', outbox_key, group, entry_id)
redis.call('XDEL', outbox_key, entry_id)
return 1
