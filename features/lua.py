"""The Redis side of the online store: two Lua scripts, generated per feature-set plan.

Each script starts with a constant table ``G`` (one entry per bucket group of the plan, see
:mod:`features.plan`), followed by a fixed body. Redis runs a script atomically, so the
idempotency check, the lateness check, every window update and the snapshot of a transaction
happen together or not at all (a script that fails half-way is the exception Redis does not roll
back; these scripts only fail on a broken key type).

Numbers leave the scripts as strings (``%.0f`` of integers below 2^53), never as Lua numbers,
which Redis would truncate to integers. The key scheme and the window semantics are documented in
:mod:`features.store`.
"""

from __future__ import annotations

from features.plan import Group, Plan

__all__ = ["render"]

_COMMON = r"""
local function fmt(x) return string.format('%.0f', x) end
local function ttl(cfg, lateness)
  return math.ceil(((cfg.reach + 2) * cfg.w + lateness) / 1000000)
end
local function trim(key, del)
  for i = 1, #del, 500 do
    redis.call('HDEL', key, unpack(del, i, math.min(i + 499, #del)))
  end
end
"""

# KEYS[1] snapshot hash, KEYS[2] scored event, KEYS[3] the card's recent events ('' if unused),
# KEYS[3 + g] the hash of group g ('' when the transaction lacks that entity).
# ARGV[1] event time (us), ARGV[2] allowed lateness (us), ARGV[3] snapshot TTL (s),
# ARGV[4] inputs JSON (stored), ARGV[5] label targets (stored), ARGV[6] recent-events member,
# ARGV[7] amount in cents, ARGV[6 + 2g] bucket of group g, ARGV[7 + 2g] its distinct value.
_PROCESS = r"""
local snap = KEYS[1]
local prior = redis.call('GET', snap)
if prior then return {'duplicate', prior, redis.call('GET', KEYS[2])} end
local ts = tonumber(ARGV[1])
local lateness = tonumber(ARGV[2])
local cents = tonumber(ARGV[7])
local prevkey = KEYS[3]
local out = {}
local writes = {}  -- per group: {key, hset args, fields to delete, refresh TTL}

-- 1. read and compute every group; nothing is written until all are known not to be late
for g = 1, #G do
  local cfg = G[g]
  local key = KEYS[3 + g]
  local nw = #cfg.win
  if key == '' then
    for i = 1, nw * cfg.nout do out[#out + 1] = '' end
  else
    local h = redis.call('HGETALL', key)
    local told = nil
    for i = 1, #h, 2 do
      if h[i] == 't' then told = tonumber(h[i + 1]); break end
    end
    local latest = ts
    if told then
      if ts < told - lateness then
        -- a card's events come in order (one partition); a terminal's come from every
        -- partition, so lagging behind it is not the event's fault: it is scored, and only
        -- buckets the terminal still keeps are updated (see the store's docstring)
        if cfg.ordered then return {'late', fmt(told)} end
      end
      if told > ts then latest = told end
    end
    local bs = ARGV[6 + 2 * g]
    local B = tonumber(bs)
    local keep = math.floor((latest - lateness) / cfg.w) - cfg.reach
    local del = {}
    local set = {}
    local fresh = (told == nil)  -- a new key or a new bucket field: (re)set the TTL
    if told ~= latest then set[#set + 1] = 't'; set[#set + 1] = fmt(latest) end
    if cfg.kind == 'tx' then
      local parse, hs, hq, hm = cfg.parse, cfg.hs, cfg.hq, cfg.hm
      local c, s, q, m = {}, {}, {}, {}
      for k = 1, nw do c[k] = 0; s[k] = 0; q[k] = 0; m[k] = false end
      local cc, cs, cq, cm = nil, 0, 0, 0  -- the current bucket
      for i = 1, #h, 2 do
        local f = h[i]
        if f ~= 't' then
          local b = tonumber(f)
          if b < keep then
            del[#del + 1] = f
          else
            local vc, vs, vq, vm = parse(h[i + 1])
            if b == B then cc, cs, cq, cm = vc, vs, vq, vm end
            for k = 1, nw do
              local wn = cfg.win[k]
              if b <= B - wn[1] and b >= B - wn[2] then
                c[k] = c[k] + vc
                if hs then s[k] = s[k] + vs end
                if hq then q[k] = q[k] + vq end
                if hm and ((not m[k]) or vm > m[k]) then m[k] = vm end
              end
            end
          end
        end
      end
      for k = 1, nw do
        if cfg.win[k][1] == 0 then
          c[k] = c[k] + 1
          s[k] = s[k] + cents
          q[k] = q[k] + cents * cents
          if (not m[k]) or cents > m[k] then m[k] = cents end
        end
        out[#out + 1] = fmt(c[k])
        if hs then out[#out + 1] = fmt(s[k]) end
        if hq then out[#out + 1] = fmt(q[k]) end
        if hm then out[#out + 1] = m[k] and fmt(m[k]) or '' end
      end
      if not cc then
        fresh = true
        cc, cs, cq, cm = 0, 0, 0, cents
      elseif cents > cm then
        cm = cents
      end
      if B >= keep then
        set[#set + 1] = bs
        set[#set + 1] = cfg.format(cc + 1, cs + cents, cq + cents * cents, cm)
      end
    elseif cfg.kind == 'distinct' then
      local val = ARGV[7 + 2 * g]
      local field = bs .. '|' .. val
      local count = nil
      local sets, sizes = {}, {}
      for k = 1, nw do sets[k] = {}; sizes[k] = 0 end
      for i = 1, #h, 2 do
        local f = h[i]
        if f ~= 't' then
          local fb, v = string.match(f, '^(%-?%d+)|(.*)$')
          local b = tonumber(fb)
          if b < keep then
            del[#del + 1] = f
          else
            if f == field then count = tonumber(h[i + 1]) end
            for k = 1, nw do
              local wn = cfg.win[k]
              if b <= B - wn[1] and b >= B - wn[2] and not sets[k][v] then
                sets[k][v] = true
                sizes[k] = sizes[k] + 1
              end
            end
          end
        end
      end
      for k = 1, nw do
        local d, new = sizes[k], ''
        if cfg.win[k][1] == 0 and val ~= '' then
          if sets[k][val] then new = '0' else new = '1'; d = d + 1 end
        end
        out[#out + 1] = fmt(d)
        out[#out + 1] = new
      end
      if val ~= '' and B >= keep then
        if not count then fresh = true; count = 0 end
        set[#set + 1] = field
        set[#set + 1] = fmt(count + 1)
      end
    else -- label: read only here; labels are added by the label script
      local n, f = {}, {}
      for k = 1, nw do n[k] = 0; f[k] = 0 end
      for i = 1, #h, 2 do
        local fl = h[i]
        if fl ~= 't' then
          local b = tonumber(fl)
          if b < keep then
            del[#del + 1] = fl
          else
            local vn, vf = cfg.parse(h[i + 1])
            for k = 1, nw do
              local wn = cfg.win[k]
              if b <= B - wn[1] and b >= B - wn[2] then
                n[k] = n[k] + vn
                f[k] = f[k] + vf
              end
            end
          end
        end
      end
      for k = 1, nw do
        out[#out + 1] = fmt(n[k])
        out[#out + 1] = fmt(f[k])
      end
    end
    writes[#writes + 1] = {key, set, del, fresh, cfg}
  end
end

-- 2. the card's previous transaction, in (time, transaction id) order
local plast = ts
if PREV and prevkey ~= '' then
  local top = redis.call('ZREVRANGE', prevkey, 0, 0, 'WITHSCORES')
  if top[2] then
    local t = tonumber(top[2])
    if ts < t - lateness then return {'late', fmt(t)} end
    if t > ts then plast = t end
  end
end

-- 3. not late: write the buckets, trim, set TTLs
for _, w in ipairs(writes) do
  if #w[2] > 0 then redis.call('HSET', w[1], unpack(w[2])) end
  trim(w[1], w[3])
  if w[4] then redis.call('EXPIRE', w[1], ttl(w[5], lateness)) end
end
if PREV then
  if prevkey == '' then
    out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
  else
    local member = ARGV[6]
    redis.call('ZADD', prevkey, ts, member)
    local r = redis.call('ZRANK', prevkey, member)
    if r > 0 then
      local p = redis.call('ZRANGE', prevkey, r - 1, r - 1, 'WITHSCORES')
      local la, lo = string.match(p[1], '^[^%z]*%z([^%z]*)%z([^%z]*)$')
      out[#out + 1] = p[2]; out[#out + 1] = la; out[#out + 1] = lo
    else
      out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
    end
    local old = redis.call('ZCOUNT', prevkey, '-inf', '(' .. fmt(plast - lateness))
    if old > 1 then redis.call('ZREMRANGEBYRANK', prevkey, 0, old - 2) end
    redis.call('EXPIRE', prevkey, math.ceil((PREV_HORIZON + lateness) / 1000000) + 1)
  end
end

-- 4. the snapshot: what a duplicate returns and what the learner joins labels with
local raw = table.concat(out, ',')
redis.call('SET', snap, raw .. '\30' .. ARGV[4] .. '\30' .. ARGV[5], 'EX', tonumber(ARGV[3]))
return {'new', raw}
"""

