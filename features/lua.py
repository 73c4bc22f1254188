"""The Redis side of the online store: one Lua function library, generated per feature-set plan.

The library (``FUNCTION LOAD``, Redis >= 7.0) registers two functions, ``process`` and ``label``
(named after the library, see :func:`render`). Its top level runs once, when it is loaded: the
constants (allowed lateness, snapshot TTL), the table ``E`` (one entry per entity of the plan:
card, terminal, card x terminal, with its bucket groups, see :mod:`features.plan`: where each
lives in the entity's packed state, which raw columns it fills, how long the key must live) and
small per-group functions generated from the group's statistics. A call only runs the function's
body: building that table on every call is what made a plain ``EVALSHA`` script cost ~20 us more.

Redis runs a function atomically, so the idempotency check, the lateness check, every window
update and the snapshot of a transaction happen together or not at all: every key is read and
every result computed before the first write (a function that fails half-way is the exception
Redis does not roll back; these can only fail while decoding a broken value, before any write).

**One packed string per entity** (read with one GET, written with one SET), made with Redis's
built-in ``struct`` library (little-endian; ``d`` = double, ``I4`` = 4-byte unsigned)::

    head      d: t (the entity's latest event time, us), e (its latest event time when the key's
              TTL was last set), then per group the length of its segment in bytes (and, for a
              distinct group, its number of values), then (card) the number of recent
              transactions
    segments  one per group, in the plan's order:
      tx, label   d: A (the anchor: the bucket of the latest event when the group was last
                  written), then per window lo, hi (the first and the last record inside the
                  window seen from A, 1-based; lo > hi when it is empty) and the sums of those
                  records (tx: c [s] [q] [m], m being their max; label: n f); then the records,
                  ascending: I4 bucket, I4 count, d for each other statistic
      distinct    per value: I4 k, then its k buckets (I4), newest first
    recent    (card) d per transaction in (time, id) order: event time, latitude, longitude
    strings   I4 length + bytes: the distinct groups' values in order, then the recent
              transactions' tie keys (:func:`features.plan.tie_key`)

Numbers are integers (event times in us, bucket indexes, counts, cents and their sums): exact in
doubles below 2^53 and in I4 below 2^32 (the wire schema keeps event times in 1970..2100, so a
bucket index of 1 s or more fits). The window sums are **running totals**: a transaction in the
anchor's bucket or later (the common, in-order case) reads its windows from the group's head and
touches only the records that leave or enter a window when the anchor moves (each record once per
window), so its cost does not grow with the history; a distinct window reads each value's newest
bucket. An event older than the anchor (late within the allowed lateness, or a terminal's lagging
one) takes the exact fallback: the group's records are scanned, and the running totals are updated
where the event falls inside them. Unchanged parts are copied as byte ranges of the old value.

The raw columns of a transaction leave ``process`` as one string of doubles (NaN = missing), which
the store reads with numpy. The key scheme and the window semantics are documented in
:mod:`features.store`.
"""

from __future__ import annotations

import hashlib
import math

from features.plan import Group, Plan

__all__ = ["ENTITY_ORDER", "Library", "entities", "render"]

#: the entities in the order of the functions' keys (after the snapshot and scored-event keys)
ENTITY_ORDER = ("card", "terminal", "card_terminal")

