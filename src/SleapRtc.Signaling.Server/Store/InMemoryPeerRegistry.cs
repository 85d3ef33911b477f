using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Store;

/// <summary>
/// Live peers in memory behind one lock: each operation is a few dictionary lookups, and the single
/// lock is what makes a reservation check-and-take atomic across connections.
/// </summary>
public sealed class InMemoryPeerRegistry : IPeerRegistry
{
    private const string WorkerRole = "worker";
    private const string AvailableStatus = WorkerStatus.Available;
    private const string ReservedStatus = WorkerStatus.Reserved;

    private sealed class Entry
    {
        public required string PeerId;
        public required string RoomId;
        public required string Role;
        public required JsonObject Metadata;
        public required string MetadataJson;
        public byte[] PeerListEntryUtf8 = [];
        public required DateTimeOffset ConnectedAt;
        public required IPeerLink Link;
        /// <summary>The client whose offer reserved this worker, until the worker returns to available or the client leaves.</summary>
        public string? ReservedBy;
        /// <summary>True while "reserved" is a status the server wrote, not one the worker published.</summary>
        public bool StatusSetByServer;

        public PeerSnapshot Snapshot() => new(PeerId, RoomId, Role, MetadataJson, ConnectedAt, Link, PeerListEntryUtf8);

