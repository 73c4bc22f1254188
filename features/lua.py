"""The Redis side of the online store: one Lua function library, generated per feature-set plan.

The library (``FUNCTION LOAD``, Redis >= 7.0) registers the functions ``process`` and ``label``,
``many`` and ``label_many`` (the same for a batch, in one call) and ``save`` (named after the
library, see :func:`render`). Its top level runs once, when it is loaded: the
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

    head block  every fixed-size number of the entity, one struct call to read or write it
                (``E[i].hfmt``; ``g.o`` is where a group's numbers start):
                  H[1] t (the entity's latest event time, us), H[2] e (its latest event time
                  when the key's TTL was last set);
                  tx group:       A (the anchor: the bucket of the group's latest event), the
                                  current record (A's statistics: c [s] [q] [m]), per window
                                  lo, hi (first and last record inside the window seen from A,
                                  1-based over the older records then the current one; lo > hi
                                  when empty) and the window's sums (m: the max), then the
                                  number of older (closed) records;
                  label group:    A, per window lo, hi and the sums (n, f), the number of records;
                  distinct group: the number of values, the segment's length in bytes;
                  card:           the number of recent transactions
    segments    one per group, in the plan's order:
                  tx, label       the closed records, ascending: I4 bucket, then the statistics
                                  (counts as I4, amounts in cents as d)
                  distinct        per value: I4 k (its buckets), I4 its newest bucket, I4 length,
                                  the value, then its k - 1 older buckets (I4), newest first
    recent      (card) per transaction in (time, id) order: d event time, d latitude,
                d longitude (NaN = none), I4 length, its tie key (:func:`features.plan.tie_key`)

Numbers are integers (event times in us, bucket indexes, counts, cents and their sums): exact in
doubles below 2^53 and in I4 below 2^32 (the wire schema keeps event times in 1970..2100, so a
bucket index of 1 s or more fits). The window sums are **running totals**: a transaction in the
anchor's bucket (the generated ``same``: only the head block changes) or later (the anchor moves:
each record enters and leaves a window once; when every record is stale the group restarts,
``reset``) does work that does not grow with the history; a distinct window counts the values
whose newest bucket is inside it, and the transaction's value is found with one plain search of
the segment (no value is read as a string). An event older than the anchor (late within the
allowed lateness, or a terminal's lagging one) takes the exact fallback: the group's records are
scanned, the event is merged into or inserted among the closed records, and the running totals
and pointers are updated where it falls. Unchanged parts are copied as byte ranges of the old
value.

Costs that shaped this (Redis 7.0's Lua 5.1, counted with callgrind): every Lua string created
(a GET reply, a ``string.sub``, a concatenation) costs ~12 instructions per byte, a table or a
function call ~0.4-1k, a struct value ~300, a ``redis.call`` a few thousand; so the state is
compact and binary, read once, and the hot paths are straight-line code with constants inlined.

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
__TABLE__
local function fmt(x) return string.format('%.0f', x) end

-- n values of format letter f from byte pos (the exact fallbacks' reads)
local function get_many(f, raw, pos, n)
  local t, done = {}, 0
  while done < n do
    local k = min(CHUNK, n - done)
    local part = {sunpack('<' .. rep(f, k), raw, pos)}
    for j = 1, k do t[done + j] = part[j] end
    pos = part[k + 1]
    done = done + k
  end
  return t
end

-- An entity's stored value: its head block H (every fixed-size number), where each group's
-- segment starts, and where its recent transactions start. Nothing when there is no value.
local function open(ent, raw)
  if not raw then return nil end
  local H = {sunpack(ent.hfmt, raw, 1)}
  local at, pos = {}, ent.hbytes + 1
  for gi = 1, #ent.groups do
    local g = ent.groups[gi]
    at[gi] = pos
    if g.kind == 'distinct' then pos = pos + H[g.o + 2] else pos = pos + g.rsize * H[g.nh] end
  end
  return H, at, pos
end

-- The head block of an entity seen for the first time, at event time ts: every group empty.
local function fresh(ent, ts)
  local H, at = {0, 0}, {}
  for gi = 1, #ent.groups do
    local g = ent.groups[gi]
    at[gi] = 1
    for i = g.o + 1, g.o + g.size do H[i] = 0 end
    if g.kind ~= 'distinct' then
      H[g.o + 1] = floor(ts / g.w)
      for k = 1, g.nw do H[g.li[k]] = 1 end
    end
  end
  if ent.prev then H[ent.ph] = 0 end
  return H, at, 1
end

-- The new value of an entity's key, and whether its TTL must be (re)set: when the key is new,
-- or when a new bucket needs the key to live longer than the TTL set at event time e gives it
-- (latest + span > e + ent.span: TTLs are wall-clock, and event time is taken to advance at
-- least as fast as the clock; see the store's docstring). pieces[1] is left for the head block.
local function finish(ent, H, old_e, latest, span, pieces)
  local e, refresh = old_e, false
  if e == nil or (span and latest + span > e + ent.span) then e, refresh = latest, true end
  H[1], H[2] = latest, e
  pieces[1] = spack(ent.hfmt, unpack(H, 1, ent.nhead))
  return concat(pieces), refresh
end

local function write(key, value, refresh, ttl)
  if refresh then
    redis.call('SET', key, value, 'EX', ttl)
  else
    redis.call('SET', key, value, 'KEEPTTL')
  end
end

-- Record i of a bucket group's list: its closed records (from byte rpos of raw), then, for a tx
-- group, the record of the current bucket (the anchor's, kept in H). b, then the statistics.
local function rec(g, H, raw, rpos, n, i)
  if i <= n then return sunpack(g.rfmt, raw, rpos + g.rsize * (i - 1)) end
  return H[g.o + 1], g.cur(H)
end

local function max_of(g, H, raw, rpos, n, lo, hi)  -- the max statistic of records lo..hi
  local m = nil
  for i = lo, hi do
    local x = select(1 + g.mi, rec(g, H, raw, rpos, n, i))
    if m == nil or x > m then m = x end
  end
  return m
end

-- Put the statistics t1..t4 into bucket B (older than the anchor) of a bucket group with n closed
-- records: merged into B's record or a new record, and added to the running totals of the
-- windows (seen from the anchor) that B falls in. Appends the new closed records to pieces;
-- returns their number and whether B's record is new.
local function put_record(g, H, raw, rpos, n, B, pieces, t1, t2, t3, t4)
  local i = n
  while i >= 1 and rec(g, H, raw, rpos, n, i) > B do i = i - 1 end
  local merged = i >= 1 and rec(g, H, raw, rpos, n, i) == B
  local A = H[g.o + 1]
  for k = 1, g.nw do
    local li = g.li[k]
    local low, high = A - g.e[k], A - g.s[k]
    if B >= low and B <= high then g.add(H, li + 1, t1, t2, t3, t4) end
    if not merged then  -- the new record is record i + 1: later ones move up by one
      if B >= low then
        if H[li] > i then H[li] = i + 1 end
      else
        H[li] = H[li] + 1
      end
      if B <= high then H[li + 1] = H[li + 1] + 1 end
    end
  end
  if merged then
    pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * (i - 1) - 1)
    pieces[#pieces + 1] = spack(g.rfmt, B, g.merge(t1, t2, t3, t4,
                                                   select(2, rec(g, H, raw, rpos, n, i))))
  else
    pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * i - 1)
    pieces[#pieces + 1] = spack(g.rfmt, B, t1, t2, t3, t4)
  end
  pieces[#pieces + 1] = sub(raw, rpos + g.rsize * i, rpos + g.rsize * n - 1)
  return merged and n or n + 1, not merged
end
"""