_COMMON = r"""
local NAN = 0 / 0
local CHUNK = 4000  -- values per struct call (the Lua C stack holds 8,000)
-- the libraries (like redis.call) only exist inside a call: the first call sets these
local spack, sunpack, floor, max, min, rep, sub, concat
local function init()
  spack, sunpack = struct.pack, struct.unpack
  floor, max, min = math.floor, math.max, math.min
  rep, sub, concat = string.rep, string.sub, table.concat
end

local function fmt(x) return string.format('%.0f', x) end

-- n values of format letter f from byte pos: a table (and the position after them)
local function get_many(f, raw, pos, n)
  if n <= CHUNK then
    local t = {sunpack('<' .. rep(f, n), raw, pos)}
    local nxt = t[n + 1]
    t[n + 1] = nil
    return t, nxt
  end
  local t, done = {}, 0
  while done < n do
    local k = min(CHUNK, n - done)
    local part = {sunpack('<' .. rep(f, k), raw, pos)}
    for j = 1, k do t[done + j] = part[j] end
    pos = part[k + 1]
    done = done + k
  end
  return t, pos
end

local function put_many(f, t, n)
  if n <= CHUNK then return spack('<' .. rep(f, n), unpack(t, 1, n)) end
  local parts = {}
  for i = 1, n, CHUNK do
    local j = min(i + CHUNK - 1, n)
    parts[#parts + 1] = spack('<' .. rep(f, j - i + 1), unpack(t, i, j))
  end
  return concat(parts)
end

local function put_strings(t, n)
  local parts = {}
  for i = 1, n, CHUNK do
    local j = min(i + CHUNK - 1, n)
    local args = {}
    for k = i, j do args[#args + 1] = #t[k]; args[#args + 1] = t[k] end
    parts[#parts + 1] = spack('<' .. rep('I4c0', j - i + 1), unpack(args))
  end
  return concat(parts)
end

-- An entity's stored value: its head, where each group's segment starts, where the recent
-- transactions start, its strings. Nothing when there is no value.
local function open(ent, raw)
  if not raw then return nil end
  local head = {sunpack(ent.hfmt, raw, 1)}
  local pos = ent.hbytes + 1
  local at, nstr = {}, 0
  for gi = 1, #ent.groups do
    local g = ent.groups[gi]
    at[gi] = pos
    pos = pos + head[g.h]
    if g.dh then nstr = nstr + head[g.dh] end
  end
  local recent = pos
  if ent.prev then
    pos = pos + 24 * head[ent.ph]
    nstr = nstr + head[ent.ph]
  end
  local strs = {}
  local done = 0
  while done < nstr do
    local k = min(CHUNK, nstr - done)
    local part = {sunpack('<' .. rep('I4c0', k), raw, pos)}
    for j = 1, k do strs[done + j] = part[j] end
    pos = part[k + 1]
    done = done + k
  end
  return head, at, recent, strs
end

-- The new value of an entity's key, and whether its TTL must be (re)set: when the key is new,
-- or when a new bucket needs the key to live longer than the TTL set at event time e gives it
-- (latest + span > e + ent.span: TTLs are wall-clock, and event time is taken to advance at
-- least as fast as the clock; see the store's docstring). pieces[1] is left for the head.
local function finish(ent, head, old_e, latest, refresh, pieces, strs)
  local e = old_e
  if e == nil or (refresh and latest + refresh > e + ent.span) then
    e = latest
    refresh = true
  else
    refresh = false
  end
  head[1], head[2] = latest, e
  pieces[1] = spack(ent.hfmt, unpack(head, 1, ent.nhead))
  pieces[#pieces + 1] = put_strings(strs, #strs)
  return concat(pieces), refresh
end

local function write(key, value, refresh, ttl)
  if refresh then
    redis.call('SET', key, value, 'EX', ttl)
  else
    redis.call('SET', key, value, 'KEEPTTL')
  end
end

-- An empty bucket-group head anchored at bucket B: every window empty.
local function empty_head(g, B)
  local gh = {B}
  for k = 1, g.nw do
    local li = g.li[k]
    gh[li], gh[li + 1] = 1, 0
    for j = 1, g.ns do gh[li + 1 + j] = 0 end
  end
  return gh
end

local function read_head(g, raw, pos, len, B)
  if len > 0 then return {sunpack(g.hfmt, raw, pos)}, (len - g.hbytes) / g.rsize end
  return empty_head(g, B), 0
end

-- Record i (1-based) of a bucket group whose records start at byte rpos: b, then the statistics.
local function rec(g, raw, rpos, i)
  return sunpack(g.rfmt, raw, rpos + g.rsize * (i - 1))
end

-- The max statistic of records lo..hi.
local function max_of(g, raw, rpos, lo, hi)
  local m = nil
  for i = lo, hi do
    local x = select(1 + g.mi, rec(g, raw, rpos, i))
    if m == nil or x > m then m = x end
  end
  return m
end

-- Put the statistics t1..t4 into bucket B of a bucket group (head gh, n records from byte rpos):
-- merged into B's record or a new record, and added to the running totals of the windows (seen
-- from the anchor) that B falls in. Appends the new records to pieces; returns their number and
-- whether B's record is new.
local function put_record(g, gh, raw, rpos, n, B, pieces, t1, t2, t3, t4)
  local i = n
  while i >= 1 and rec(g, raw, rpos, i) > B do i = i - 1 end
  local merged = i >= 1 and rec(g, raw, rpos, i) == B
  local A = gh[1]
  for k = 1, g.nw do
    local li = g.li[k]
    local low, high = A - g.e[k], A - g.s[k]
    if B >= low and B <= high then g.add(gh, li + 1, t1, t2, t3, t4) end
    if not merged then  -- the new record is record i + 1: later ones move up by one
      if B >= low then
        if gh[li] > i then gh[li] = i + 1 end
      else
        gh[li] = gh[li] + 1
      end
      if B <= high then gh[li + 1] = gh[li + 1] + 1 end
    end
  end
  if merged then
    pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * (i - 1) - 1)
    pieces[#pieces + 1] = spack(g.rfmt, B, g.merge(t1, t2, t3, t4, select(2, rec(g, raw, rpos, i))))
  else
    pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * i - 1)
    pieces[#pieces + 1] = spack(g.rfmt, B, t1, t2, t3, t4)
  end
  pieces[#pieces + 1] = sub(raw, rpos + g.rsize * i, rpos + g.rsize * n - 1)
  return merged and n or n + 1, not merged
end
"""

