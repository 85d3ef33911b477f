using System.Collections.Concurrent;
using System.Globalization;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// Rooms and named secrets (the id_token signing key) in the Redis several instances share: every instance sees a room
/// the moment another created it, and every instance signs and checks id_tokens with the same key. Rooms are hashes
/// (<c>room:{id}</c>: t token, n name, cb created by, ca created at, ea expires at, unix ms), with their expiry in the
/// sorted set <c>roomexp</c> and every id in the set <c>rooms</c>.
/// Rooms this instance has read and the keys it uses are remembered, so that after Redis lost its data (restarted without
/// persistence) the instance writes back the rooms its peers are in and the signing key (<see cref="RestoreAsync"/>).
/// </summary>
internal sealed class RedisRoomStore(RedisBackplane redis) : IRoomStore
{
    private const string CreateScript = """
        local k = ARGV[1] .. 'room:' .. ARGV[2]
        if redis.call('EXISTS', k) == 1 then return 0 end
        redis.call('HSET', k, 't', ARGV[3], 'n', ARGV[4], 'cb', ARGV[5], 'ca', ARGV[6], 'ea', ARGV[7])
        redis.call('SADD', ARGV[1] .. 'rooms', ARGV[2])
        if ARGV[7] ~= '' then redis.call('ZADD', ARGV[1] .. 'roomexp', ARGV[7], ARGV[2]) end
        return 1
        """;

    private const string DeleteScript = """
        redis.call('ZREM', ARGV[1] .. 'roomexp', ARGV[2])
        redis.call('SREM', ARGV[1] .. 'rooms', ARGV[2])
        return redis.call('DEL', ARGV[1] .. 'room:' .. ARGV[2])
        """;

    private readonly ConcurrentDictionary<string, RoomRecord> _known = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _keys = new(StringComparer.Ordinal);

    private RedisKey RoomKey(string roomId) => redis.Prefix + "room:" + roomId;

    public async Task<bool> TryCreateRoomAsync(RoomRecord room, CancellationToken ct)
    {
        var created = (int)await redis.EvalAsync(CreateScript, room.RoomId, room.Token, room.Name ?? "\0", room.CreatedBy ?? "\0",
            room.CreatedAt.ToUnixTimeMilliseconds(), room.ExpiresAt is { } e ? e.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) : "").ConfigureAwait(false) == 1;
        if (created) _known[room.RoomId] = room;
        return created;
    }

    public async Task<RoomRecord?> GetRoomAsync(string roomId, CancellationToken ct)
    {
        var fields = await redis.RunAsync(db => db.HashGetAsync(RoomKey(roomId), ["t", "n", "cb", "ca", "ea"])).ConfigureAwait(false);
        if (fields[0].IsNull)
        {
            _known.TryRemove(roomId, out _);
            return null;
        }
        var room = new RoomRecord(roomId, fields[0]!, Optional(fields[1]), Optional(fields[2]),
            DateTimeOffset.FromUnixTimeMilliseconds((long)fields[3]),
            fields[4].IsNullOrEmpty ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)fields[4]));
        _known[roomId] = room;
        return room;
    }

    /// <summary>"\0" stands for null (an empty name is a name).</summary>
    private static string? Optional(RedisValue value) => value.IsNull || value == "\0" ? null : (string?)value;

    public async Task<bool> DeleteRoomAsync(string roomId, CancellationToken ct)
    {
        _known.TryRemove(roomId, out _);
        return (int)await redis.EvalAsync(DeleteScript, roomId).ConfigureAwait(false) > 0;
    }

    public async Task<IReadOnlyList<string>> PurgeExpiredAsync(DateTimeOffset now, CancellationToken ct)
    {
        var due = await redis.RunAsync(db => db.SortedSetRangeByScoreAsync(redis.Prefix + "roomexp", double.NegativeInfinity, now.ToUnixTimeMilliseconds())).ConfigureAwait(false);
        var purged = new List<string>();
        foreach (var id in due)
        {
            // Another instance may purge the same room at the same moment: only the one whose delete removed it reports it.
            if (await DeleteRoomAsync(id!, ct).ConfigureAwait(false)) purged.Add(id!);
        }
        return purged;
    }

    public async Task<int> CountRoomsAsync(CancellationToken ct) =>
        (int)await redis.RunAsync(db => db.SetLengthAsync(redis.Prefix + "rooms")).ConfigureAwait(false);

    public async Task<byte[]> GetOrCreateKeyAsync(string name, Func<byte[]> create, CancellationToken ct)
    {
        RedisKey key = redis.Prefix + "key:" + name;
        // The first instance to start writes the key; every other one reads that very key.
        await redis.RunAsync(db => db.StringSetAsync(key, create(), when: When.NotExists)).ConfigureAwait(false);
        var value = (byte[]?)await redis.RunAsync(db => db.StringGetAsync(key)).ConfigureAwait(false)
            ?? throw new SharedStoreUnavailableException($"The key '{name}' vanished from Redis while it was being read.");
        _keys[name] = value;
        return value;
    }

    /// <summary>After Redis lost its data: writes back the signing keys and the given rooms (those this instance's peers are in),
    /// unless another instance already did.</summary>
    public async Task RestoreAsync(IEnumerable<string> roomIds)
    {
        foreach (var (name, value) in _keys)
        {
            RedisKey key = redis.Prefix + "key:" + name;
            await redis.RunAsync(db => db.StringSetAsync(key, value, when: When.NotExists)).ConfigureAwait(false);
        }
        foreach (var roomId in roomIds.Distinct(StringComparer.Ordinal))
        {
            if (_known.TryGetValue(roomId, out var room)) await TryCreateRoomAsync(room, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Redis is owned by the cluster object, not by the store.</summary>
    public ValueTask DisposeAsync() => default;
}
