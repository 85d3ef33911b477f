using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// The peer registry of an instance that shares Redis with others. Redis holds the truth (one hash per peer, see
/// <see cref="RedisScripts"/>); every change is one Lua script, so reservations are as atomic as under the single
/// server's lock. Reads (discovery, relays, the monitor) never leave the process: each instance keeps a mirror of every
/// peer in an <see cref="InMemoryPeerRegistry"/>, fed by the change events the scripts publish and by the results of its
/// own scripts (applied at once, so an instance always reads its own writes). Each change carries a sequence number
/// from Redis; the mirror keeps the newest per peer (and remembers deletions for a while), so an echo or a late event
/// never undoes a newer state. After the connection to Redis was lost (events may have been missed) the mirror is
/// rebuilt from an atomic snapshot (<see cref="Resync"/>).
/// </summary>
internal sealed class RedisPeerRegistry : IPeerRegistry
{
    private const string WorkerRole = "worker";
    private static readonly TimeSpan TombstoneLife = TimeSpan.FromMinutes(1);

    private readonly RedisBackplane _redis;
    private readonly object _gate = new();
    private InMemoryPeerRegistry _mirror = new();
    private readonly Dictionary<string, PeerState> _states = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Seq, DateTime At)> _tombstones = new(StringComparer.Ordinal);
    /// <summary>This instance's registered connections by link id (the bus delivers to them).</summary>
    private readonly Dictionary<string, IPeerLink> _localLinks = new(StringComparer.Ordinal);
    /// <summary>What this instance registered, to write it again if Redis loses it.</summary>
    private readonly Dictionary<string, LocalPeer> _localPeers = new(StringComparer.Ordinal);

    /// <summary>The fields of a peer as Redis last told this instance.</summary>
    private sealed record PeerState(long Seq, string RoomId, string OwnMetadataJson, string MetadataVersion, string Instance, string LinkId);

    private sealed record LocalPeer(string RoomId, string Role, string OwnMetadataJson, long ConnectedAtMs, string LinkId, string Address);

    public RedisPeerRegistry(RedisBackplane redis) => _redis = redis;

    /// <summary>A change another instance made (a peer joined, left, changed metadata or reservation): the monitor listens.</summary>
    public Action<string, string>? RemoteChange { get; set; }

    /// <summary>False while Redis is unreachable; discovery then answers an error instead of a stale list.</summary>
    public Func<bool> IsHealthy { get; set; } = () => true;

    public PeerSnapshot? Register(string peerId, string roomId, string role, JsonObject metadata, IPeerLink link, DateTimeOffset connectedAt)
    {
        var linkId = _redis.LinkIdOf(link);
        var own = SignalingJson.ToWire(metadata);
        var connectedMs = connectedAt.ToUnixTimeMilliseconds();
        var before = Get(peerId);
        lock (_gate) _localLinks[linkId] = link;
        RedisResult[] result;
        try
        {
            result = (RedisResult[])_redis.Eval(RedisScripts.Register, peerId, roomId, role, own, StatusOf(metadata), SpeaksExtensions(metadata),
                connectedMs, _redis.InstanceId, linkId, link.RemoteAddress, "0")!;
        }
        catch
        {
            lock (_gate) _localLinks.Remove(linkId);
            throw;
        }
        lock (_gate) _localPeers[peerId] = new LocalPeer(roomId, role, own, connectedMs, linkId, link.RemoteAddress);
        var replaced = ApplyResultEvents(result, 2, peerId);
        var previousLink = (string)result[1]!;
        if (previousLink.Length == 0 || previousLink == linkId) return null;
        var previousInstance = (string)result[0]!;
        var previousRoom = replaced?.RoomId ?? before?.RoomId ?? roomId;
        var oldLink = LinkFor(previousInstance, previousLink, peerId, previousRoom, before?.Link.RemoteAddress ?? "");
        return before is not null && before.RoomId == previousRoom
            ? before with { Link = oldLink }
            : new PeerSnapshot(peerId, previousRoom, role, "{}", connectedAt, oldLink, []);
    }

    public bool Remove(string peerId, IPeerLink link)
    {
        var linkId = _redis.LinkIdOf(link);
        lock (_gate)
        {
            _localLinks.Remove(linkId);
            if (_localPeers.TryGetValue(peerId, out var mine) && mine.LinkId == linkId) _localPeers.Remove(peerId);
        }
        var result = (RedisResult[])_redis.Eval(RedisScripts.Remove, peerId, linkId)!;
        ApplyResultEvents(result, 0, null);
        return result.Length > 0;
    }

    public PeerSnapshot? Evict(string peerId)
    {
        var before = Get(peerId);
        var result = (RedisResult[])_redis.Eval(RedisScripts.Remove, peerId, "")!;
        var removed = ApplyResultEvents(result, 0, peerId);
        if (removed is null) return null;
        lock (_gate) _localPeers.Remove(peerId);
        return before is not null && before.RoomId == removed.RoomId ? before with { Link = removed.Link } : removed;
    }

    public PeerSnapshot? Get(string peerId)
    {
        lock (_gate) return _mirror.Get(peerId);
    }

    public IReadOnlyList<PeerSnapshot> PeersInRoom(string roomId)
    {
        lock (_gate) return _mirror.PeersInRoom(roomId);
    }

    public IReadOnlyList<PeerSnapshot> Discover(string roomId, string excludedPeerId, JsonObject? filters, out long roomVersion)
    {
        ThrowIfUnhealthy();
        lock (_gate) return _mirror.Discover(roomId, excludedPeerId, filters, out roomVersion);
    }

    public long RoomVersion(string roomId)
    {
        ThrowIfUnhealthy();
        lock (_gate) return _mirror.RoomVersion(roomId);
    }

    private void ThrowIfUnhealthy()
    {
        if (!IsHealthy()) throw new SharedStoreUnavailableException(SharedStoreUnavailableException.DefaultMessage);
    }

    public string? UpdateMetadata(string peerId, JsonObject update)
    {
        var statusUpdate = update.GetObject(PeerMetadataKeys.Properties)?.GetString(PeerMetadataKeys.Status);
        var materializedUpdate = (JsonObject)SignalingJson.Materialize(update)!;
        PeerState? state;
        lock (_gate) _states.TryGetValue(peerId, out state);
        var own = state?.OwnMetadataJson;
        var version = state?.MetadataVersion;
        // Optimistic: merge what this instance last saw; if the peer's metadata changed meanwhile, merge again on fresh data.
        for (var attempt = 0; attempt < 8; attempt++)
        {
            if (own is null || version is null)
            {
                var fields = _redis.Run(db => db.HashGet(PeerKey(peerId), ["m", "mv"]));
                if (fields[0].IsNull) return null;
                own = fields[0]!;
                version = fields[1]!;
            }
            var merged = MetadataMerge.Merge(JsonNode.Parse(own) as JsonObject ?? [], (JsonObject)materializedUpdate.DeepClone());
            var mergedJson = SignalingJson.ToWire(merged);
            var result = (RedisResult[])_redis.Eval(RedisScripts.UpdateMetadata, peerId, version, mergedJson, StatusOf(merged), SpeaksExtensions(merged),
                statusUpdate is null ? "" : "1", statusUpdate == WorkerStatus.Available ? "1" : "")!;
            switch ((string)result[0]!)
            {
                case "missing": return null;
                case "stale":
                    own = version = null;
                    continue;
            }
            ApplyResultEvents(result, 1, null);
            lock (_gate)
            {
                if (_localPeers.TryGetValue(peerId, out var mine)) _localPeers[peerId] = mine with { OwnMetadataJson = mergedJson };
                return _mirror.Get(peerId)?.MetadataJson ?? mergedJson;
            }
        }
        throw new SharedStoreUnavailableException("The peer's metadata kept changing under this update; try again.");
    }

    public ReservationOutcome TryReserve(string workerPeerId, string clientPeerId, string clientRoomId, out string? workerStatus)
    {
        var result = (RedisResult[])_redis.Eval(RedisScripts.TryReserve, workerPeerId, clientPeerId, clientRoomId)!;
        var status = (string)result[1]!;
        workerStatus = status.Length == 0 ? null : status;
        ApplyResultEvents(result, 2, null);
        return (string)result[0]! switch
        {
            "nf" => ReservationOutcome.TargetNotFound,
            "or" => ReservationOutcome.TargetInOtherRoom,
            "na" => ReservationOutcome.NotApplicable,
            "busy" => ReservationOutcome.Busy,
            _ => ReservationOutcome.Reserved,
        };
    }

    public IReadOnlyList<QueueCandidate> QueueCandidates(string roomId)
    {
        lock (_gate) return _mirror.QueueCandidates(roomId);
    }

    public bool TryReserveForTicket(string workerPeerId, string clientPeerId, string roomId)
    {
        var result = (RedisResult[])_redis.Eval(RedisScripts.TryReserveForTicket, workerPeerId, clientPeerId, roomId)!;
        ApplyResultEvents(result, 0, null);
        return result.Length > 0;
    }

    public void ReleaseReservation(string workerPeerId, string clientPeerId) =>
        ApplyResultEvents((RedisResult[])_redis.Eval(RedisScripts.Release, workerPeerId, clientPeerId)!, 0, null);

    public void ReleaseReservationsHeldBy(string clientPeerId) =>
        ApplyResultEvents((RedisResult[])_redis.Eval(RedisScripts.Release, "", clientPeerId)!, 0, null);

    public IReadOnlyList<string> WorkersReservedBy(string clientPeerId) =>
        _redis.Run(db => db.SetMembers(_redis.Prefix + "rv:" + clientPeerId)).Select(v => (string)v!).ToList();

    public int Count
    {
        get { lock (_gate) return _mirror.Count; }
    }

    public int RoomCount
    {
        get { lock (_gate) return _mirror.RoomCount; }
    }

    public IReadOnlyDictionary<string, int> CountByRole()
    {
        lock (_gate) return _mirror.CountByRole();
    }

    public string? AdminOf(string roomId) => _redis.Run(db => (string?)db.StringGet(_redis.Prefix + "adm:" + roomId));

    public string? ClaimAdmin(string roomId, string peerId) => (string)_redis.Eval(RedisScripts.ClaimAdmin, roomId, peerId)! is { Length: > 0 } admin ? admin : null;

    public string? ClaimSpace(string roomId, string space, string peerId) =>
        (string)_redis.Eval(RedisScripts.ClaimSpace, roomId, space, peerId)! is { Length: > 0 } holder ? holder : null;

    private RedisKey PeerKey(string peerId) => _redis.Prefix + "p:" + peerId;

    private static string StatusOf(JsonObject metadata) => metadata.GetObject(PeerMetadataKeys.Properties)?.GetString(PeerMetadataKeys.Status) ?? "";

    private static string SpeaksExtensions(JsonObject metadata) =>
        metadata.GetObject(PeerMetadataKeys.Properties) is { } properties
        && WorkerAdvertisement.Number(properties, SleapRtc.Protocol.Jobs.JobExtensions.MetadataProperty) is >= 1 ? "1" : "";

    // ---- the mirror ----

    /// <summary>Applies the events a script returned (from index <paramref name="first"/>); returns the snapshot of
    /// <paramref name="removedPeer"/> as a deletion event described it (room and connection), if one was among them.</summary>
    private PeerSnapshot? ApplyResultEvents(RedisResult[] result, int first, string? removedPeer)
    {
        PeerSnapshot? removed = null;
        for (var i = first; i < result.Length; i++)
        {
            var removal = Apply((string)result[i]!, fromBus: false);
            if (removal is not null && removal.PeerId == removedPeer) removed = removal;
        }
        return removed;
    }

    /// <summary>A change event from the bus (another instance's change, or the echo of this one's, which is ignored).</summary>
    public void ApplyFromBus(string json) => Apply(json, fromBus: true);

    /// <summary>Applies one event if it is newer than what the mirror holds. Returns a deletion as a snapshot (room and link).</summary>
    private PeerSnapshot? Apply(string json, bool fromBus)
    {
        using var document = JsonDocument.Parse(json);
        var e = document.RootElement;
        var peerId = e[1].GetString()!;
        string? changedRoom = null, leftRoom = null;
        PeerSnapshot? removal = null;
        lock (_gate)
        {
            _states.TryGetValue(peerId, out var known);
            if (e[0].GetString() == "d")
            {
                var seq = e[2].GetInt64();
                var room = e[3].GetString()!;
                removal = new PeerSnapshot(peerId, room, "", "{}", default, LinkForLocked(e[4].GetString()!, e[5].GetString()!, peerId, room, ""), []);
                if (known is not null && known.Seq >= seq || _tombstones.TryGetValue(peerId, out var t) && t.Seq >= seq) return removal;
                _tombstones[peerId] = (seq, DateTime.UtcNow);
                if (known is not null)
                {
                    _states.Remove(peerId);
                    _mirror.Evict(peerId);
                    leftRoom = known.RoomId;
                }
            }
            else
            {
                var fields = new Dictionary<string, string>(StringComparer.Ordinal);
                var array = e[2];
                for (var i = 0; i + 1 < array.GetArrayLength(); i += 2) fields[array[i].GetString()!] = array[i + 1].GetString()!;
                if (!ApplyUpsertLocked(peerId, fields, out var previousRoom)) return null;
                changedRoom = fields["r"];
                if (previousRoom is not null && previousRoom != changedRoom) leftRoom = previousRoom;
            }
        }
        if (fromBus && RemoteChange is { } notify)
        {
            if (leftRoom is not null) notify(leftRoom, peerId);
            if (changedRoom is not null) notify(changedRoom, peerId);
        }
        return removal;
    }

    private bool ApplyUpsertLocked(string peerId, Dictionary<string, string> f, out string? previousRoom)
    {
        previousRoom = null;
        var seq = long.Parse(f["q"], CultureInfo.InvariantCulture);
        _states.TryGetValue(peerId, out var known);
        if (known is not null && known.Seq >= seq || _tombstones.TryGetValue(peerId, out var t) && t.Seq >= seq) return false;
        previousRoom = known?.RoomId;
        var metadata = JsonNode.Parse(f["m"]) as JsonObject ?? [];
        if (f.TryGetValue("ss", out var shown) && shown == "1")
            metadata = MetadataMerge.Merge(metadata, new JsonObject { [PeerMetadataKeys.Properties] = new JsonObject { [PeerMetadataKeys.Status] = WorkerStatus.Reserved } });
        var instance = f["i"];
        var linkId = f["l"];
        var link = LinkForLocked(instance, linkId, peerId, f["r"], f.TryGetValue("a", out var address) ? address : "");
        _mirror.Register(peerId, f["r"], f["ro"], metadata, link, DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(f["c"], CultureInfo.InvariantCulture)));
        _states[peerId] = new PeerState(seq, f["r"], f["m"], f["mv"], instance, linkId);
        return true;
    }

    private IPeerLink LinkFor(string instance, string linkId, string peerId, string roomId, string address)
    {
        lock (_gate) return LinkForLocked(instance, linkId, peerId, roomId, address);
    }

    /// <summary>This instance's own socket for its own peers; a bus link for everyone else's.</summary>
    private IPeerLink LinkForLocked(string instance, string linkId, string peerId, string roomId, string address) =>
        instance == _redis.InstanceId && _localLinks.TryGetValue(linkId, out var local)
            ? local
            : new RemotePeerLink(_redis, instance, linkId, peerId, roomId, address);

    /// <summary>A message from another instance for one of this instance's connections: delivered only if that very
    /// connection still holds the peer id in the room the sender was checked against.</summary>
    public void DeliverFromBus(byte[] payload)
    {
        if (!BusEnvelope.TryParse(payload, out var kind, out var fields, out var frameOffset)) return;
        IPeerLink? link;
        bool here;
        lock (_gate)
        {
            here = _localLinks.TryGetValue(fields[kind == 'M' ? 2 : 1], out link)
                && (kind != 'M' || _mirror.Get(fields[0]) is { } entry && ReferenceEquals(entry.Link, link) && entry.RoomId == fields[1]);
        }
        if (kind == 'C')
        {
            if (here && int.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var status))
                link!.Close((System.Net.WebSockets.WebSocketCloseStatus)status, fields[3]);
            return;
        }
        var delivered = false;
        if (here)
        {
            var frame = new byte[payload.Length - frameOffset];
            Buffer.BlockCopy(payload, frameOffset, frame, 0, frame.Length);
            delivered = link!.TrySendUtf8(frame);
        }
        if (!delivered && fields[3].Length > 0) ReportDeliveryFailure(targetPeerId: fields[0], roomId: fields[1], senderPeerId: fields[3], senderLinkId: fields[4], type: fields[5]);
    }

    /// <summary>Tells a sender on another instance what a single server tells it at once: the relay did not reach its target
    /// (and, for an offer, the reservation it took is released, so the worker is not held by an offer it never saw).</summary>
    private void ReportDeliveryFailure(string targetPeerId, string roomId, string senderPeerId, string senderLinkId, string type)
    {
        var colon = senderLinkId.LastIndexOf(':');
        if (colon <= 0) return;
        if (type == MessageTypes.Offer)
        {
            try { ReleaseReservationsHeldBy(senderPeerId); }
            catch (SharedStoreUnavailableException) { }
        }
        var error = SignalingJson.CodedError(ErrorCodes.DeliveryFailed, $"Could not deliver to {Server.SignalingHub.Truncate(targetPeerId)}", type.Length > 0 ? type : null);
        var sender = new RemotePeerLink(_redis, senderLinkId.Substring(0, colon), senderLinkId, senderPeerId, roomId, "");
        sender.TrySendUtf8(SignalingJson.ToUtf8(error));
    }

    /// <summary>
    /// Rebuilds the mirror from one atomic snapshot of every peer (after events may have been missed). With
    /// <paramref name="forget"/> (Redis lost its data: sequence numbers started again) the old mirror is dropped first.
    /// Peers Redis says this instance owns but whose connection is gone (it ended while Redis was unreachable) are removed.
    /// Returns the rooms whose peers may have changed.
    /// </summary>
    public IReadOnlyCollection<string> Resync(bool forget)
    {
        var result = (RedisResult[])_redis.Eval(RedisScripts.Snapshot)!;
        var snapshotSeq = long.Parse((string)result[0]!, CultureInfo.InvariantCulture);
        var rooms = new HashSet<string>(StringComparer.Ordinal);
        var orphans = new List<(string PeerId, string LinkId)>();
        lock (_gate)
        {
            if (forget)
            {
                foreach (var state in _states.Values) rooms.Add(state.RoomId);
                _mirror = new InMemoryPeerRegistry();
                _states.Clear();
                _tombstones.Clear();
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 1; i + 1 < result.Length; i += 2)
            {
                var peerId = (string)result[i]!;
                var raw = (RedisResult[])result[i + 1]!;
                var fields = new Dictionary<string, string>(StringComparer.Ordinal);
                for (var j = 0; j + 1 < raw.Length; j += 2) fields[(string)raw[j]!] = (string)raw[j + 1]!;
                seen.Add(peerId);
                if (fields["i"] == _redis.InstanceId && !_localLinks.ContainsKey(fields["l"])) orphans.Add((peerId, fields["l"]));
                if (ApplyUpsertLocked(peerId, fields, out var previousRoom))
                {
                    rooms.Add(fields["r"]);
                    if (previousRoom is not null) rooms.Add(previousRoom);
                }
            }
            foreach (var (peerId, state) in _states.Where(s => !seen.Contains(s.Key) && s.Value.Seq <= snapshotSeq).ToList())
            {
                _states.Remove(peerId);
                _mirror.Evict(peerId);
                rooms.Add(state.RoomId);
            }
            var expired = DateTime.UtcNow - TombstoneLife;
            foreach (var peerId in _tombstones.Where(t => t.Value.At < expired).Select(t => t.Key).ToList()) _tombstones.Remove(peerId);
        }
        foreach (var (peerId, linkId) in orphans) ApplyResultEvents((RedisResult[])_redis.Eval(RedisScripts.Remove, peerId, linkId)!, 0, null);
        return rooms;
    }

    /// <summary>Drops deletion markers older than a minute (called from the heartbeat).</summary>
    public void PruneTombstones()
    {
        lock (_gate)
        {
            var expired = DateTime.UtcNow - TombstoneLife;
            foreach (var peerId in _tombstones.Where(t => t.Value.At < expired).Select(t => t.Key).ToList()) _tombstones.Remove(peerId);
        }
    }

    /// <summary>Redis lost what this instance wrote: register its live peers again (an id another instance took meanwhile stays
    /// there). Reservations are not restored: a client whose offer got through already talks to its worker directly.</summary>
    public void RestoreLocalPeers()
    {
        List<(string PeerId, LocalPeer Peer)> mine;
        lock (_gate) mine = _localPeers.Select(p => (p.Key, p.Value)).ToList();
        foreach (var (peerId, peer) in mine)
        {
            var metadata = JsonNode.Parse(peer.OwnMetadataJson) as JsonObject ?? [];
            var result = (RedisResult[])_redis.Eval(RedisScripts.Register, peerId, peer.RoomId, peer.Role, peer.OwnMetadataJson, StatusOf(metadata),
                SpeaksExtensions(metadata), peer.ConnectedAtMs, _redis.InstanceId, peer.LinkId, peer.Address, "1")!;
            ApplyResultEvents(result, 2, null);
        }
    }

    /// <summary>The rooms this instance's peers are in.</summary>
    public IReadOnlyList<string> LocalRoomIds()
    {
        lock (_gate) return _localPeers.Values.Select(p => p.RoomId).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Event applications by role for tests: how many peers this instance's mirror holds.</summary>
    internal int MirroredPeerCount
    {
        get { lock (_gate) return _states.Count; }
    }
}
