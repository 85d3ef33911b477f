using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// Wraps the server's peer registry and tells the monitor about every change a viewer could see: a peer
/// registered, left or was evicted, updated its metadata, or had its status changed by a reservation. The
/// registry itself stays unaware of the monitor; the notifications only queue work, so they never slow it down.
/// Reservations are same-room only, so a change caused by a client touches that client's room alone.
/// </summary>
public sealed class MonitoredPeerRegistry(IPeerRegistry inner, MonitorService monitor) : IPeerRegistry
{
    // Rooms in which a client holds reservations, so that releasing them (possibly after the client was
    // already removed) refreshes the right room.
    private readonly ConcurrentDictionary<string, string> _reservingClientRooms = new(StringComparer.Ordinal);

    public PeerSnapshot? Register(string peerId, string roomId, string role, JsonObject metadata, IPeerLink link, DateTimeOffset connectedAt)
    {
        var replaced = inner.Register(peerId, roomId, role, metadata, link, connectedAt);
        if (replaced is not null && replaced.RoomId != roomId) monitor.NotifyRoomChanged(replaced.RoomId);
        monitor.NotifyPeerChanged(roomId, peerId);
        return replaced;
    }

    public bool Remove(string peerId, IPeerLink link)
    {
        var roomId = inner.Get(peerId)?.RoomId;
        var removed = inner.Remove(peerId, link);
        if (removed && roomId is not null) monitor.NotifyRoomChanged(roomId);
        return removed;
    }

    public PeerSnapshot? Evict(string peerId)
    {
        var evicted = inner.Evict(peerId);
        if (evicted is not null) monitor.NotifyRoomChanged(evicted.RoomId);
        return evicted;
    }

    public PeerSnapshot? Get(string peerId) => inner.Get(peerId);

    public IReadOnlyList<PeerSnapshot> PeersInRoom(string roomId) => inner.PeersInRoom(roomId);

    public IReadOnlyList<PeerSnapshot> Discover(string roomId, string excludedPeerId, JsonObject? filters, out long roomVersion) =>
        inner.Discover(roomId, excludedPeerId, filters, out roomVersion);

    public long RoomVersion(string roomId) => inner.RoomVersion(roomId);

    public string? UpdateMetadata(string peerId, JsonObject update)
    {
        var merged = inner.UpdateMetadata(peerId, update);
        if (merged is not null && inner.Get(peerId)?.RoomId is { } roomId) monitor.NotifyPeerChanged(roomId, peerId);
        return merged;
    }

    public ReservationOutcome TryReserve(string workerPeerId, string clientPeerId, string clientRoomId, out string? workerStatus)
    {
        var outcome = inner.TryReserve(workerPeerId, clientPeerId, clientRoomId, out workerStatus);
        if (outcome == ReservationOutcome.Reserved)
        {
            _reservingClientRooms[clientPeerId] = clientRoomId;
            monitor.NotifyPeerChanged(clientRoomId, workerPeerId);
        }
        return outcome;
    }

    public IReadOnlyList<QueueCandidate> QueueCandidates(string roomId) => inner.QueueCandidates(roomId);

    public bool TryReserveForTicket(string workerPeerId, string clientPeerId, string roomId)
    {
        if (!inner.TryReserveForTicket(workerPeerId, clientPeerId, roomId)) return false;
        _reservingClientRooms[clientPeerId] = roomId;
        monitor.NotifyPeerChanged(roomId, workerPeerId);
        return true;
    }

    public void ReleaseReservation(string workerPeerId, string clientPeerId)
    {
        inner.ReleaseReservation(workerPeerId, clientPeerId);
        if (inner.Get(workerPeerId)?.RoomId is { } roomId) monitor.NotifyPeerChanged(roomId, workerPeerId);
    }

    public void ReleaseReservationsHeldBy(string clientPeerId)
    {
        var roomId = _reservingClientRooms.TryRemove(clientPeerId, out var reservedIn) ? reservedIn : inner.Get(clientPeerId)?.RoomId;
        inner.ReleaseReservationsHeldBy(clientPeerId);
        if (roomId is not null) monitor.NotifyRoomChanged(roomId);
    }

    public IReadOnlyList<string> WorkersReservedBy(string clientPeerId) => inner.WorkersReservedBy(clientPeerId);

    public int Count => inner.Count;

    public int RoomCount => inner.RoomCount;

    public IReadOnlyDictionary<string, int> CountByRole() => inner.CountByRole();

    public string? AdminOf(string roomId) => inner.AdminOf(roomId);

    public string? ClaimAdmin(string roomId, string peerId) => inner.ClaimAdmin(roomId, peerId);

    public string? ClaimSpace(string roomId, string space, string peerId) => inner.ClaimSpace(roomId, space, peerId);
}
