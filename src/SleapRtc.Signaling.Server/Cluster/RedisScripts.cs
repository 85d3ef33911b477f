namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// The Lua scripts that make every change of the shared peer state one atomic step in Redis (a script runs alone), so a
/// reservation check-and-take is as atomic across instances as the single server's lock makes it across connections.
/// Every script that changes a peer publishes the change on the events channel from inside the script (so the channel
/// carries changes in commit order) and also returns it, so the calling instance applies its own change at once
/// instead of waiting for the echo. See README.md in this folder for the key layout.
///
/// ARGV[1] is always the key prefix. Peer hash fields: r room, ro role, m the peer's own metadata JSON, s its own
/// status ("" when it advertises none), x "1" when it advertises our job extensions, rb the client holding its
/// reservation, ss "1" while the server shows it "reserved", c connected_at (unix ms), i owning instance, l link id
/// (the connection), a remote address, q the sequence number of its last change.
/// </summary>
internal static class RedisScripts
{
    /// <summary>Helpers every script starts with. <c>out</c> collects the events the script published.</summary>
    private const string Prelude = """
        local P = ARGV[1]
        local out = {}
        local function pk(id) return P .. 'p:' .. id end
        local function emit(id)
          local seq = redis.call('INCR', P .. 'seq')
          redis.call('HSET', pk(id), 'q', seq)
          local h = redis.call('HGETALL', pk(id))
          local e = cjson.encode({'u', id, h})
          redis.call('PUBLISH', P .. 'ev', e)
          out[#out + 1] = e
        end
        local function release_worker(w)
          local k = pk(w)
          local rb = redis.call('HGET', k, 'rb')
          if rb and rb ~= '' then redis.call('SREM', P .. 'rv:' .. rb, w) end
          redis.call('HSET', k, 'rb', '', 'ss', '')
          emit(w)
        end
        local function release_by(c)
          for _, w in ipairs(redis.call('SMEMBERS', P .. 'rv:' .. c)) do
            if redis.call('HGET', pk(w), 'rb') == c then release_worker(w) end
          end
          redis.call('DEL', P .. 'rv:' .. c)
        end
        local function rm(id)
          local k = pk(id)
          local h = redis.call('HMGET', k, 'r', 'i', 'l')
          if not h[1] then return false end
          redis.call('DEL', k)
          redis.call('SREM', P .. 'peers', id)
          redis.call('SREM', P .. 'ip:' .. h[2], id)
          if redis.call('GET', P .. 'adm:' .. h[1]) == id then redis.call('DEL', P .. 'adm:' .. h[1]) end
          release_by(id)
          local seq = redis.call('INCR', P .. 'seq')
          local e = cjson.encode({'d', id, seq, h[1], h[2], h[3]})
          redis.call('PUBLISH', P .. 'ev', e)
          out[#out + 1] = e
          return true
        end

        """;

    /// <summary>ARGV: P, id, room, role, meta, status, ext, connected_at, instance, link, address, only_if_absent_or_mine.
    /// Returns {previous instance, previous link, events…} ("" when the id was free). With only_if_absent_or_mine = "1"
    /// (an instance restoring its peers after Redis lost them) an entry another instance owns now is left alone.</summary>
    public const string Register = Prelude + """
        local id = ARGV[2]
        local old = redis.call('HMGET', pk(id), 'i', 'l')
        if ARGV[12] == '1' and old[1] and old[1] ~= ARGV[9] then return {old[1], old[2] or ''} end
        rm(id)
        redis.call('HSET', pk(id), 'r', ARGV[3], 'ro', ARGV[4], 'm', ARGV[5], 's', ARGV[6], 'x', ARGV[7], 'rb', '', 'ss', '',
          'c', ARGV[8], 'i', ARGV[9], 'l', ARGV[10], 'a', ARGV[11], 'mv', '1')
        redis.call('SADD', P .. 'peers', id)
        redis.call('SADD', P .. 'ip:' .. ARGV[9], id)
        emit(id)
        local result = {old[1] or '', old[2] or ''}
        for _, e in ipairs(out) do result[#result + 1] = e end
        return result
        """;

    /// <summary>ARGV: P, id, link ("" = whatever the link: eviction). Returns the events ({} when nothing was removed).</summary>
    public const string Remove = Prelude + """
        local id = ARGV[2]
        if ARGV[3] ~= '' and redis.call('HGET', pk(id), 'l') ~= ARGV[3] then return {} end
        rm(id)
        return out
        """;

