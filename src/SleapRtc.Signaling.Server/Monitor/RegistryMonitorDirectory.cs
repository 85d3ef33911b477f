using System.Text.Json;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Monitor;

/// <summary>The monitor's view of the server's own room store and peer registry (read-only).</summary>
public sealed class RegistryMonitorDirectory(IPeerRegistry peers, IRoomStore rooms) : IMonitorRoomDirectory
{
    public async ValueTask<string?> FindRoomTokenAsync(string roomId, CancellationToken cancellationToken)
    {
        var room = await rooms.GetRoomAsync(roomId, cancellationToken).ConfigureAwait(false);
        return room is null || room.IsExpired(DateTimeOffset.UtcNow) ? null : room.Token;
    }

    public IReadOnlyList<MonitorPeer> ListPeers(string roomId) => peers.PeersInRoom(roomId).Select(ToMonitorPeer).ToList();

    public MonitorPeer? FindPeer(string roomId, string peerId) =>
        peers.Get(peerId) is { } peer && peer.RoomId == roomId ? ToMonitorPeer(peer) : null;

    private static MonitorPeer ToMonitorPeer(PeerSnapshot peer)
    {
        using var metadata = JsonDocument.Parse(string.IsNullOrEmpty(peer.MetadataJson) ? "{}" : peer.MetadataJson);
        return new MonitorPeer(peer.PeerId, peer.Role, metadata.RootElement.Clone(), peer.ConnectedAt);
    }
}
