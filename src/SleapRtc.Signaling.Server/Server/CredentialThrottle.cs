namespace SleapRtc.Signaling.Server;

/// <summary>
/// The one throttle for every credential check of the server (WebSocket <c>register</c>, <c>/create-room</c>'s
/// id_token, <c>/delete-peer</c>, <c>/delete-peers-and-room</c>, the monitor's room token). Wrong guesses are
/// counted per remote address and per room: each key answers its first <c>freeFailures</c> wrong guesses at once,
/// then one per <c>interval</c> (a generic cell rate algorithm: each key keeps the time its next failure is due).
///
/// A wrong guess is answered no earlier than the latest due time of its keys, and that slot is taken at once, so
/// parallel connections queue behind each other instead of multiplying the rate (200 connections guessing at once
/// get their 200 answers one a second, not 200 in a few seconds). Each connection has one guess in flight at a time
/// (a WebSocket's messages and a keep-alive connection's requests are handled in order), so the number of pending
/// delays is bounded by the number of connections. A right credential is checked first and never waits: a guesser
/// cannot lock the legitimate users of a room or of a shared address out, only slow down their typos.
/// </summary>
internal sealed class CredentialThrottle
{
    /// <summary>Above this many keys, keys whose due time has passed (equivalent to fresh ones) are dropped.</summary>
    private const int SweepThreshold = 4096;

    /// <summary>Room ids are short (8 hex); an attacker's long ones are keyed by their start, so keys stay small.</summary>
    private const int MaxRoomKeyLength = 128;

    private readonly object _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _due = new(StringComparer.Ordinal);
    private readonly TimeSpan _interval;
    private readonly TimeSpan _burst;
    private int _sweepAt = SweepThreshold;

    /// <param name="freeFailures">Wrong guesses per key answered at once (at least one).</param>
    /// <param name="interval">Spacing of further wrong answers per key.</param>
    public CredentialThrottle(int freeFailures, TimeSpan interval)
    {
        if (interval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval));
        _interval = interval;
        _burst = TimeSpan.FromTicks(interval.Ticks * Math.Max(0, freeFailures - 1));
    }

    /// <summary>Number of tracked keys (tests check that it stays bounded).</summary>
    internal int KeyCount
    {
        get { lock (_gate) return _due.Count; }
    }

    /// <summary>Records a wrong guess from <paramref name="address"/> for <paramref name="room"/> (null when the
    /// credential names no room) and returns how long to hold its answer back.</summary>
    public TimeSpan RecordFailure(string address, string? room, DateTimeOffset now)
    {
        var addressKey = "a:" + address;
        var roomKey = room is null ? null : "r:" + (room.Length > MaxRoomKeyLength ? room[..MaxRoomKeyLength] : room);
        lock (_gate)
        {
            if (_due.Count >= _sweepAt) SweepLocked(now);
            var release = Release(addressKey, now);
            if (roomKey is not null) release = Max(release, Release(roomKey, now));
            Take(addressKey, release, now);
            if (roomKey is not null) Take(roomKey, release, now);
            return release - now;
        }
    }

    /// <summary>Records a wrong guess and waits out its delay; returns the delay (for the log line).</summary>
    public async Task<TimeSpan> HoldBackFailureAsync(string address, string? room, CancellationToken ct)
    {
        var delay = RecordFailure(address, room, DateTimeOffset.UtcNow);
        if (delay > TimeSpan.Zero) await Task.Delay(delay, ct).ConfigureAwait(false);
        return delay;
    }

    /// <summary>The earliest time this key lets another failure be answered.</summary>
    private DateTimeOffset Release(string key, DateTimeOffset now)
        => _due.TryGetValue(key, out var due) ? Max(now, due - _burst) : now;

    private void Take(string key, DateTimeOffset release, DateTimeOffset now)
    {
        var due = _due.TryGetValue(key, out var previous) ? Max(previous, now) : now;
        _due[key] = Max(due, release) + _interval;
    }

    private void SweepLocked(DateTimeOffset now)
    {
        foreach (var key in _due.Where(p => p.Value <= now).Select(p => p.Key).ToList()) _due.Remove(key);
        // Amortised: the next sweep waits until the table has grown again by its current size.
        _sweepAt = Math.Max(SweepThreshold, _due.Count * 2);
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
