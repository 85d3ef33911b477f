using System.Security.Cryptography;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>Creates rooms with CSPRNG ids and 128-bit tokens, and purges expired ones.</summary>
internal sealed class RoomService(IRoomStore store, TimeSpan defaultTtl, ILogSink log, Action onCreated)
{
    /// <summary>Creates a room. ttl null = the default; <see cref="Timeout.InfiniteTimeSpan"/> = never expires.</summary>
    public async Task<RoomRecord> CreateAsync(string? name, TimeSpan? ttl, string? createdBy, CancellationToken ct,
        string? roomId = null, string? token = null)
    {
        var now = DateTimeOffset.UtcNow;
        var lifetime = ttl ?? defaultTtl;
        DateTimeOffset? expires = lifetime == Timeout.InfiniteTimeSpan ? null : now + lifetime;
        for (var attempt = 0; attempt < 8; attempt++)
        {
            // Room ids are not secret (classic: 8 hex); the token is the secret: 128 bits from the CSPRNG.
            var room = new RoomRecord(roomId ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant(),
                token ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant(),
                name, createdBy, now, expires);
            if (await store.TryCreateRoomAsync(room, ct).ConfigureAwait(false))
            {
                onCreated();
                log.Write(LogLevel.Information, "signaling", $"Created {room}");
                return room;
            }
            if (roomId is not null) throw new InvalidOperationException($"Room {roomId} already exists.");
        }
        throw new InvalidOperationException("Could not find a free room id.");
    }

    public Task<RoomRecord?> GetAsync(string roomId, CancellationToken ct) => store.GetRoomAsync(roomId, ct);

    public Task<bool> DeleteAsync(string roomId, CancellationToken ct) => store.DeleteRoomAsync(roomId, ct);

    public Task<int> CountAsync(CancellationToken ct) => store.CountRoomsAsync(ct);

    /// <summary>Deletes the expired rooms; returns their ids.</summary>
    public async Task<IReadOnlyList<string>> PurgeExpiredAsync(CancellationToken ct)
    {
        var purged = await store.PurgeExpiredAsync(DateTimeOffset.UtcNow, ct).ConfigureAwait(false);
        if (purged.Count > 0) log.Write(LogLevel.Information, "signaling", $"Purged {purged.Count} expired room(s)");
        return purged;
    }
}
