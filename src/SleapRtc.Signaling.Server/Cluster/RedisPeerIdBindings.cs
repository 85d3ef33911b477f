using System.Security.Cryptography;
using System.Text;
using SleapRtc.Signaling.Server;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// Peer-id ownership shared by every instance (the rules of <see cref="PeerIdBindings"/>): <c>b:{peer}</c> holds the
/// SHA-256 of the id_token that first registered the id and the link (connection) holding it. A connection lost
/// without a goodbye leaves the hash waiting for its holder with a TTL of the resume grace, so the expiry is Redis's
/// own. This is what lets a peer of a dead instance take its id over on another instance: it re-sends the same
/// id_token, which the binding accepts whatever link held it. When an instance dies the heartbeat's reaper turns the
/// bindings of its links into waiting ones.
/// </summary>
internal sealed class RedisPeerIdBindings(RedisBackplane redis, TimeSpan resumeGrace) : IPeerIdBindings
{
    private readonly object _gate = new();
    /// <summary>Held by this instance's links, to write again after Redis lost its data.</summary>
    private readonly Dictionary<string, (string Secret, string LinkId)> _held = new(StringComparer.Ordinal);

    /// <summary>Bindings this instance's connections hold (the shared count would need a scan of Redis).</summary>
    public int Count
    {
        get { lock (_gate) return _held.Count; }
    }

    public bool TryClaim(string peerId, string idToken, IPeerLink link, DateTimeOffset now)
    {
        var secret = Secret(idToken);
        var linkId = redis.LinkIdOf(link);
        if ((int)redis.Eval(RedisScripts.ClaimPeerId, peerId, secret, linkId, "0") != 1) return false;
        lock (_gate) _held[peerId] = (secret, linkId);
        return true;
    }

    public void Release(string peerId, IPeerLink link, bool resumable, DateTimeOffset now)
    {
        var linkId = redis.LinkIdOf(link);
        lock (_gate)
        {
            if (_held.TryGetValue(peerId, out var held) && held.LinkId == linkId) _held.Remove(peerId);
        }
        redis.Eval(RedisScripts.ReleasePeerId, peerId, linkId, resumable ? (long)resumeGrace.TotalMilliseconds : 0);
    }

    public void Forget(string peerId)
    {
        lock (_gate) _held.Remove(peerId);
        redis.Run(db => db.KeyDelete(redis.Prefix + "b:" + peerId));
    }

    /// <summary>After Redis lost its data: binds this instance's held ids again (unless someone bound them meanwhile).</summary>
    public void Restore()
    {
        List<KeyValuePair<string, (string Secret, string LinkId)>> held;
        lock (_gate) held = _held.ToList();
        foreach (var (peerId, (secret, linkId)) in held) redis.Eval(RedisScripts.ClaimPeerId, peerId, secret, linkId, "1");
    }

    private static string Secret(string idToken)
    {
        using var sha = SHA256.Create();
        var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(idToken));
        var text = new StringBuilder(hash.Length * 2);
        foreach (var b in hash) text.Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        return text.ToString();
    }
}
