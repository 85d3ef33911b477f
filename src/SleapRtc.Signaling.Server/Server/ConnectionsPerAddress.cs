using System.Collections.Concurrent;
using System.Net;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Counts open TCP connections per remote address and refuses those over the cap, so one address cannot hold an
/// unbounded number of connections (each may queue up to MaxQueuedBytesPerConnection). Loopback may be exempt:
/// everything on this machine is one address, and the scale benchmarks run thousands of peers over it.
/// </summary>
internal sealed class ConnectionsPerAddress(int cap, bool exemptLoopback)
{
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);

    /// <summary>Takes a slot for a new connection from <paramref name="address"/>; false when the address is at the cap.
    /// A true answer must be paired with <see cref="Release"/>.</summary>
    public bool TryOpen(IPAddress? address, string key)
    {
        if (!Counts(address)) return true;
        var now = _open.AddOrUpdate(key, 1, static (_, count) => count + 1);
        if (now <= cap) return true;
        Release(address, key);
        return false;
    }

    public void Release(IPAddress? address, string key)
    {
        if (!Counts(address)) return;
        // Remove the entry when it reaches zero, so addresses seen once do not accumulate (compare-and-remove on every runtime).
        while (_open.TryGetValue(key, out var count))
        {
            if (count <= 1 ? ((ICollection<KeyValuePair<string, int>>)_open).Remove(new KeyValuePair<string, int>(key, count)) : _open.TryUpdate(key, count - 1, count)) return;
        }
    }

    /// <summary>Open connections from one address (tests).</summary>
    internal int OpenFrom(string key) => _open.TryGetValue(key, out var count) ? count : 0;

    private bool Counts(IPAddress? address) => cap > 0 && !(exemptLoopback && address is not null && IPAddress.IsLoopback(address));
}
