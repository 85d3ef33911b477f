using System.Collections.Concurrent;

namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// Limits wrong-token guesses per remote address. Our rooms have 128-bit tokens, but rooms carried over from
/// classic servers may have 24-bit ones, which an unthrottled endpoint would let anyone enumerate.
/// Refusing by address (not by room) keeps a guesser from locking legitimate viewers out of a room.
/// </summary>
internal sealed class MonitorAuthThrottle(int allowedFailures, TimeSpan window)
{
    /// <summary>Above this many tracked addresses, expired entries are swept so the table cannot grow without bound.</summary>
    private const int SweepThreshold = 4096;

    private readonly ConcurrentDictionary<string, Failures> _byAddress = new(StringComparer.Ordinal);

    /// <summary>How long the address must wait before its next attempt, or zero when it may try now.</summary>
    public TimeSpan RetryAfter(string? address, DateTimeOffset now)
    {
        if (address is null || !_byAddress.TryGetValue(address, out var failures)) return TimeSpan.Zero;
        lock (failures)
        {
            if (now - failures.WindowStart >= window) return TimeSpan.Zero;
            return failures.Count >= allowedFailures ? failures.WindowStart + window - now : TimeSpan.Zero;
        }
    }

    public void RecordFailure(string? address, DateTimeOffset now)
    {
        if (address is null) return;
        if (_byAddress.Count > SweepThreshold) Sweep(now);
        var failures = _byAddress.GetOrAdd(address, _ => new Failures { WindowStart = now });
        lock (failures)
        {
            if (now - failures.WindowStart >= window)
            {
                failures.WindowStart = now;
                failures.Count = 0;
            }
            failures.Count++;
        }
    }

    private void Sweep(DateTimeOffset now)
    {
        foreach (var (address, failures) in _byAddress)
        {
            bool expired;
            lock (failures) expired = now - failures.WindowStart >= window;
            if (expired) _byAddress.TryRemove(address, out _);
        }
    }

    private sealed class Failures
    {
        public DateTimeOffset WindowStart;
        public int Count;
    }
}
