-- Move dead letters back to the outbox for another round of delivery, oldest first.
--
-- KEYS[1]  dead-letter key
-- KEYS[2]  outbox key
-- ARGV[1]  the most entries to examine
-- ARGV[2]  where to start: "-" for the oldest entry, or the id returned by the last call
-- ARGV[3]  the last_error prefix of entries the dispatcher found malformed
--
-- Each event goes back with its original fields only, so its event id is unchanged and
-- its age restarts from the replay. A malformed outbox entry stays where it is, whether
-- it lacks an event field or has one the dispatcher could not read, because it would
-- only come back. Returns {moved, next start, entries examined}.

local dead_key, outbox_key = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[1])
local start = ARGV[2]
local malformed_prefix = ARGV[3]
local event_fields = {'account_id', 'date', 'total', 'message_id', 'computed_at'}

local entries = redis.call('XRANGE', dead_key, start, '+', 'COUNT', limit)
local moved = 0
local next_start = start
for _, entry in ipairs(entries) do
    local entry_id, fields = entry[1], entry[2]
    next_start = '(' .. entry_id
    local by_name = {}
    for i = 1, #fields, 2 do
        by_name[fields[i]] = fields[i + 1]
    end
    local event_pairs = {}
    for _, name in ipairs(event_fields) do
        if by_name[name] then
            table.insert(event_pairs, name)
            table.insert(event_pairs, by_name[name])
        end
    end
    local last_error = by_name['last_error'] or ''
    local malformed = string.sub(last_error, 1, #malformed_prefix) == malformed_prefix
    if #event_pairs == 2 * #event_fields and not malformed then
        redis.call('XADD', outbox_key, '*', unpack(event_pairs))
        redis.call('XDEL', dead_key, entry_id)
        moved = moved + 1
    end
end
return {moved, next_start, #entries}