_PROCESS = r"""
-- A bucket group (tx or label) of a transaction in bucket B (cents: its amount, nil for a
-- label group, which only reads): its columns into out, its new segment appended to pieces.
-- Returns the segment's length and whether it got a new record.
local function bucket_group(g, raw, pos, len, B, keep, out, pieces, cents)
  local gh, n = read_head(g, raw, pos, len, B)
  local rpos = pos + g.hbytes
  local A = gh[1]
  local t1, t2, t3, t4
  if cents then t1, t2, t3, t4 = g.tx(cents) end
  if B < A then
    -- the exact fallback: older than the anchor (late within the lateness, or a terminal's
    -- lagging event): every record the transaction's windows hold is read
    local sums = {}
    for k = 1, g.nw do
      local low, high = max(B - g.e[k], keep), B - g.s[k]
      for j = 1, g.ns + 1 do sums[j] = 0 end
      for i = 1, n do
        local b, x1, x2, x3, x4 = rec(g, raw, rpos, i)
        if b >= low and b <= high then g.add(sums, 0, x1, x2, x3, x4) end
      end
      if cents and g.s[k] == 0 then g.add(sums, 0, t1, t2, t3, t4) end
      g.emit(out, g.col + (k - 1) * g.ns, sums, 0)
    end
    if not cents or B < keep then  -- nothing to store
      pieces[#pieces + 1] = sub(raw, pos, pos + len - 1)
      return len, false
    end
    local hp = #pieces + 1
    pieces[hp] = ''
    local n2, new = put_record(g, gh, raw, rpos, n, B, pieces, t1, t2, t3, t4)
    pieces[hp] = spack(g.hfmt, unpack(gh, 1, g.hsize))
    return g.hbytes + n2 * g.rsize, new
  end
  if B == A and not cents then  -- a label group in the anchor's bucket: nothing moves
    for k = 1, g.nw do g.emit(out, g.col + (k - 1) * g.ns, gh, g.li[k] + 1) end
    pieces[#pieces + 1] = sub(raw, pos, pos + len - 1)
    return len, false
  end
  local drop = 0
  if B > A then
    -- move every window from A to B: records enter (delayed windows) and leave, once each
    local minlo = n + 1
    for k = 1, g.nw do
      local li = g.li[k]
      local lo, hi = gh[li], gh[li + 1]
      if g.s[k] > 0 then
        local high = B - g.s[k]
        while hi < n do
          local b, x1, x2, x3, x4 = rec(g, raw, rpos, hi + 1)
          if b > high then break end
          hi = hi + 1
          if hi >= lo then g.add(gh, li + 1, x1, x2, x3, x4) end
        end
      end
      local low = B - g.e[k]
      local left = false
      while lo <= hi do
        local b, x1, x2, x3, x4 = rec(g, raw, rpos, lo)
        if b >= low then break end
        g.sub(gh, li + 1, x1, x2, x3, x4)
        left = true
        lo = lo + 1
      end
      if left and g.mi > 0 and lo <= hi then gh[li + 1 + g.mi] = max_of(g, raw, rpos, lo, hi) end
      gh[li], gh[li + 1] = lo, hi
      if lo < minlo then minlo = lo end
    end
    gh[1] = B
    -- records before every window and below keep are dropped: no acceptable transaction reads
    -- them any more (a record below keep is never read, so it may wait until the anchor moves)
    while drop + 1 < minlo and rec(g, raw, rpos, drop + 1) < keep do drop = drop + 1 end
    if drop > 0 then
      for k = 1, g.nw do
        local li = g.li[k]
        gh[li], gh[li + 1] = gh[li] - drop, gh[li + 1] - drop
      end
    end
  end
  local hp = #pieces + 1
  pieces[hp] = ''
  local first = rpos + g.rsize * drop
  local kept, new = n - drop, false
  if cents then
    -- the transaction joins bucket B: the last record, or a new one after it
    local lb, y1, y2, y3, y4
    if n > drop then lb, y1, y2, y3, y4 = rec(g, raw, rpos, n) end
    if lb == B then
      pieces[hp + 1] = sub(raw, first, rpos + g.rsize * (n - 1) - 1)
      pieces[hp + 2] = spack(g.rfmt, B, g.merge(t1, t2, t3, t4, y1, y2, y3, y4))
    else
      pieces[hp + 1] = sub(raw, first, rpos + g.rsize * n - 1)
      pieces[hp + 2] = spack(g.rfmt, B, t1, t2, t3, t4)
      kept = kept + 1
      new = true
    end
    for k = 1, g.nw do
      if g.s[k] == 0 then
        local li = g.li[k]
        g.add(gh, li + 1, t1, t2, t3, t4)
        gh[li + 1] = kept
      end
    end
  else
    pieces[hp + 1] = sub(raw, first, rpos + g.rsize * n - 1)
  end
  for k = 1, g.nw do g.emit(out, g.col + (k - 1) * g.ns, gh, g.li[k] + 1) end
  pieces[hp] = spack(g.hfmt, unpack(gh, 1, g.hsize))
  return g.hbytes + kept * g.rsize, new
end

-- A distinct group: per value its buckets, newest first; its values are names[si + 1 ..]. Its
-- columns (per window: the number of distinct values, whether val is new) into out, its new
-- segment appended to pieces and its values to strs. Returns the segment's length, its number
-- of values and whether (B, val) is new.
local function distinct_group(g, raw, pos, len, nv, names, si, B, keep, val, inorder, out,
                              pieces, strs)
  local ks, newest, at = {}, {}, {}
  local vi, stale = nil, false
  local p = pos
  for x = 1, nv do
    local k, b = sunpack('<I4I4', raw, p)
    ks[x], newest[x], at[x] = k, b, p
    p = p + 4 + 4 * k
    if names[si + x] == val then vi = x end
    if b < keep then stale = true end
  end
  for k = 1, g.nw do
    local low, high = max(B - g.e[k], keep), B - g.s[k]
    local d, seen = 0, false
    for x = 1, nv do
      local found
      if inorder and g.s[k] == 0 then
        found = newest[x] >= low  -- every bucket is at or before B
      else  -- the exact fallback: any bucket of the value inside [low, high]
        found = false
        local bs = get_many('I4', raw, at[x] + 4, ks[x])
        for j = 1, ks[x] do
          if bs[j] >= low and bs[j] <= high then found = true; break end
        end
      end
      if found then
        d = d + 1
        if x == vi then seen = true end
      end
    end
    local new = NAN
    if g.s[k] == 0 and val ~= '' then
      if seen then new = 0 else new = 1; d = d + 1 end
    end
    local c = g.col + 2 * (k - 1)
    out[c], out[c + 1] = d, new
  end
  local add = (val ~= '' and B >= keep)
  if not stale and (not add or (vi and newest[vi] == B)) then  -- unchanged
    for x = 1, nv do strs[#strs + 1] = names[si + x] end
    pieces[#pieces + 1] = sub(raw, pos, pos + len - 1)
    return len, nv, false
  end
  -- values whose newest bucket is below keep are dropped; val gets B
  local size, nkept, added = 0, 0, false
  local run = nil  -- start of a run of values copied unchanged
  for x = 1, nv + 1 do
    local keepx = x <= nv and (x == vi or newest[x] >= keep)
    local copy = keepx and not (x == vi and add)
    if copy then
      if not run then run = at[x] end
    elseif run then
      local upto = (x <= nv) and at[x] or (pos + len)
      pieces[#pieces + 1] = sub(raw, run, upto - 1)
      size = size + upto - run
      run = nil
    end
    if x <= nv and x == vi and add then
      local bs = get_many('I4', raw, at[x] + 4, ks[x])
      local kept, placed = {}, false
      for j = 1, ks[x] do  -- newest first
        local b = bs[j]
        if not placed and b <= B then
          if b ~= B then kept[#kept + 1] = B; added = true end
          placed = true
        end
        if b >= keep then kept[#kept + 1] = b end
      end
      if not placed then kept[#kept + 1] = B; added = true end
      pieces[#pieces + 1] = spack('<I4', #kept) .. put_many('I4', kept, #kept)
      size = size + 4 + 4 * #kept
    end
    if x <= nv and keepx then
      nkept = nkept + 1
      strs[#strs + 1] = names[si + x]
    end
  end
  if add and not vi then  -- a value the group did not hold
    pieces[#pieces + 1] = spack('<I4I4', 1, B)
    size = size + 8
    nkept = nkept + 1
    strs[#strs + 1] = val
    added = true
  end
  return size, nkept, added
end

-- The card's recent transactions: the previous one in (time, tie key) order fills the prev
-- columns; the ones no acceptable transaction can follow any more are dropped (all but the
-- latest before latest - LATENESS).
local function before(ta, ka, tb, kb)  -- (time, tie key) order, keys compared as bytes
  if ta ~= tb then return ta < tb end
  if ka == kb then return false end
  for i = 1, min(#ka, #kb) do
    local a, b = string.byte(ka, i), string.byte(kb, i)
    if a ~= b then return a < b end
  end
  return #ka < #kb
end

local function recent(raw, pos, n, names, si, ts, tie, la, lo, latest, out, col, pieces, strs)
  local old = (n > 0) and get_many('d', raw, pos, 3 * n) or {}
  local r = n + 1  -- the new transaction's rank among the n + 1
  while r > 1 and before(ts, tie, old[3 * r - 5], names[si + r - 1]) do r = r - 1 end
  if r > 1 then
    out[col], out[col + 1], out[col + 2] = old[3 * r - 5], old[3 * r - 4], old[3 * r - 3]
  else
    out[col], out[col + 1], out[col + 2] = NAN, NAN, NAN
  end
  local times, ties = {}, {}
  for i = 1, n do times[i], ties[i] = old[3 * i - 2], names[si + i] end
  table.insert(times, r, ts)
  table.insert(ties, r, tie)
  table.insert(old, 3 * r - 2, lo)
  table.insert(old, 3 * r - 2, la)
  table.insert(old, 3 * r - 2, ts)
  local drop = 0
  while drop < n + 1 and times[drop + 1] < latest - LATENESS do drop = drop + 1 end
  if drop > 1 then drop = drop - 1 else drop = 0 end
  for i = drop + 1, n + 1 do strs[#strs + 1] = ties[i] end
  pieces[#pieces + 1] = spack('<' .. rep('d', 3 * (n + 1 - drop)), unpack(old, 3 * drop + 1, 3 * n + 3))
  return n + 1 - drop
end

-- keys: snapshot, scored event, then the state of each entity E[i] ('' when the transaction
-- lacks it). args: event time (us), amount in cents, inputs JSON (stored), label targets
-- (stored), tie key, latitude, longitude ('' when missing), then the value of each distinct
-- group (g.arg).
local function process(keys, args)
  if not spack then init() end
  local prior = redis.call('GET', keys[1])
  if prior then return {'duplicate', prior, redis.call('GET', keys[2])} end
  local ts, cents = tonumber(args[1]), tonumber(args[2])
  local out, writes = {}, {}
  -- 1. read every entity and compute its columns; nothing is written until all are known not late
  for i = 1, #E do
    local ent = E[i]
    local key = keys[2 + i]
    if key == '' then
      for c = ent.col, ent.col + ent.ncols - 1 do out[c] = NAN end
      if ent.prev then out[ent.prevcol], out[ent.prevcol + 1], out[ent.prevcol + 2] = NAN, NAN, NAN end
    else
      local raw = redis.call('GET', key)
      local head, at, rpos, names = open(ent, raw)
      if not raw then raw = '' end
      local told = head and head[1]
      if told and ts < told - LATENESS and ent.ordered then
        -- a card's events come in order (one partition); a terminal's come from every
        -- partition, so lagging behind it is not the event's fault: it is scored, and only
        -- buckets the terminal still keeps are updated (see the store's docstring)
        return {'late', fmt(told)}
      end
      local latest = (told and told > ts) and told or ts
      local nhead, pieces, strs = {}, {''}, {}
      local refresh = nil  -- the longest span of a group that got a new bucket
      local si = 0  -- stored strings read so far
      for gi = 1, #ent.groups do
        local g = ent.groups[gi]
        local B = floor(ts / g.w)
        local keep = floor((latest - LATENESS) / g.w) - g.reach
        local pos, len = 1, 0
        if head then pos, len = at[gi], head[g.h] end
        local new
        if g.dh then
          local nv = head and head[g.dh] or 0
          local inorder = (told == nil) or B >= floor(told / g.w)
          nhead[g.h], nhead[g.dh], new = distinct_group(g, raw, pos, len, nv, names, si, B, keep,
                                                        args[g.arg], inorder, out, pieces, strs)
          si = si + nv
        else
          nhead[g.h], new = bucket_group(g, raw, pos, len, B, keep, out, pieces,
                                         g.kind == 'tx' and cents or nil)
        end
        if new and (refresh == nil or g.span > refresh) then refresh = g.span end
      end
      if ent.prev then
        nhead[ent.ph] = recent(raw, rpos, head and head[ent.ph] or 0, names, si, ts, args[5],
                               tonumber(args[6]) or NAN, tonumber(args[7]) or NAN, latest, out,
                               ent.prevcol, pieces, strs)
        if refresh == nil or PREV_SPAN > refresh then refresh = PREV_SPAN end
      end
      local value, ttl_set = finish(ent, nhead, head and head[2], latest, refresh, pieces, strs)
      writes[#writes + 1] = {key, value, ttl_set, ent.ttl}
    end
  end
  -- 2. not late: write every entity's state and the snapshot (what a duplicate returns and what
  -- the learner joins labels with)
  for _, w in ipairs(writes) do write(w[1], w[2], w[3], w[4]) end
  local raw = spack(RAWFMT, unpack(out, 1, NCOLS))
  redis.call('SET', keys[1], raw .. args[3] .. '\30' .. args[4], 'EX', SNAPSHOT_TTL)
  return {'new', raw}
end

-- keys: snapshot, scored event, label. args: label JSON, 1 = fraud / 0 = not. The snapshot's
-- third part names the labelled transaction's event time and the entities with label groups:
-- "ts\ni\nkey\ni\nkey...".
local function label(keys, args)
  if not spack then init() end
  local v = redis.call('GET', keys[1])
  if not v then return {'unknown'} end
  local sc = redis.call('GET', keys[2])
  if redis.call('EXISTS', keys[3]) == 1 then return {'duplicate', v, sc} end
  local left = redis.call('TTL', keys[1])
  redis.call('SET', keys[3], args[1], 'EX', left > 0 and left or 1)
  local fraud = tonumber(args[2])
  local targets = string.match(sub(v, 8 * NCOLS + 1), '^[^\30]*\30(.*)$') or ''
  local parts = {}
  for p in string.gmatch(targets, '[^\n]+') do parts[#parts + 1] = p end
  local ts = tonumber(parts[1])
  local writes = {}
  for i = 2, #parts - 1, 2 do
    local ent, key = E[tonumber(parts[i])], parts[i + 1]
    -- a key that expired holds nothing a later transaction reads: the label is not kept
    local raw = redis.call('GET', key)
    local head, at, rpos, names = open(ent, raw)
    if head then
      local latest = max(head[1], ts)
      local nhead, pieces = {}, {''}
      local refresh = nil
      for gi = 1, #ent.groups do
        local g = ent.groups[gi]
        local pos, len = at[gi], head[g.h]
        nhead[g.h] = len
        if g.dh then nhead[g.dh] = head[g.dh] end
        local B = floor(ts / g.w)
        -- a bucket no acceptable transaction can see any more is not written
        if g.kind == 'label' and B >= floor((latest - LATENESS) / g.w) - g.reach then
          local gh, n = read_head(g, raw, pos, len, floor(head[1] / g.w))
          local hp = #pieces + 1
          pieces[hp] = ''
          local n2, new = put_record(g, gh, raw, pos + g.hbytes, n, B, pieces, 1, fraud)
          pieces[hp] = spack(g.hfmt, unpack(gh, 1, g.hsize))
          nhead[g.h] = g.hbytes + n2 * g.rsize
          if new and (refresh == nil or g.span > refresh) then refresh = g.span end
        else
          pieces[#pieces + 1] = sub(raw, pos, pos + len - 1)
        end
      end
      if ent.prev then
        pieces[#pieces + 1] = sub(raw, rpos, rpos + 24 * head[ent.ph] - 1)
        nhead[ent.ph] = head[ent.ph]
      end
      local value, ttl_set = finish(ent, nhead, head[2], latest, refresh, pieces, names)
      writes[#writes + 1] = {key, value, ttl_set, ent.ttl}
    end
  end
  for _, w in ipairs(writes) do write(w[1], w[2], w[3], w[4]) end
  return {'new', v, sc}
end
"""


