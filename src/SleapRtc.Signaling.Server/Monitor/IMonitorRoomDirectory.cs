using System.Text.Json;

namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// What the monitor reads from the signaling server: room tokens (to authorise viewers) and the live peers of a
/// room. The server's room store and peer registry stay the single source of truth; the monitor keeps no copy
/// beyond the last view it sent to its viewers, which it needs to turn "peer X changed" into typed events.
/// </summary>
public interface IMonitorRoomDirectory
{
    /// <summary>The room's token, or null when the room does not exist or has expired.</summary>
    ValueTask<string?> FindRoomTokenAsync(string roomId, CancellationToken cancellationToken);

    /// <summary>Every peer registered in the room right now (any role; the monitor keeps the workers).</summary>
    IReadOnlyList<MonitorPeer> ListPeers(string roomId);

    /// <summary>The peer if it is registered in that room right now, else null (it left or moved).</summary>
    MonitorPeer? FindPeer(string roomId, string peerId);
}

/// <summary>A registered peer as the registry holds it: classic role, metadata ({tags, properties}) and join time.</summary>
public sealed record MonitorPeer(string PeerId, string Role, JsonElement Metadata, DateTimeOffset ConnectedAt);
