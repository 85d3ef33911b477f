using System.Net.WebSockets;
using System.Text.Json.Nodes;

namespace SleapRtc.Signaling.Store;

/// <summary>The server side of one registered connection: where messages for a peer go.</summary>
public interface IPeerLink
{
    /// <summary>The remote IP address, for logs and per-address throttling.</summary>
    string RemoteAddress { get; }

    /// <summary>Queues a JSON text frame; false when the connection is closed or too far behind.</summary>
    bool TrySend(string json);

    /// <summary>Queues an already UTF-8 encoded JSON text frame (the buffer must not change afterwards).</summary>
    bool TrySendUtf8(byte[] utf8Json);

    /// <summary>Closes the connection (used when a peer is deleted or displaced by a re-registration).</summary>
    void Close(WebSocketCloseStatus status, string description);
}

/// <summary>A live peer as discovery shows it. Snapshots are immutable copies; the registry owns the live entry.
/// <see cref="PeerListEntryUtf8"/> is the peer's ready-made peer_list item ({peer_id, role, metadata, connected_at}),
/// kept so discovery in a room of a thousand workers copies bytes instead of re-serializing metadata.</summary>
public sealed record PeerSnapshot(
    string PeerId,
    string RoomId,
    string Role,
    string MetadataJson,
    DateTimeOffset ConnectedAt,
    IPeerLink Link,
    byte[] PeerListEntryUtf8);

/// <summary>The outcome of asking to relay an offer to a worker.</summary>
public enum ReservationOutcome
{
    /// <summary>The target is not a worker, or is already reserved by this sender: relay without change.</summary>
    NotApplicable,
    /// <summary>The worker was available and is now reserved by the sender.</summary>
    Reserved,
    /// <summary>The worker is reserved by another client or its status is not available: refuse.</summary>
    Busy,
    TargetNotFound,
    TargetInOtherRoom,
}

/// <summary>A worker the job queue may hand a ticket to right now: registered, advertising our extensions, status
/// "available" and held by nobody. Gpu memory 0 when not advertised.</summary>
public sealed record QueueCandidate(string PeerId, long GpuMemoryMb, IReadOnlyList<string> Tags);

/// <summary>
/// Live peers, their metadata and worker reservations (in memory; a shared store for several server
/// instances comes later). Every operation is atomic with respect to the others.
/// </summary>
public interface IPeerRegistry
{
    /// <summary>Adds or replaces the peer; returns the entry it replaced (another connection of the same peer), if any.</summary>
    PeerSnapshot? Register(string peerId, string roomId, string role, JsonObject metadata, IPeerLink link, DateTimeOffset connectedAt);

    /// <summary>Removes the peer only if it is still bound to <paramref name="link"/> (a re-registration elsewhere wins).</summary>
    bool Remove(string peerId, IPeerLink link);

    /// <summary>Removes the peer whatever its connection; returns it.</summary>
    PeerSnapshot? Evict(string peerId);

    PeerSnapshot? Get(string peerId);

    IReadOnlyList<PeerSnapshot> PeersInRoom(string roomId);

    /// <summary>Peers of a room, except <paramref name="excludedPeerId"/>, whose role and metadata match the classic filters;
    /// <paramref name="roomVersion"/> is the room's version the answer reflects (see <see cref="RoomVersion"/>).</summary>
    IReadOnlyList<PeerSnapshot> Discover(string roomId, string excludedPeerId, JsonObject? filters, out long roomVersion);

    /// <summary>Changes whenever a peer joins or leaves the room or any member's metadata changes; 0 for an empty room.
    /// Lets the server reuse a discovery answer while nothing it depends on has changed.</summary>
    long RoomVersion(string roomId);

    /// <summary>Applies the classic merge and returns the merged metadata as JSON text; null when the peer is unknown.
    /// A worker status of "available" ends any reservation held on it.</summary>
    string? UpdateMetadata(string peerId, JsonObject update);

    /// <summary>Atomically checks and takes the reservation for an offer from <paramref name="clientPeerId"/> to <paramref name="workerPeerId"/>.</summary>
    ReservationOutcome TryReserve(string workerPeerId, string clientPeerId, string clientRoomId, out string? workerStatus);

    /// <summary>The room's workers that could take a queued ticket now (see <see cref="QueueCandidate"/>), in registration order.</summary>
    IReadOnlyList<QueueCandidate> QueueCandidates(string roomId);

    /// <summary>Atomically reserves the worker for <paramref name="clientPeerId"/> (as a relayed offer would) only if it is a
    /// queue candidate at this instant; false when someone else got there first.</summary>
    bool TryReserveForTicket(string workerPeerId, string clientPeerId, string roomId);

    /// <summary>Ends the one reservation <paramref name="clientPeerId"/> holds on the worker (an assignment that timed out or was
    /// cancelled); a status the server set goes back to available. Other reservations of the client stay.</summary>
    void ReleaseReservation(string workerPeerId, string clientPeerId);

    /// <summary>Drops every reservation the client holds (it disconnected); a status the server set to reserved goes back to available.</summary>
    void ReleaseReservationsHeldBy(string clientPeerId);

    /// <summary>The workers whose reservation <paramref name="clientPeerId"/> holds.</summary>
    IReadOnlyList<string> WorkersReservedBy(string clientPeerId);

    int Count { get; }

    int RoomCount { get; }

    IReadOnlyDictionary<string, int> CountByRole();

    /// <summary>The peer id of the room's mesh admin, if one registered with is_admin.</summary>
    string? AdminOf(string roomId);

    /// <summary>Claims the mesh admin role for the room; returns the current admin when another peer already holds it.</summary>
    string? ClaimAdmin(string roomId, string peerId);

    /// <summary>Claims the inference space name <paramref name="space"/> in the room for the peer, atomically; returns the holder
    /// when another peer already holds it. A peer holds one name at most (a new claim drops its old one); the claim ends when
    /// the holder leaves (<see cref="Remove"/>, <see cref="Evict"/>) and survives the holder re-registering on a new connection.</summary>
    string? ClaimSpace(string roomId, string space, string peerId);
}