class Library:
    """The generated library: its code, its name and the names of its two functions."""

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.process = f"{name}_process"
        self.label = f"{name}_label"


def _span_us(g: Group, lateness_us: int) -> int:
    """How long after its latest event an entity may still read a bucket of ``g`` (+ margin)."""
    return (g.reach + 2) * g.width_s * 1_000_000 + lateness_us


def entities(plan: Plan) -> list[str]:
    """The entities of the plan's state keys, in keys order (the card whenever the plan reads the
    card's previous transaction)."""
    used = {g.entity for g in plan.groups} | ({"card"} if plan.previous else set())
    return [e for e in ENTITY_ORDER if e in used]


def _stat_functions(stats: list[str]) -> str:
    """Lua functions of a bucket group's statistics (x1.. in the group's order, one per stat):
    add / sub a record into window sums at gh[at + 1 ..], emit window sums, the statistics of
    one transaction, and the merge of a transaction into a record."""
    ns = len(stats)
    xs = ", ".join(f"x{j}" for j in range(1, ns + 1))
    x4 = ", ".join(f"x{j}" for j in range(1, 5))  # merge takes two records of four values
    y4 = ", ".join(f"y{j}" for j in range(1, 5))
    add, subtract, emit, tx, merge = [], [], [], [], []
    for j, s in enumerate(stats, start=1):
        slot = f"gh[at + {j}]"
        if s == "m":
            add.insert(0, f"if gh[at + 1] == 0 or x{j} > {slot} then {slot} = x{j} end")
            emit.append(f"out[col + {j - 1}] = (gh[at + 1] == 0) and NAN or {slot}")
            merge.append(f"max(x{j}, y{j})")
        else:
            add.append(f"{slot} = {slot} + x{j}")
            subtract.append(f"{slot} = {slot} - x{j}")
            emit.append(f"out[col + {j - 1}] = {slot}")
            merge.append(f"x{j} + y{j}")
        tx.append({"c": "1", "n": "1", "s": "cents", "q": "cents * cents", "m": "cents"}.get(s, "0"))
    return (
        f"add = function(gh, at, {xs}) {' '.join(add)} end,\n"
        f"       sub = function(gh, at, {xs}) {' '.join(subtract) or 'return'} end,\n"
        f"       emit = function(out, col, gh, at) {' '.join(emit)} end,\n"
        f"       tx = function(cents) return {', '.join(tx)} end,\n"
        f"       merge = function({x4}, {y4}) return {', '.join(merge)} end"
    )


