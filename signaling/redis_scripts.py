"""The Lua scripts that keep room membership atomic in Redis (run with EVALSHA by :mod:`.redis_rooms`).

Keys live under ``icepeer:``: ``nodes`` (a sorted set of server processes by
heartbeat deadline), ``epoch`` (changes when Redis lost its data),
``room:NAME`` (peer id -> process) and ``node:ID`` (peer id -> room).
"""

from __future__ import annotations

__all__ = ["JOIN", "LEAVE", "BEAT", "RESTORE", "REAP"]

# KEYS: nodes, room, node; ARGV: node id, peer id, room size, room name
JOIN = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {'gone'} end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {'full'} end
local members = redis.call('HGETALL', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
table.insert(members, 1, 'ok')
return members
"""

# KEYS: room, node; ARGV: peer id
LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: nodes, epoch; ARGV: node id, ttl ms, the epoch this node knows, a fresh epoch
BEAT = """
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[4])
  epoch = ARGV[4]
end
if epoch ~= ARGV[3] then
  redis.call('ZADD', KEYS[1], deadline, ARGV[1])
  return {'new', epoch}
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {'reaped', epoch} end
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
return {'ok', epoch}
"""

# KEYS: node; ARGV: prefix, node id, then room, peer id pairs
RESTORE = """
for i = 3, #ARGV, 2 do
  redis.call('HSET', ARGV[1] .. 'room:' .. ARGV[i], ARGV[i + 1], ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i])
end
return 0
"""

# KEYS: nodes; ARGV: prefix. One dead node per call:
# {node, room, peer, n, member, node, ... (n pairs), room, peer, n, ...} or {}
REAP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #dead == 0 then return {} end
local node = dead[1]
local out = {node}
local nkey = ARGV[1] .. 'node:' .. node
local peers = redis.call('HGETALL', nkey)
for i = 1, #peers, 2 do
  local rkey = ARGV[1] .. 'room:' .. peers[i + 1]
  redis.call('HDEL', rkey, peers[i])
  local rest = redis.call('HGETALL', rkey)
  table.insert(out, peers[i + 1])
  table.insert(out, peers[i])
  table.insert(out, tostring(#rest / 2))
  for j = 1, #rest do table.insert(out, rest[j]) end
end
redis.call('DEL', nkey)
redis.call('ZREM', KEYS[1], node)
return out
"""