    /// <summary>ARGV: P, id, expected metadata version, meta, status, ext, update carries a status ("1"), that status is "available" ("1").
    /// Returns {"missing"}, {"stale"} (someone changed it since it was read: merge again) or {"ok", events…}.</summary>
    public const string UpdateMetadata = Prelude + """
        local id = ARGV[2]
        local k = pk(id)
        local mv = redis.call('HGET', k, 'mv')
        if not mv then return {'missing'} end
        if mv ~= ARGV[3] then return {'stale'} end
        redis.call('HSET', k, 'm', ARGV[4], 's', ARGV[5], 'x', ARGV[6], 'mv', tostring(tonumber(mv) + 1))
        if ARGV[7] == '1' then
          redis.call('HSET', k, 'ss', '')
          if ARGV[8] == '1' then
            local rb = redis.call('HGET', k, 'rb')
            if rb ~= '' then redis.call('SREM', P .. 'rv:' .. rb, id) end
            redis.call('HSET', k, 'rb', '')
          end
        end
        emit(id)
        local result = {'ok'}
        for _, e in ipairs(out) do result[#result + 1] = e end
        return result
        """;

    /// <summary>ARGV: P, worker, client, client's room. Returns {outcome, status, events…}: outcome nf (not found), or (other
    /// room), na (not a worker or already held by this client), busy, ok; status "" when the worker advertises none.</summary>
    public const string TryReserve = Prelude + """
        local w, c = ARGV[2], ARGV[3]
        local h = redis.call('HMGET', pk(w), 'r', 'ro', 's', 'rb', 'ss')
        if not h[1] then return {'nf', ''} end
        if h[1] ~= ARGV[4] then return {'or', ''} end
        local status = h[3]
        if h[5] == '1' then status = 'reserved' end
        if h[2] ~= 'worker' or h[4] == c then return {'na', status} end
        if h[4] ~= '' then return {'busy', status} end
        if status ~= '' and status ~= 'available' then return {'busy', status} end
        redis.call('HSET', pk(w), 'rb', c)
        redis.call('SADD', P .. 'rv:' .. c, w)
        if status == 'available' then
          redis.call('HSET', pk(w), 'ss', '1')
          status = 'reserved'
        end
        emit(w)
        local result = {'ok', status}
        for _, e in ipairs(out) do result[#result + 1] = e end
        return result
        """;

    /// <summary>ARGV: P, worker, client, room. Reserves only a queue candidate (a worker speaking our extensions, available,
    /// held by nobody). Returns {} when it was not one, else the events.</summary>
    public const string TryReserveForTicket = Prelude + """
        local w, c = ARGV[2], ARGV[3]
        local h = redis.call('HMGET', pk(w), 'r', 'ro', 's', 'rb', 'ss', 'x')
        if not h[1] or h[1] ~= ARGV[4] or h[2] ~= 'worker' or h[4] ~= '' or h[5] == '1' or h[3] ~= 'available' or h[6] ~= '1' then return {} end
        redis.call('HSET', pk(w), 'rb', c, 'ss', '1')
        redis.call('SADD', P .. 'rv:' .. c, w)
        emit(w)
        return out
        """;

    /// <summary>ARGV: P, worker ("" = every worker the client holds), client. Returns the events.</summary>
    public const string Release = Prelude + """
        if ARGV[2] == '' then
          release_by(ARGV[3])
        elseif redis.call('HGET', pk(ARGV[2]), 'rb') == ARGV[3] then
          release_worker(ARGV[2])
        end
        return out
        """;

    /// <summary>ARGV: P, room, peer. Returns the current admin when another peer holds the role, else "".</summary>
    public const string ClaimAdmin = """
        local k = ARGV[1] .. 'adm:' .. ARGV[2]
        local current = redis.call('GET', k)
        if current and current ~= ARGV[3] then return current end
        redis.call('SET', k, ARGV[3])
        return ''
        """;