# KEYS[1] snapshot, KEYS[2] scored event, KEYS[3] label. ARGV[1] label JSON, ARGV[2] 1 = fraud,
# 0 = not, ARGV[3] allowed lateness (us). The snapshot's third part lists, per label group of the
# transaction: group index, key, bucket, event time (one per line).
_LABEL = r"""
local v = redis.call('GET', KEYS[1])
if not v then return {'unknown'} end
local sc = redis.call('GET', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate', v, sc} end
local left = redis.call('TTL', KEYS[1])
redis.call('SET', KEYS[3], ARGV[1], 'EX', left > 0 and left or 1)
local fraud = tonumber(ARGV[2])
local lateness = tonumber(ARGV[3])
local targets = string.match(v, '^[^\30]*\30[^\30]*\30(.*)$') or ''
local parts = {}
for x in string.gmatch(targets, '[^\n]+') do parts[#parts + 1] = x end
for i = 1, #parts - 3, 4 do
  local cfg = G[tonumber(parts[i])]
  local key, bs, ts = parts[i + 1], parts[i + 2], tonumber(parts[i + 3])
  local latest = ts
  local t = redis.call('HGET', key, 't')
  if t and tonumber(t) > ts then latest = tonumber(t) end
  -- a bucket no acceptable transaction can see any more is not written (it would be trimmed)
  if tonumber(bs) >= math.floor((latest - lateness) / cfg.w) - cfg.reach then
    local cur = redis.call('HGET', key, bs)
    local n, f = 0, 0
    if cur then n, f = cfg.parse(cur) end
    redis.call('HSET', key, bs, cfg.format(n + 1, f + fraud), 't', fmt(latest))
    redis.call('EXPIRE', key, ttl(cfg, lateness))
  end
end
return {'new', v, sc}
"""


