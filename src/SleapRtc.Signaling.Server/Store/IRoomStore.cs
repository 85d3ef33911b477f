namespace SleapRtc.Signaling.Store;

/// <summary>A room as the server keeps it. ExpiresAt null means the room never expires.</summary>
public sealed record RoomRecord(
    string RoomId,
    string Token,
    string? Name,
    string? CreatedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt)
{
    public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } expires && expires <= now;

    /// <summary>Never print the token: records end up in logs through string interpolation.</summary>
    public override string ToString() => $"Room {RoomId} (name {Name ?? "-"}, expires {ExpiresAt?.ToString("u") ?? "never"})";
}

/// <summary>
/// Durable room and key storage. Implementations must be safe to call from many connections at once.
/// SQLite today; a Redis-backed store for several server instances later.
/// </summary>
public interface IRoomStore : IAsyncDisposable
{
    /// <summary>Adds a room; returns false when the id is already taken.</summary>
    Task<bool> TryCreateRoomAsync(RoomRecord room, CancellationToken ct);

    Task<RoomRecord?> GetRoomAsync(string roomId, CancellationToken ct);

    /// <summary>Returns false when there was no such room.</summary>
    Task<bool> DeleteRoomAsync(string roomId, CancellationToken ct);

    /// <summary>Deletes every room whose expiry is at or before <paramref name="now"/>; returns their ids.</summary>
    Task<IReadOnlyList<string>> PurgeExpiredAsync(DateTimeOffset now, CancellationToken ct);

    Task<int> CountRoomsAsync(CancellationToken ct);

    /// <summary>Returns the named secret, creating it with <paramref name="create"/> on first use (e.g. the id_token signing key).</summary>
    Task<byte[]> GetOrCreateKeyAsync(string name, Func<byte[]> create, CancellationToken ct);
}
