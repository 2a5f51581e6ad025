-- Move the oldest dead letters back to the outbox for another round of delivery.
--
-- KEYS[1]  dead-letter key
-- KEYS[2]  outbox key
-- ARGV[1]  the most entries to move
--
-- Each event goes back with its original fields only, so its event id is unchanged and
-- its age restarts from the replay. Returns how many entries were moved.

local dead_key, outbox_key = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[1])
local event_fields = {account_id = true, date = true, total = true, message_id = true,
                      computed_at = true}

local entries = redis.call('XRANGE', dead_key, '-', '+', 'COUNT', limit)
for _, entry in ipairs(entries) do
    local entry_id, fields = entry[1], entry[2]
    local event_pairs = {}
    for i = 1, #fields, 2 do
        if event_fields[fields[i]] then
            table.insert(event_pairs, fields[i])
            table.insert(event_pairs, fields[i + 1])
        end
    end
    redis.call('XADD', outbox_key, '*', unpack(event_pairs))
    redis.call('XDEL', dead_key, entry_id)
end
return #entries