def _group_table(g: Group, h: int, col: int, arg: int, lateness_us: int) -> str:
    nw = len(g.windows)
    starts = ", ".join(str(d) for d, _ in g.windows)
    ends = ", ".join(str(d + n - 1) for d, n in g.windows)
    fields = (f"kind = '{g.kind}', w = {g.width_s * 1_000_000}, reach = {g.reach}, "
              f"span = {_span_us(g, lateness_us)}, h = {h}, col = {col}, nw = {nw},\n"
              f"       s = {{{starts}}}, e = {{{ends}}}")
    if g.kind == "distinct":
        fields += f", dh = {h + 1}, arg = {arg}"
    else:
        # a record: I4 bucket, I4 count (c or n), d for each other statistic
        stats = list(g.stats) if g.kind == "tx" else ["n", "f"]
        ns = len(stats)
        hsize = 1 + nw * (2 + ns)
        lis = ", ".join(str(2 + k * (2 + ns)) for k in range(nw))
        fields += (f", ns = {ns}, mi = {stats.index('m') + 1 if 'm' in stats else 0}, "
                   f"li = {{{lis}}},\n"
                   f"       hsize = {hsize}, hbytes = {8 * hsize}, hfmt = '<{'d' * hsize}', "
                   f"rfmt = '<I4I4{'d' * (ns - 1)}', rsize = {8 + 8 * (ns - 1)},\n"
                   f"       {_stat_functions(stats)}")
    desc = f"{g.kind}, {g.width_s} s buckets{', ' + g.source if g.source else ''}, " \
           f"windows (delay, length in buckets) {list(g.windows)}"
    return f"      {{-- {desc}\n       {fields}}},"


