using System.Security.Cryptography;
using System.Text;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Who owns each peer id. <c>/anonymous-signin</c> hands an id_token to anyone for any user name, so a valid id_token
/// for a peer id proves nothing about who registered it; but every id_token is unique (it carries a random
/// <c>jti</c>), and only the peer that signed in holds the one it registered with. The first registration of a peer
/// id binds the id to (a hash of) that id_token; a later registration of the same id, on any connection and in any
/// room, is accepted only with the same id_token — the holder re-registering, or reconnecting after its connection
/// dropped (classic workers and our SignalingClient both re-send their id_token). Anyone else gets PEER_ID_IN_USE,
/// and the holder's connection is not touched.
///
/// The binding lasts while a connection holds the id. When that connection is lost without a goodbye (no close
/// frame: a network drop, a killed process, the server dropping a peer that stopped reading) it lasts a resume grace
/// longer, so nobody can slip in while the holder reconnects. A goodbye (close frame), a deletion through the HTTP
/// API, or the connection re-registering under another id ends it at once. Bindings live in memory: a server
/// restart frees every id (the first to register after it wins, as before).
/// </summary>
internal sealed class PeerIdBindings(TimeSpan resumeGrace) : IPeerIdBindings
{
    private const int SweepThreshold = 1024;

    private sealed class Binding(byte[] secret, IPeerLink holder)
    {
        public byte[] Secret = secret;
        /// <summary>The connection holding the id; null while it waits for its holder to resume.</summary>
        public IPeerLink? Holder = holder;
        public DateTimeOffset FreeAt;
    }

    private readonly object _gate = new();
    private readonly Dictionary<string, Binding> _bindings = new(StringComparer.Ordinal);
    private int _sweepAt = SweepThreshold;

    /// <summary>Ids bound now, held or waiting for their holder (tests check that it stays bounded).</summary>
    public int Count
    {
        get { lock (_gate) return _bindings.Count; }
    }

    /// <summary>Binds <paramref name="peerId"/> to <paramref name="idToken"/> and <paramref name="link"/>, or moves an
    /// existing binding to <paramref name="link"/> when the id_token is the one it was bound with. False: someone else holds it.</summary>
    public bool TryClaim(string peerId, string idToken, IPeerLink link, DateTimeOffset now)
    {
        var secret = SHA256.HashData(Encoding.UTF8.GetBytes(idToken));
        lock (_gate)
        {
            if (_bindings.TryGetValue(peerId, out var binding))
            {
                // The holder's own connection may re-register with a fresh id_token (it signed in again): the connection is the proof.
                if (binding.Holder == link || CryptographicOperations.FixedTimeEquals(binding.Secret, secret))
                {
                    binding.Secret = secret;
                    binding.Holder = link;
                    return true;
                }
                if (binding.Holder is not null || binding.FreeAt > now) return false;
            }
            if (_bindings.Count >= _sweepAt) SweepLocked(now);
            _bindings[peerId] = new Binding(secret, link);
            return true;
        }
    }

    /// <summary>The holder's registration of <paramref name="peerId"/> ended. <paramref name="resumable"/>: the connection
    /// was lost rather than closed, so the id stays reserved for the holder for the resume grace.</summary>
    public void Release(string peerId, IPeerLink link, bool resumable, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_bindings.TryGetValue(peerId, out var binding) || binding.Holder != link) return;
            if (resumable && resumeGrace > TimeSpan.Zero)
            {
                binding.Holder = null;
                binding.FreeAt = now + resumeGrace;
            }
            else
            {
                _bindings.Remove(peerId);
            }
        }
    }

    /// <summary>The peer was deleted through the HTTP API (with its room token): the id is free at once.</summary>
    public void Forget(string peerId)
    {
        lock (_gate) _bindings.Remove(peerId);
    }

    private void SweepLocked(DateTimeOffset now)
    {
        foreach (var peerId in _bindings.Where(p => p.Value.Holder is null && p.Value.FreeAt <= now).Select(p => p.Key).ToList())
            _bindings.Remove(peerId);
        _sweepAt = Math.Max(SweepThreshold, _bindings.Count * 2);
    }
}

/// <summary>Who owns each peer id (see <see cref="PeerIdBindings"/> for the rules): in memory for one server, in Redis
/// (<c>Cluster.RedisPeerIdBindings</c>) for instances sharing it, so a peer id is bound across every instance.</summary>
internal interface IPeerIdBindings
{
    /// <summary>Ids bound now, held or waiting for their holder.</summary>
    int Count { get; }

    bool TryClaim(string peerId, string idToken, IPeerLink link, DateTimeOffset now);

    void Release(string peerId, IPeerLink link, bool resumable, DateTimeOffset now);

    void Forget(string peerId);
}