        public void RefreshEntry()
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(MetadataJson.Length + 128);
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { Encoder = SignalingJson.WireOptions.Encoder, SkipValidation = true }))
            {
                w.WriteStartObject();
                w.WriteString("peer_id", PeerId);
                w.WriteString("role", Role);
                w.WritePropertyName("metadata");
                w.WriteRawValue(MetadataJson, skipInputValidation: true);
                w.WriteNumber("connected_at", ConnectedAt.ToUnixTimeMilliseconds() / 1000.0);
                w.WriteEndObject();
            }
            PeerListEntryUtf8 = buffer.WrittenSpan.ToArray();
        }
    }

    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _peers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, Entry>> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _admins = new(StringComparer.Ordinal);
    /// <summary>Inference space names: (room, name) → holder, and the reverse, so a leaving holder frees its name at once.</summary>
    private readonly Dictionary<(string Room, string Space), string> _spaceHolders = new();
    private readonly Dictionary<string, (string Room, string Space)> _spaceOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _roomVersions = new(StringComparer.Ordinal);
    private long _lastVersion;

    public PeerSnapshot? Register(string peerId, string roomId, string role, JsonObject metadata, IPeerLink link, DateTimeOffset connectedAt)
    {
        var entry = new Entry
        {
            PeerId = peerId, RoomId = roomId, Role = role, Metadata = (JsonObject)SignalingJson.Materialize(metadata)!,
            MetadataJson = SignalingJson.ToWire(metadata), ConnectedAt = connectedAt, Link = link,
        };
        entry.RefreshEntry();
        lock (_gate)
        {
            // The same peer on a newer connection keeps its space name: the claim belongs to the peer, not the link.
            var replaced = RemoveLocked(peerId, leaving: false);
            if (_spaceOf.TryGetValue(peerId, out var claimed) && claimed.Room != roomId)
            {
                _spaceOf.Remove(peerId);
                _spaceHolders.Remove(claimed);
            }
            _peers[peerId] = entry;
            if (!_rooms.TryGetValue(roomId, out var room)) _rooms[roomId] = room = new(StringComparer.Ordinal);
            room[peerId] = entry;
            TouchLocked(roomId);
            return replaced?.Link == link ? null : replaced?.Snapshot();
        }
    }

    public bool Remove(string peerId, IPeerLink link)
    {
        lock (_gate)
        {
            if (!_peers.TryGetValue(peerId, out var entry) || entry.Link != link) return false;
            RemoveLocked(peerId);
            return true;
        }
    }

    public PeerSnapshot? Evict(string peerId)
    {
        lock (_gate) return RemoveLocked(peerId)?.Snapshot();
    }

    private Entry? RemoveLocked(string peerId, bool leaving = true)
    {
        if (leaving && _spaceOf.Remove(peerId, out var space)) _spaceHolders.Remove(space);
        if (!_peers.Remove(peerId, out var entry)) return null;
        if (_rooms.TryGetValue(entry.RoomId, out var room))
        {
            room.Remove(peerId);
            if (room.Count == 0)
            {
                _rooms.Remove(entry.RoomId);
                _roomVersions.Remove(entry.RoomId);
            }
            else
            {
                TouchLocked(entry.RoomId);
            }
        }
        if (_admins.TryGetValue(entry.RoomId, out var admin) && admin == peerId) _admins.Remove(entry.RoomId);
        ReleaseLocked(peerId);
        return entry;
    }

    public PeerSnapshot? Get(string peerId)
    {
        lock (_gate) return _peers.TryGetValue(peerId, out var entry) ? entry.Snapshot() : null;
    }

    public IReadOnlyList<PeerSnapshot> PeersInRoom(string roomId)
    {
        lock (_gate)
            return _rooms.TryGetValue(roomId, out var room) ? room.Values.Select(e => e.Snapshot()).ToList() : [];
    }

    public IReadOnlyList<PeerSnapshot> Discover(string roomId, string excludedPeerId, JsonObject? filters, out long roomVersion)
    {
        lock (_gate)
        {
            roomVersion = _roomVersions.GetValueOrDefault(roomId);
            if (!_rooms.TryGetValue(roomId, out var room)) return [];
            var filter = PeerFilter.Compile(SignalingJson.Materialize(filters) as JsonObject);
            var found = new List<PeerSnapshot>(room.Count);
            foreach (var entry in room.Values)
            {
                if (entry.PeerId == excludedPeerId) continue;
                if (filter.Matches(entry.Role, entry.Metadata)) found.Add(entry.Snapshot());
            }
            return found;
        }
    }

    public string? UpdateMetadata(string peerId, JsonObject update)
    {
        lock (_gate)
        {
            if (!_peers.TryGetValue(peerId, out var entry)) return null;
            var merged = MetadataMerge.Merge(entry.Metadata, (JsonObject)SignalingJson.Materialize(update)!);
            SetMetadataLocked(entry, merged);
            if (update.GetObject(PeerMetadataKeys.Properties)?.GetString(PeerMetadataKeys.Status) is { } status)
            {
                // The worker now owns its status; "available" means the job (or refusal) is over.
                entry.StatusSetByServer = false;
                if (status == AvailableStatus) entry.ReservedBy = null;
            }
            return entry.MetadataJson;
        }
    }

    public ReservationOutcome TryReserve(string workerPeerId, string clientPeerId, string clientRoomId, out string? workerStatus)
    {
        lock (_gate)
        {
            workerStatus = null;
            if (!_peers.TryGetValue(workerPeerId, out var worker)) return ReservationOutcome.TargetNotFound;
            if (worker.RoomId != clientRoomId) return ReservationOutcome.TargetInOtherRoom;
            workerStatus = StatusOf(worker);
            if (worker.Role != WorkerRole || worker.ReservedBy == clientPeerId) return ReservationOutcome.NotApplicable;
            if (worker.ReservedBy is not null) return ReservationOutcome.Busy;
            if (workerStatus is not null && workerStatus != AvailableStatus) return ReservationOutcome.Busy;

            ReserveLocked(worker, clientPeerId);
            if (workerStatus == AvailableStatus) workerStatus = ReservedStatus;
            return ReservationOutcome.Reserved;
        }
    }

    private void ReserveLocked(Entry worker, string clientPeerId)
    {
        worker.ReservedBy = clientPeerId;
        if (StatusOf(worker) != AvailableStatus) return;
        // Discovery must stop offering this worker at once, before the worker publishes "reserved" itself.
        var merged = MetadataMerge.Merge(worker.Metadata, new JsonObject { [PeerMetadataKeys.Properties] = new JsonObject { [PeerMetadataKeys.Status] = ReservedStatus } });
        SetMetadataLocked(worker, merged);
        worker.StatusSetByServer = true;
    }

    public IReadOnlyList<QueueCandidate> QueueCandidates(string roomId)
    {
        lock (_gate)
        {
            if (!_rooms.TryGetValue(roomId, out var room)) return [];
            var candidates = new List<QueueCandidate>();
            foreach (var entry in room.Values)
            {
                if (!IsQueueCandidateLocked(entry)) continue;
                var properties = entry.Metadata.GetObject(PeerMetadataKeys.Properties);
                var memory = properties is null ? 0 : WorkerAdvertisement.Number(properties, PeerMetadataKeys.GpuMemoryMB) is double mb && mb > 0 ? (long)Math.Min(mb, long.MaxValue) : 0;
                var tags = entry.Metadata[PeerMetadataKeys.Tags] is JsonArray list
                    ? list.OfType<JsonValue>().Where(v => v.GetValueKind() == System.Text.Json.JsonValueKind.String).Select(v => v.GetValue<string>()).ToArray()
                    : [];
                candidates.Add(new QueueCandidate(entry.PeerId, memory, tags));
            }
            return candidates;
        }
    }

    public bool TryReserveForTicket(string workerPeerId, string clientPeerId, string roomId)
    {
        lock (_gate)
        {
            if (!_peers.TryGetValue(workerPeerId, out var worker) || worker.RoomId != roomId || !IsQueueCandidateLocked(worker)) return false;
            ReserveLocked(worker, clientPeerId);
            return true;
        }
    }

    /// <summary>Only workers that speak our extensions take tickets: the client that gets one goes on with our hello.</summary>
    private static bool IsQueueCandidateLocked(Entry entry) =>
        entry.Role == WorkerRole && entry.ReservedBy is null && StatusOf(entry) == AvailableStatus
        && entry.Metadata.GetObject(PeerMetadataKeys.Properties) is { } properties
        && WorkerAdvertisement.Number(properties, SleapRtc.Protocol.Jobs.JobExtensions.MetadataProperty) is >= 1;

    public void ReleaseReservation(string workerPeerId, string clientPeerId)
    {
        lock (_gate)
        {
            if (_peers.TryGetValue(workerPeerId, out var worker) && worker.ReservedBy == clientPeerId) ReleaseLocked(worker);
        }
    }

    public void ReleaseReservationsHeldBy(string clientPeerId)
    {
        lock (_gate) ReleaseLocked(clientPeerId);
    }

    public IReadOnlyList<string> WorkersReservedBy(string clientPeerId)
    {
        lock (_gate) return _peers.Where(p => p.Value.ReservedBy == clientPeerId).Select(p => p.Key).ToList();
    }

    private void ReleaseLocked(string clientPeerId)
    {
        foreach (var worker in _peers.Values)
        {
            if (worker.ReservedBy == clientPeerId) ReleaseLocked(worker);
        }
    }

    private void ReleaseLocked(Entry worker)
    {
        worker.ReservedBy = null;
        if (!worker.StatusSetByServer) return;
        worker.StatusSetByServer = false;
        SetMetadataLocked(worker, MetadataMerge.Merge(worker.Metadata, new JsonObject { [PeerMetadataKeys.Properties] = new JsonObject { [PeerMetadataKeys.Status] = AvailableStatus } }));
    }

    private static string? StatusOf(Entry entry) => entry.Metadata.GetObject(PeerMetadataKeys.Properties)?.GetString(PeerMetadataKeys.Status);

    public long RoomVersion(string roomId)
    {
        lock (_gate) return _roomVersions.GetValueOrDefault(roomId);
    }

    /// <summary>A fresh, never reused number: a room emptied and filled again cannot repeat an old version.</summary>
    private void TouchLocked(string roomId) => _roomVersions[roomId] = ++_lastVersion;

    private void SetMetadataLocked(Entry entry, JsonObject metadata)
    {
        TouchLocked(entry.RoomId);
        entry.Metadata = metadata;
        entry.MetadataJson = SignalingJson.ToWire(metadata);
        entry.RefreshEntry();
    }

    public int Count
    {
        get { lock (_gate) return _peers.Count; }
    }

    public int RoomCount
    {
        get { lock (_gate) return _rooms.Count; }
    }

    public IReadOnlyDictionary<string, int> CountByRole()
    {
        lock (_gate) return _peers.Values.GroupBy(e => e.Role).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
    }

    public string? AdminOf(string roomId)
    {
        lock (_gate) return _admins.TryGetValue(roomId, out var admin) ? admin : null;
    }

    public string? ClaimAdmin(string roomId, string peerId)
    {
        lock (_gate)
        {
            if (_admins.TryGetValue(roomId, out var admin) && admin != peerId) return admin;
            _admins[roomId] = peerId;
            return null;
        }
    }

    public string? ClaimSpace(string roomId, string space, string peerId)
    {
        lock (_gate)
        {
            var key = (roomId, space);
            if (_spaceHolders.TryGetValue(key, out var holder) && holder != peerId) return holder;
            if (_spaceOf.Remove(peerId, out var previous)) _spaceHolders.Remove(previous);
            _spaceHolders[key] = peerId;
            _spaceOf[peerId] = key;
            return null;
        }
    }
}