def _preamble(plan: Plan, horizon_us: int, lateness_us: int, snapshot_ttl_s: int) -> str:
    cols = {}
    col = 1
    for g in plan.groups:
        cols[id(g)] = col
        col += len(g.windows) * len(g.outputs())
    prev_col = col
    ncols = len(plan.columns)
    assert ncols == col - 1 + (3 if plan.previous else 0)
    prev_span = horizon_us + lateness_us + 1_000_000
    blocks = []
    arg = 8
    for ent in entities(plan):
        groups = [g for g in plan.groups if g.entity == ent]
        h = 3
        rows = []
        for g in groups:
            rows.append(_group_table(g, h, cols[id(g)], arg, lateness_us))
            if g.kind == "distinct":
                arg += 1
            h += 2 if g.kind == "distinct" else 1
        prev = plan.previous and ent == "card"
        nhead = h if prev else h - 1
        spans = [_span_us(g, lateness_us) for g in groups] + ([prev_span] if prev else [])
        span = max(spans)
        first = cols[id(groups[0])] if groups else prev_col
        ncol = sum(len(g.windows) * len(g.outputs()) for g in groups)  # contiguous
        body = "\n".join(rows)
        blocks.append(
            f"  {{name = '{ent}', ordered = {'true' if ent.startswith('card') else 'false'}, "
            f"prev = {'true' if prev else 'false'}, ph = {h if prev else 0}, prevcol = {prev_col},\n"
            f"   nhead = {nhead}, hbytes = {8 * nhead}, hfmt = '<{'d' * nhead}', col = {first}, "
            f"ncols = {ncol},\n"
            f"   span = {span}, ttl = {math.ceil(span / 1_000_000)},  -- the key's TTL, s\n"
            f"   groups = {{\n{body}\n   }}}},"
        )
    entity_table = "\n".join(blocks)
    return (
        f"-- fraudstream feature set {plan.feature_set.name!r}, plan {plan.digest}\n"
        f"local LATENESS = {lateness_us}  -- allowed lateness, us\n"
        f"local SNAPSHOT_TTL = {snapshot_ttl_s}  -- s\n"
        f"local NCOLS = {ncols}  -- raw columns per transaction\n"
        f"local RAWFMT = '<{'d' * ncols}'\n"
        f"local PREV_SPAN = {prev_span}  -- how long the card's recent transactions are needed, us\n"
    ), (f"local E = {{\n{entity_table}\n}}\n")


def render(plan: Plan, horizon_us: int, lateness_us: int, snapshot_ttl_s: int) -> Library:
    """The library of ``plan``; ``horizon_us`` bounds the previous-transaction lookups. Its name
    is a digest of its code, so stores with the same plan and settings share it."""
    constants, table = _preamble(plan, horizon_us, lateness_us, snapshot_ttl_s)
    body = constants + _COMMON.replace("\nlocal function fmt", "\n" + table + "\nlocal function fmt", 1) + _PROCESS
    name = "fraudstream_" + hashlib.sha1(body.encode()).hexdigest()[:16]
    code = (f"#!lua name={name}\n{body}\n"
            f"redis.register_function('{name}_process', process)\n"
            f"redis.register_function('{name}_label', label)\n")
    return Library(code, name)