_PROCESS = r"""
-- A bucket group (tx or label) of a transaction in bucket B (cents: its amount; nil for a label
-- group, which only reads): its columns into out, its head in H, its closed records appended
-- to pieces. Returns whether it got a new bucket.
local function bucket_group(g, H, raw, rpos, B, keep, out, pieces, cents)
  local n = H[g.nh]
  local A = H[g.o + 1]
  local t1, t2, t3, t4
  local nv = n  -- records in the list: the closed ones and the current one
  if cents then
    t1, t2, t3, t4 = g.tx(cents)
    if H[g.o + 2] > 0 then nv = n + 1 end
  end
  if B < A then
    -- the exact fallback: older than the anchor (late within the lateness, or a terminal's
    -- lagging event): every record its windows hold is read
    local sums = {}
    for k = 1, g.nw do
      local low, high = max(B - g.e[k], keep), B - g.s[k]
      for j = 1, g.ns do sums[j] = 0 end
      for i = 1, nv do
        local b, x1, x2, x3, x4 = rec(g, H, raw, rpos, n, i)
        if b >= low and b <= high then g.add(sums, 0, x1, x2, x3, x4) end
      end
      if cents and g.s[k] == 0 then g.add(sums, 0, t1, t2, t3, t4) end
      g.emit(out, g.col + (k - 1) * g.ns, sums, 0)
    end
    if not cents or B < keep then  -- nothing to store
      pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * n - 1)
      return false
    end
    local new
    H[g.nh], new = put_record(g, H, raw, rpos, n, B, pieces, t1, t2, t3, t4)
    return new
  end
  if B == A then  -- the anchor's bucket: only the current record and the sums change
    pieces[#pieces + 1] = sub(raw, rpos, rpos + g.rsize * n - 1)
    if cents then return g.same(H, cents, out) end
    g.show(H, out)
    return false
  end
  if cents and A < keep then
    -- every record (all at or before A) is below keep: the group starts again at bucket B
    g.reset(H, B, cents, out)
    return true
  end
  -- B > A: move every window from A to B; records enter (delayed windows) and leave, once each
  local minlo = nv + 1
  for k = 1, g.nw do
    local li = g.li[k]
    local lo, hi = H[li], H[li + 1]
    local high, low = B - g.s[k], B - g.e[k]
    while hi < nv do
      local b, x1, x2, x3, x4 = rec(g, H, raw, rpos, n, hi + 1)
      if b > high then break end
      hi = hi + 1
      if hi >= lo then g.add(H, li + 1, x1, x2, x3, x4) end
    end
    local left = false
    while lo <= hi do
      local b, x1, x2, x3, x4 = rec(g, H, raw, rpos, n, lo)
      if b >= low then break end
      g.sub(H, li + 1, x1, x2, x3, x4)
      left = true
      lo = lo + 1
    end
    if left and g.mi > 0 and lo <= hi then H[li + 1 + g.mi] = max_of(g, H, raw, rpos, n, lo, hi) end
    H[li], H[li + 1] = lo, hi
    if lo < minlo then minlo = lo end
  end
  -- closed records before every window and below keep are dropped (no acceptable transaction
  -- reads them any more; one below keep is never read, so it may wait until the anchor moves)
  local drop = 0
  while drop + 1 < minlo and drop < n and rec(g, H, raw, rpos, n, drop + 1) < keep do
    drop = drop + 1
  end
  if drop > 0 then
    for k = 1, g.nw do
      local li = g.li[k]
      H[li], H[li + 1] = H[li] - drop, H[li + 1] - drop
    end
  end
  pieces[#pieces + 1] = sub(raw, rpos + g.rsize * drop, rpos + g.rsize * n - 1)
  local closed = n - drop
  if nv > n then  -- the anchor's record is closed
    pieces[#pieces + 1] = spack(g.rfmt, A, g.cur(H))
    closed = closed + 1
  end
  H[g.o + 1], H[g.nh] = B, closed
  if cents then  -- the transaction opens bucket B
    H[g.o + 2] = 0
    g.same(H, cents, out)
    return true
  end
  g.show(H, out)
  return false
end

-- A distinct group: per value (I4 k, I4 its newest bucket, I4 length, its name, then its k - 1
-- older buckets as I4, newest first). Its columns (per window: the number of distinct values,
-- whether val is new) into out, its counts in H, its segment appended to pieces. Returns whether
-- (B, val) is new. Names are not read: val is found with one plain search of the segment.
local distinct_slow

local function distinct_group(g, H, raw, pos, B, keep, val, inorder, out, pieces)
  if not (inorder and g.undelayed) then
    return distinct_slow(g, H, raw, pos, B, keep, val, inorder, out, pieces)
  end
  -- in order, every window ending at B: a value is in a window when its newest bucket is
  local nv, len = H[g.o + 1], H[g.o + 2]
  local stop = pos + len
  local nw, e = g.nw, g.e
  local low, d = {}, {}
  for k = 1, nw do low[k], d[k] = max(B - e[k], keep), 0 end
  local enc = spack('<I4', #val) .. val
  local q = (val ~= '') and string.find(raw, enc, pos, true) or nil
  local starts, newest = {}, {}
  local vi, stale = nil, false
  local p = pos
  for x = 1, nv do
    local k, b, n = sunpack('<I4I4I4', raw, p)
    starts[x], newest[x] = p, b
    for w = 1, nw do if b >= low[w] then d[w] = d[w] + 1 end end
    while q and q < p + 8 do q = string.find(raw, enc, q + 1, true) end  -- inside a bucket list
    if q == p + 8 then vi = x end
    if b < keep then stale = true end
    p = p + 8 + 4 + n + 4 * (k - 1)
  end
  for k = 1, nw do
    local new = NAN
    if val ~= '' then
      if vi and newest[vi] >= low[k] then new = 0 else new = 1; d[k] = d[k] + 1 end
    end
    local c = g.col + 2 * (k - 1)
    out[c], out[c + 1] = d[k], new
  end
  local add = (val ~= '' and B >= keep)
  if not stale and (not add or (vi and newest[vi] == B)) then  -- unchanged
    pieces[#pieces + 1] = sub(raw, pos, stop - 1)
    return false
  end
  if vi and add and newest[vi] > B then  -- B is older than the value's newest bucket: in general
    return distinct_slow(g, H, raw, pos, B, keep, val, inorder, out, pieces, true)
  end
  -- values whose newest bucket is below keep are dropped; val gets B as its newest bucket
  local size, nkept, added = 0, 0, false
  local run = nil  -- start of a run of values copied unchanged
  starts[nv + 1] = stop
  for x = 1, nv + 1 do
    local keepx = x <= nv and (x == vi or newest[x] >= keep)
    local rewrite = keepx and x == vi and add and newest[x] ~= B
    if keepx and not rewrite then
      if not run then run = starts[x] end
    elseif run then
      pieces[#pieces + 1] = sub(raw, run, starts[x] - 1)
      size = size + starts[x] - run
      run = nil
    end
    if keepx then nkept = nkept + 1 end
    if rewrite then
      -- B first, then the old newest and older buckets that are not below keep (a prefix)
      local k, b, n = sunpack('<I4I4I4', raw, starts[x])
      local older = starts[x] + 12 + n
      local kept = 0
      if b >= keep then
        kept = 1
        while kept < k and sunpack('<I4', raw, older + 4 * (kept - 1)) >= keep do kept = kept + 1 end
      end
      pieces[#pieces + 1] = spack('<I4I4I4', kept + 1, B, n) .. val
      if kept > 0 then
        pieces[#pieces + 1] = spack('<I4', b)
        pieces[#pieces + 1] = sub(raw, older, older + 4 * (kept - 1) - 1)
      end
      size = size + 12 + n + 4 * kept
      added = true
    end
  end
  if add and not vi then  -- a value the group did not hold
    pieces[#pieces + 1] = spack('<I4I4I4', 1, B, #val) .. val
    size = size + 12 + #val
    nkept = nkept + 1
    added = true
  end
  H[g.o + 1], H[g.o + 2] = nkept, size
  return added
end

-- The general case (an event older than the group's newest bucket, or a delayed window): every
-- bucket of every value is read.
distinct_slow = function(g, H, raw, pos, B, keep, val, inorder, out, pieces, counted)
  local nv, len = H[g.o + 1], H[g.o + 2]
  local stop = pos + len
  local enc = spack('<I4', #val) .. val
  local q = (val ~= '') and string.find(raw, enc, pos, true) or nil
  local v = {}  -- per value x: v[3x - 2] k, v[3x - 1] newest bucket, v[3x] start
  local vi, stale = nil, false
  local p = pos
  for x = 1, nv do
    local k, b, n = sunpack('<I4I4I4', raw, p)
    v[3 * x - 2], v[3 * x - 1], v[3 * x] = k, b, p
    while q and q < p + 8 do q = string.find(raw, enc, q + 1, true) end  -- inside a bucket list
    if q == p + 8 then vi = x end
    if b < keep then stale = true end
    p = p + 8 + 4 + n + 4 * (k - 1)
  end
  local e, st = g.e, g.s
  for k = 1, g.nw do
    local low, high = max(B - e[k], keep), B - st[k]
    local d, seen = 0, false
    for x = 1, nv do
      local found
      if inorder and st[k] == 0 then
        found = v[3 * x - 1] >= low  -- every bucket is at or before B
      else  -- the exact fallback: any bucket of the value inside [low, high]
        local b = v[3 * x - 1]
        found = b >= low and b <= high
        if not found and v[3 * x - 2] > 1 then
          local n = sunpack('<I4', raw, v[3 * x] + 8)
          for _, ob in ipairs(get_many('I4', raw, v[3 * x] + 12 + n, v[3 * x - 2] - 1)) do
            if ob >= low and ob <= high then found = true; break end
          end
        end
      end
      if found then
        d = d + 1
        if x == vi then seen = true end
      end
    end
    local new = NAN
    if st[k] == 0 and val ~= '' then
      if seen then new = 0 else new = 1; d = d + 1 end
    end
    local c = g.col + 2 * (k - 1)
    if not counted then out[c], out[c + 1] = d, new end
  end
  local add = (val ~= '' and B >= keep)
  if not stale and (not add or (vi and v[3 * vi - 1] == B)) then  -- unchanged
    pieces[#pieces + 1] = sub(raw, pos, stop - 1)
    return false
  end
  -- values whose newest bucket is below keep are dropped; val gets B
  local size, nkept, added = 0, 0, false
  local run = nil  -- start of a run of values copied unchanged
  for x = 1, nv + 1 do
    local start = (x <= nv) and v[3 * x] or stop
    local keepx = x <= nv and (x == vi or v[3 * x - 1] >= keep)
    local rewrite = keepx and x == vi and add
    if keepx and not rewrite then
      if not run then run = start end
    elseif run then
      pieces[#pieces + 1] = sub(raw, run, start - 1)
      size = size + start - run
      run = nil
    end
    if keepx then nkept = nkept + 1 end
    if rewrite then
      -- every bucket of the value, newest first, B among them; those below keep are dropped
      local k, newest, n = sunpack('<I4I4I4', raw, start)
      local all = {newest}
      if k > 1 then
        for _, ob in ipairs(get_many('I4', raw, start + 12 + n, k - 1)) do all[#all + 1] = ob end
      end
      local kept, placed = {}, false
      for j = 1, #all do
        local b = all[j]
        if not placed and b <= B then
          if b ~= B then kept[#kept + 1] = B; added = true end
          placed = true
        end
        if b >= keep then kept[#kept + 1] = b end
      end
      if not placed then kept[#kept + 1] = B; added = true end
      pieces[#pieces + 1] = spack('<I4I4I4', #kept, kept[1], #val) .. val
      pieces[#pieces + 1] = spack('<' .. rep('I4', #kept - 1), unpack(kept, 2))
      size = size + 12 + #val + 4 * (#kept - 1)
    end
  end
  if add and not vi then  -- a value the group did not hold
    pieces[#pieces + 1] = spack('<I4I4I4', 1, B, #val) .. val
    size = size + 12 + #val
    nkept = nkept + 1
    added = true
  end
  H[g.o + 1], H[g.o + 2] = nkept, size
  return added
end

-- The card's recent transactions (time, latitude, longitude, tie key): the previous one in
-- (time, tie key) order fills the prev columns; the ones no acceptable transaction can follow
-- any more are dropped (all but the latest before latest - LATENESS).
local function before(ta, ka, tb, kb)  -- (time, tie key) order, keys compared as bytes
  if ta ~= tb then return ta < tb end
  if ka == kb then return false end
  for i = 1, min(#ka, #kb) do
    local a, b = string.byte(ka, i), string.byte(kb, i)
    if a ~= b then return a < b end
  end
  return #ka < #kb
end

local function recent(H, ph, raw, pos, ts, tie, la, lo, latest, out, col, pieces)
  local n = H[ph]
  local e = {}  -- per entry i: e[4i - 3] time, e[4i - 2] latitude, e[4i - 1] longitude, e[4i] tie
  if n > 0 then
    e = {sunpack('<' .. rep('dddI4c0', n), raw, pos)}
    e[4 * n + 1] = nil
  end
  local r = n + 1  -- the new transaction's rank among the n + 1
  while r > 1 and before(ts, tie, e[4 * r - 7], e[4 * r - 4]) do r = r - 1 end
  if r > 1 then
    out[col], out[col + 1], out[col + 2] = e[4 * r - 7], e[4 * r - 6], e[4 * r - 5]
  else
    out[col], out[col + 1], out[col + 2] = NAN, NAN, NAN
  end
  -- entries before latest - LATENESS, all but the latest of them, are dropped
  local old = 0
  while old < n and e[4 * old + 1] < latest - LATENESS do old = old + 1 end
  if r == n + 1 then  -- in order (the common case): copy the kept entries, append the new one
    if ts < latest - LATENESS then old = old + 1 end
    local drop = (old > 1) and old - 1 or 0
    local skip = 0
    for i = 1, drop do skip = skip + 28 + #e[4 * i] end
    pieces[#pieces + 1] = sub(raw, pos + skip)
    pieces[#pieces + 1] = spack('<dddI4c0', ts, la, lo, #tie, tie)
    H[ph] = n + 1 - drop
    return
  end
  table.insert(e, 4 * r - 3, tie)
  table.insert(e, 4 * r - 3, lo)
  table.insert(e, 4 * r - 3, la)
  table.insert(e, 4 * r - 3, ts)
  local drop = 0
  while drop < n + 1 and e[4 * drop + 1] < latest - LATENESS do drop = drop + 1 end
  if drop > 1 then drop = drop - 1 else drop = 0 end
  local args = {}
  for i = drop + 1, n + 1 do
    local j = 4 * i - 3
    args[#args + 1] = e[j]
    args[#args + 1] = e[j + 1]
    args[#args + 1] = e[j + 2]
    args[#args + 1] = #e[j + 3]
    args[#args + 1] = e[j + 3]
  end
  pieces[#pieces + 1] = spack('<' .. rep('dddI4c0', n + 1 - drop), unpack(args))
  H[ph] = n + 1 - drop
end

-- keys: snapshot, scored event, then the state of each entity E[i] ('' when the transaction
-- lacks it). args: event time (us), amount in cents, latitude, longitude (NaN when missing) as
-- four doubles; inputs JSON (stored); label targets (stored); tie key; then the value of each
-- distinct group (g.arg). Returns the raw columns (a string), or {'late', latest event time}, or
-- {'duplicate', snapshot, scored event}.
local function process(keys, args)
  if not spack then init() end
  local prior = redis.call('GET', keys[1])
  if prior then return {'duplicate', prior, redis.call('GET', keys[2])} end
  local ts, cents, la, lo = sunpack('<dddd', args[1])
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
      local H, at, rpos = open(ent, raw)
      local told = H and H[1]
      if told and ts < told - LATENESS and ent.ordered then
        -- a card's events come in order (one partition); a terminal's come from every
        -- partition, so lagging behind it is not the event's fault: it is scored, and only
        -- buckets the terminal still keeps are updated (see the store's docstring)
        return {'late', fmt(told)}
      end
      local old_e = H and H[2]
      if not H then raw = ''; H, at, rpos = fresh(ent, ts) end
      local latest = (told and told > ts) and told or ts
      local pieces = {''}
      local span = nil  -- the longest span of a group that got a new bucket
      for gi = 1, #ent.groups do
        local g = ent.groups[gi]
        local B = floor(ts / g.w)
        local keep = floor((latest - LATENESS) / g.w) - g.reach
        local new
        if g.kind == 'distinct' then
          local inorder = (told == nil) or B >= floor(told / g.w)
          new = distinct_group(g, H, raw, at[gi], B, keep, args[g.arg], inorder, out, pieces)
        else
          new = bucket_group(g, H, raw, at[gi], B, keep, out, pieces,
                             g.kind == 'tx' and cents or nil)
        end
        if new and (span == nil or g.span > span) then span = g.span end
      end
      if ent.prev then
        recent(H, ent.ph, raw, rpos, ts, args[4], la, lo, latest, out, ent.prevcol, pieces)
        if span == nil or PREV_SPAN > span then span = PREV_SPAN end
      end
      local value, refresh = finish(ent, H, old_e, latest, span, pieces)
      writes[#writes + 1] = {key, value, refresh, ent.ttl}
    end
  end
  -- 2. not late: write every entity's state and the snapshot (what a duplicate returns and what
  -- the learner joins labels with)
  for _, w in ipairs(writes) do write(w[1], w[2], w[3], w[4]) end
  local raw = spack(RAWFMT, unpack(out, 1, NCOLS))
  redis.call('SET', keys[1], raw .. args[2] .. '\30' .. args[3], 'EX', SNAPSHOT_TTL)
  return raw  -- a string, not a table: cheaper to reply
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
    local H, at, rpos = open(ent, raw)
    if H then
      local latest = max(H[1], ts)
      local pieces = {''}
      local span = nil
      for gi = 1, #ent.groups do
        local g = ent.groups[gi]
        local B = floor(ts / g.w)
        -- a bucket no acceptable transaction can see any more is not written
        if g.kind == 'label' and B >= floor((latest - LATENESS) / g.w) - g.reach then
          local new
          H[g.nh], new = put_record(g, H, raw, at[gi], H[g.nh], B, pieces, 1, fraud)
          if new and (span == nil or g.span > span) then span = g.span end
        else
          local len = (g.kind == 'distinct') and H[g.o + 2] or g.rsize * H[g.nh]
          pieces[#pieces + 1] = sub(raw, at[gi], at[gi] + len - 1)
        end
      end
      if ent.prev then pieces[#pieces + 1] = sub(raw, rpos) end
      local value, refresh = finish(ent, H, H[2], latest, span, pieces)
      writes[#writes + 1] = {key, value, refresh, ent.ttl}
    end
  end
  for _, w in ipairs(writes) do write(w[1], w[2], w[3], w[4]) end
  return {'new', v, sc}
end
"""