def _codecs(g: Group) -> tuple[str, str]:
    """Lua (parse, format) of a bucket value: parse returns c, s, q, m (tx; 0 when not kept) or
    n, f (label); format takes the same four (tx) or two (label) numbers."""
    if g.kind == "distinct":
        return "nil", "nil"
    stats = g.stats if g.kind == "tx" else ("n", "f")
    names = [chr(ord("a") + i) for i in range(len(stats))]
    pattern = "^" + ",".join(["(%d+)"] * len(stats)) + "$"
    if g.kind == "tx":
        order = {st: names[i] for i, st in enumerate(stats)}
        ret = ", ".join(f"tonumber({order[st]})" if st in order else "0" for st in ("c", "s", "q", "m"))
        args = "c, s, q, m"
        fmt_args = ", ".join(stats)
    else:
        ret = ", ".join(f"tonumber({n})" for n in names)
        args = fmt_args = "n, f"
    parse = (f"function(v) local {', '.join(names)} = string.match(v, '{pattern}') "
             f"return {ret} end")
    spec = ",".join(["%.0f"] * len(stats))
    fmt = f"function({args}) return string.format('{spec}', {fmt_args}) end"
    return parse, fmt


def _group_table(g: Group) -> str:
    windows = ", ".join(f"{{{d}, {d + n - 1}}}" for d, n in g.windows)
    parse, fmt = _codecs(g)
    flags = ", ".join(f"h{s} = {'true' if s in g.stats else 'false'}" for s in ("s", "q", "m"))
    return (
        f"  {{kind = '{g.kind}', ordered = {'true' if g.entity.startswith('card') else 'false'}, "
        f"w = {g.width_s * 1_000_000}, reach = {g.reach}, "
        f"nout = {len(g.outputs())}, {flags}, win = {{{windows}}},  -- {g.entity} {g.kind} "
        f"{g.width_s}s {g.source}\n    parse = {parse},\n    format = {fmt}}},"
    )


def _preamble(plan: Plan, horizon_us: int) -> str:
    groups = "\n".join(_group_table(g) for g in plan.groups)
    return (
        f"-- fraudstream feature set {plan.feature_set.name!r}, plan {plan.digest}\n"
        f"local G = {{\n{groups}\n}}\n"
        f"local PREV = {'true' if plan.previous else 'false'}\n"
        f"local PREV_HORIZON = {horizon_us}\n"
    )


def render(plan: Plan, horizon_us: int) -> tuple[str, str]:
    """The (process, label) scripts of ``plan``; ``horizon_us`` bounds the previous-tx lookups."""
    head = _preamble(plan, horizon_us) + _COMMON
    return head + _PROCESS, head + _LABEL