    /// <summary>ARGV: P, room, space, peer. Returns the holder when another live peer of the room holds the name, else "".
    /// A holder that left (its peer entry gone or in another room) loses the name here, so no removal path needs to know
    /// about spaces; the claimant's previous name, if any, is released.</summary>
    public const string ClaimSpace = """
        local P = ARGV[1]
        local k = P .. 'spc:' .. ARGV[2] .. ':' .. ARGV[3]
        local current = redis.call('GET', k)
        if current and current ~= ARGV[4] and redis.call('HGET', P .. 'p:' .. current, 'r') == ARGV[2] then return current end
        local own = P .. 'spcof:' .. ARGV[4]
        local previous = redis.call('GET', own)
        if previous and previous ~= k and redis.call('GET', previous) == ARGV[4] then redis.call('DEL', previous) end
        redis.call('SET', k, ARGV[4])
        redis.call('SET', own, k)
        return ''
        """;

    /// <summary>Every peer and the sequence number the snapshot reflects: {seq, id, fields, id, fields, …}.</summary>
    public const string Snapshot = """
        local P = ARGV[1]
        local result = {redis.call('GET', P .. 'seq') or '0'}
        for _, id in ipairs(redis.call('SMEMBERS', P .. 'peers')) do
          local h = redis.call('HGETALL', P .. 'p:' .. id)
          if #h > 0 then
            result[#result + 1] = id
            result[#result + 1] = h
          end
        end
        return result
        """;

    /// <summary>
    /// The presence heartbeat, with the reaping of dead instances folded in. ARGV: P, instance, presence ttl ms, resume grace
    /// ms, proposed epoch. Stamps the instance alive (Redis time, so instances need no synchronised clocks), then removes
    /// every peer of each instance not seen for the ttl (their reservations end, their peer ids stay reserved for their
    /// id_tokens for the resume grace, as after a lost connection). Returns {epoch, "1" when this instance was already
    /// known, reaped peer count, events…}: a new epoch or an unknown instance means Redis lost what this instance had
    /// written (a restart without persistence, or this instance was reaped while cut off), so it writes it again.
    /// </summary>
    public const string Heartbeat = Prelude + """
        local inst = ARGV[2]
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('SET', P .. 'epoch', ARGV[5], 'NX')
        local epoch = redis.call('GET', P .. 'epoch')
        local known = redis.call('ZSCORE', P .. 'instances', inst) and '1' or '0'
        redis.call('ZADD', P .. 'instances', now, inst)
        local reaped = 0
        for _, dead in ipairs(redis.call('ZRANGEBYSCORE', P .. 'instances', '-inf', now - tonumber(ARGV[3]))) do
          for _, id in ipairs(redis.call('SMEMBERS', P .. 'ip:' .. dead)) do
            if redis.call('HGET', pk(id), 'i') == dead then
              rm(id)
              reaped = reaped + 1
              local b = P .. 'b:' .. id
              local holder = redis.call('HGET', b, 'l')
              if holder and string.sub(holder, 1, #dead + 1) == dead .. ':' then
                if tonumber(ARGV[4]) > 0 then
                  redis.call('HSET', b, 'l', '')
                  redis.call('PEXPIRE', b, ARGV[4])
                else
                  redis.call('DEL', b)
                end
              end
            end
          end
          redis.call('DEL', P .. 'ip:' .. dead)
          redis.call('ZREM', P .. 'instances', dead)
        end
        local result = {epoch, known, tostring(reaped)}
        for _, e in ipairs(out) do result[#result + 1] = e end
        return result
        """;

    /// <summary>ARGV: P, peer, secret, link, only_if_absent ("1" when restoring after Redis lost it). Returns 1 when the
    /// link now holds the id: it was free, or held (or waiting) for the same id_token, or this very link re-registers.</summary>
    public const string ClaimPeerId = """
        local k = ARGV[1] .. 'b:' .. ARGV[2]
        local h = redis.call('HMGET', k, 's', 'l')
        if h[1] then
          if ARGV[5] == '1' then return 0 end
          if h[2] ~= ARGV[4] and h[1] ~= ARGV[3] then return 0 end
        end
        redis.call('HSET', k, 's', ARGV[3], 'l', ARGV[4])
        redis.call('PERSIST', k)
        return 1
        """;

    /// <summary>ARGV: P, peer, link, resume grace ms (0: free at once). Only the link holding the id releases it.</summary>
    public const string ReleasePeerId = """
        local k = ARGV[1] .. 'b:' .. ARGV[2]
        if redis.call('HGET', k, 'l') ~= ARGV[3] then return 0 end
        if tonumber(ARGV[4]) > 0 then
          redis.call('HSET', k, 'l', '')
          redis.call('PEXPIRE', k, ARGV[4])
        else
          redis.call('DEL', k)
        end
        return 1
        """;
}