#: ``many`` / ``label_many``: ``process`` / ``label`` for a batch in one call: ARGV[1], ARGV[2] =
#: the number of keys and of args of one item (the same for all), then each item's keys and args
#: in order; the reply is the list of the replies. One command instead of a pipeline of one per
#: item: the client packs and parses one command (redis-py spends ~20 us per command).
_MANY = """
local function batched(fn)
  return function(keys, args)
    local nk, na = tonumber(args[1]), tonumber(args[2])
    local out = {}
    for j = 0, #keys / nk - 1 do
      local k, a = {}, {}
      for i = 1, nk do k[i] = keys[j * nk + i] end
      for i = 1, na do a[i] = args[2 + j * na + i] end
      out[j + 1] = fn(k, a)
    end
    return out
  end
end
"""

#: ``save``: KEYS = the scored-event keys, ARGV = the TTL (s), then one value per key. One call
#: for a batch: a pipeline of SETs costs the client ~21 us per key to pack and parse, this ~4 us.
#: The first event saved for a transaction stays (SET NX): the reply holds, per key, nil when this
#: call saved it, or the event saved before (a redelivered transaction scored twice at once, or
#: after a first attempt that updated the windows but never saved: the first save wins).
_SAVE = """
local function save(keys, args)
  local ttl = args[1]
  local out = {}
  for i = 1, #keys do
    out[i] = redis.call('SET', keys[i], args[i + 1], 'NX', 'GET', 'EX', ttl)
  end
  return out
end
"""


class Library:
    """The generated library: its code, its name and the names of its functions."""

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.process = f"{name}_process"
        self.label = f"{name}_label"
        self.many = f"{name}_many"
        self.label_many = f"{name}_label_many"
        self.save = f"{name}_save"


def _span_us(g: Group, lateness_us: int) -> int:
    """How long after its latest event an entity may still read a bucket of ``g`` (+ margin)."""
    return (g.reach + 2) * g.width_s * 1_000_000 + lateness_us


def entities(plan: Plan) -> list[str]:
    """The entities of the plan's state keys, in keys order (the card whenever the plan reads the
    card's previous transaction)."""
    used = {g.entity for g in plan.groups} | ({"card"} if plan.previous else set())
    return [e for e in ENTITY_ORDER if e in used]


def _stat_functions(stats: list[str], cur: int | None) -> str:
    """Lua functions of a bucket group's statistics (x1.. in the group's order): add / sub a
    record into window sums at H[at + 1 ..], emit window sums into out, the statistics of one
    transaction, merge two records, and (tx groups) set / get the current record at H[cur + 1 ..]."""
    ns = len(stats)
    xs = ", ".join(f"x{j}" for j in range(1, ns + 1))
    x4 = ", ".join(f"x{j}" for j in range(1, 5))  # merge takes two records of four values
    y4 = ", ".join(f"y{j}" for j in range(1, 5))
    add: list[str] = []
    subtract: list[str] = []
    emit: list[str] = []
    tx: list[str] = []
    merge: list[str] = []
    for j, s in enumerate(stats, start=1):
        slot = f"H[at + {j}]"
        if s == "m":  # the max: set when the window was empty (before the count changes)
            add.insert(0, f"if H[at + 1] == 0 or x{j} > {slot} then {slot} = x{j} end")
            emit.append(f"out[col + {j - 1}] = (H[at + 1] == 0) and NAN or {slot}")
            merge.append(f"max(x{j}, y{j})")
        else:
            add.append(f"{slot} = {slot} + x{j}")
            subtract.append(f"{slot} = {slot} - x{j}")
            emit.append(f"out[col + {j - 1}] = {slot}")
            merge.append(f"x{j} + y{j}")
        tx.append({"c": "1", "s": "cents", "q": "cents * cents", "m": "cents"}.get(s, "0"))
    zero = " ".join(f"H[at + {j}] = 0" for j in range(1, ns + 1))
    lines = [
        f"add = function(H, at, {xs}) {' '.join(add)} end",
        f"zero = function(H, at) {zero} end",
        f"sub = function(H, at, {xs}) {' '.join(subtract) or 'return'} end",
        f"emit = function(out, col, H, at) {' '.join(emit)} end",
        f"merge = function({x4}, {y4}) return {', '.join(merge)} end",
    ]
    if cur is not None:
        setcur = " ".join(f"H[{cur + j}] = x{j}" for j in range(1, ns + 1))
        getcur = ", ".join(f"H[{cur + j}]" for j in range(1, ns + 1))
        lines += [f"tx = function(cents) return {', '.join(tx)} end",
                  f"setcur = function(H, {xs}) {setcur} end",
                  f"cur = function(H) return {getcur} end"]
    return ",\n       ".join(lines)


def _fast_paths(stats: list[str], cur: int | None, lis: list[int], starts: list[int], nh: int,
                col: int) -> str:
    """Straight-line Lua (constants inlined) for a bucket group's common paths: ``show`` (emit
    every window), and for tx groups ``same`` (a transaction in the anchor's bucket) and
    ``reset`` (every record stale: the group starts again at bucket B)."""
    ns = len(stats)
    tx = {"c": "1", "s": "cents", "q": "cents * cents", "m": "cents"}

    def emit(li: int, c: int) -> list[str]:
        out = []
        for j, st in enumerate(stats, start=1):
            slot = f"H[{li + 1 + j}]"
            out.append(f"out[{c + j - 1}] = " + (f"(H[{li + 2}] == 0) and NAN or {slot}"
                                                  if st == "m" else slot))
        return out

    show = []
    for k, li in enumerate(lis):
        show += emit(li, col + k * ns)
    lines = [f"show = function(H, out) {' '.join(show)} end"]
    if cur is None:
        return ",\n       ".join(lines)
    xs = [f"x{j}" for j in range(1, ns + 1)]
    head = f"local {', '.join(xs)} = {', '.join(tx[st] for st in stats)}"
    merge, first = [], []
    for j, st in enumerate(stats, start=1):
        slot = f"H[{cur + j}]"
        merge.append(f"if x{j} > {slot} then {slot} = x{j} end" if st == "m"
                     else f"{slot} = {slot} + x{j}")
        first.append(f"{slot} = x{j}")
    same = [head, f"local n, new = H[{nh}], H[{cur + 1}] == 0",
            f"if new then {' '.join(first)} else {' '.join(merge)} end"]
    reset = [head, *first]
    for li, d in zip(lis, starts, strict=True):
        if d == 0:  # the transaction's bucket is in the window
            upd = []
            for j, st in enumerate(stats, start=1):
                slot = f"H[{li + 1 + j}]"
                upd.append(f"if H[{li + 2}] == 0 or x{j} > {slot} then {slot} = x{j} end"
                           if st == "m" else f"{slot} = {slot} + x{j}")
            # the max first: it reads the count before it changes
            upd.sort(key=lambda x: not x.startswith("if"))
            same += upd + [f"H[{li + 1}] = n + 1"]
            reset += [f"H[{li}], H[{li + 1}] = 1, 1"] + [f"H[{li + 1 + j}] = x{j}" for j in
                                                         range(1, ns + 1)]
        else:
            reset += [f"H[{li}], H[{li + 1}] = 1, 0"] + [f"H[{li + 1 + j}] = 0" for j in
                                                         range(1, ns + 1)]
    same += show + ["return new"]
    reset += [f"H[{cur}], H[{nh}] = B, 0", *show]
    lines += [f"same = function(H, cents, out) {' '.join(same)} end",
              f"reset = function(H, B, cents, out) {' '.join(reset)} end"]
    return ",\n       ".join(lines)


#: the struct format of a statistic: counts as I4, amounts in cents (sums, squares, max) as d
_LETTER = {"c": "I4", "n": "I4", "f": "I4", "s": "d", "q": "d", "m": "d"}


def _group_table(g: Group, o: int, col: int, arg: int, lateness_us: int) -> tuple[str, list[str]]:
    """The Lua table of group ``g`` whose numbers start after H[o], and the struct format letter
    of each of its numbers in H."""
    nw = len(g.windows)
    starts = ", ".join(str(d) for d, _ in g.windows)
    ends = ", ".join(str(d + n - 1) for d, n in g.windows)
    if g.kind == "distinct":
        letters = ["I4", "I4"]  # number of values, segment length in bytes
        undelayed = "true" if all(d == 0 for d, _ in g.windows) else "false"
        extra = f", arg = {arg}, undelayed = {undelayed}"
    else:
        stats = list(g.stats) if g.kind == "tx" else ["n", "f"]
        ns = len(stats)
        stat_letters = [_LETTER[x] for x in stats]
        letters = ["I4"]  # A, the anchor bucket
        cur = None
        if g.kind == "tx":  # the current record: H[cur + 1 .. cur + ns]
            cur = o + 1
            letters += stat_letters
        first = o + len(letters) + 1  # lo of the first window
        for _ in range(nw):
            letters += ["I4", "I4", *stat_letters]  # lo, hi, the sums
        letters.append("I4")  # the number of closed records
        lis = ", ".join(str(first + k * (2 + ns)) for k in range(nw))
        # a record: I4 bucket, then the statistics
        rfmt = "<I4" + "".join(stat_letters)
        rsize = 4 + sum(4 if x == "I4" else 8 for x in stat_letters)
        li_list = [first + k * (2 + ns) for k in range(nw)]
        extra = (f", ns = {ns}, mi = {stats.index('m') + 1 if 'm' in stats else 0}, "
                 f"li = {{{lis}}}, nh = {o + len(letters)},\n"
                 f"       rfmt = '{rfmt}', rsize = {rsize},\n"
                 f"       {_stat_functions(stats, cur)},\n"
                 f"       {_fast_paths(stats, cur, li_list, [d for d, _ in g.windows], o + len(letters), col)}")
    size = len(letters)
    desc = (f"{g.entity} {g.kind}, {g.width_s} s buckets{', ' + g.source if g.source else ''}, "
            f"windows (delay, length) in buckets {list(g.windows)}: H[{o + 1}..{o + size}]")
    text = (f"      {{-- {desc}\n"
            f"       kind = '{g.kind}', w = {g.width_s * 1_000_000}, reach = {g.reach}, "
            f"span = {_span_us(g, lateness_us)}, o = {o}, size = {size}, col = {col}, nw = {nw},\n"
            f"       s = {{{starts}}}, e = {{{ends}}}{extra}}},")
    return text, letters


def _tables(plan: Plan, horizon_us: int, lateness_us: int, snapshot_ttl_s: int) -> tuple[str, str]:
    """(the constants, the table E) of the library."""
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
    arg = 5
    for ent in entities(plan):
        groups = [g for g in plan.groups if g.entity == ent]
        letters = ["d", "d"]  # H[1] latest event time, H[2] event time of the last TTL
        rows = []
        for g in groups:
            text, more = _group_table(g, len(letters), cols[id(g)], arg, lateness_us)
            rows.append(text)
            letters += more
            if g.kind == "distinct":
                arg += 1
        prev = plan.previous and ent == "card"
        if prev:
            letters.append("I4")  # the number of recent transactions
        ph = len(letters) if prev else 0
        nhead = len(letters)
        hfmt = "<" + "".join(letters)
        hbytes = sum(4 if x == "I4" else 8 for x in letters)
        spans = [_span_us(g, lateness_us) for g in groups] + ([prev_span] if prev else [])
        span = max(spans)
        first = cols[id(groups[0])] if groups else prev_col
        ncol = sum(len(g.windows) * len(g.outputs()) for g in groups)  # contiguous
        body = "\n".join(rows)
        blocks.append(
            f"  {{name = '{ent}', ordered = {'true' if ent.startswith('card') else 'false'}, "
            f"prev = {'true' if prev else 'false'}, ph = {ph}, prevcol = {prev_col},\n"
            f"   nhead = {nhead}, hbytes = {hbytes}, hfmt = '{hfmt}', col = {first}, "
            f"ncols = {ncol},\n"
            f"   span = {span}, ttl = {math.ceil(span / 1_000_000)},  -- the key's TTL, s\n"
            f"   groups = {{\n{body}\n   }}}},"
        )
    constants = (
        f"-- fraudstream feature set {plan.feature_set.name!r}, plan {plan.digest}\n"
        f"local LATENESS = {lateness_us}  -- allowed lateness, us\n"
        f"local SNAPSHOT_TTL = {snapshot_ttl_s}  -- s\n"
        f"local NCOLS = {ncols}  -- raw columns per transaction\n"
        f"local RAWFMT = '<{'d' * ncols}'\n"
        f"local PREV_SPAN = {prev_span}  -- how long the card's recent transactions are needed, us\n"
    )
    table = "-- the entities, in keys order, and their groups\nlocal E = {\n" + "\n".join(blocks) + "\n}\n"
    return constants, table


def render(plan: Plan, horizon_us: int, lateness_us: int, snapshot_ttl_s: int) -> Library:
    """The library of ``plan``; ``horizon_us`` bounds the previous-transaction lookups. Its name
    is a digest of its code, so stores with the same plan and settings share it."""
    constants, table = _tables(plan, horizon_us, lateness_us, snapshot_ttl_s)
    body = constants + _COMMON.replace("__TABLE__", table) + _PROCESS + _MANY + _SAVE
    name = "fraudstream_" + hashlib.sha1(body.encode()).hexdigest()[:16]
    code = (f"#!lua name={name}\n{body}\n"
            f"redis.register_function('{name}_process', process)\n"
            f"redis.register_function('{name}_label', label)\n"
            f"redis.register_function('{name}_many', batched(process))\n"
            f"redis.register_function('{name}_label_many', batched(label))\n"
            f"redis.register_function('{name}_save', save)\n")
    return Library(code, name)
