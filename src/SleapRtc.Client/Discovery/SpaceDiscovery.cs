using System.Text.Json.Nodes;
using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Client.Discovery;

/// <summary>Finds the inference spaces of a room (Get-SleapSpace) and the holder of one (Submit-SleapInference -Space).</summary>
public static class SpaceDiscovery
{
    public static async Task<IReadOnlyList<SpaceInfo>> ListAsync(ResolvedRoom room, string? name, ClientConnectionOptions? options, CancellationToken cancellationToken)
    {
        await using var connection = await ClientRoomConnection.ConnectAsync(room, options ?? new ClientConnectionOptions(), cancellationToken).ConfigureAwait(false);
        var peers = await FindAsync(connection, name, cancellationToken).ConfigureAwait(false);
        return peers.Select(p => ToSpaceInfo(p, room.RoomId, connection.Server)).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The worker serving <paramref name="name"/>, as a submission target.</summary>
    /// <exception cref="SpaceOfflineException">No peer of the room serves it (now).</exception>
    internal static async Task<IReadOnlyList<WorkerInfo>> HolderAsync(ClientRoomConnection connection, string name, CancellationToken cancellationToken)
    {
        var peers = await FindAsync(connection, name, cancellationToken).ConfigureAwait(false);
        var holder = peers.OrderBy(p => p.ConnectedAt ?? DateTimeOffset.MaxValue).FirstOrDefault()
            ?? throw new SpaceOfflineException(name, connection.Room.RoomId);
        return new[] { WorkerDiscovery.ToWorkerInfo(holder, connection.Room.RoomId, connection.Server, connection.Room.Token) };
    }

    private static async Task<IReadOnlyList<DiscoveredPeer>> FindAsync(ClientRoomConnection connection, string? name, CancellationToken cancellationToken)
    {
        try { return await connection.Signaling.DiscoverAsync(SpaceMetadata.Filter(name), cancellationToken).ConfigureAwait(false); }
        catch (SignalingException e) { throw new SignalingUnavailableException(connection.Server, e.Message, e); }
    }

    public static SpaceInfo ToSpaceInfo(DiscoveredPeer peer, string roomId, string? server)
    {
        var properties = peer.Properties;
        return new SpaceInfo
        {
            Name = Text(properties[SpaceMetadata.NameProperty]) ?? "",
            WorkerId = peer.PeerId,
            State = Text(properties[SpaceMetadata.StateProperty]) ?? SpaceMetadata.Ready,
            QueueLength = properties[SpaceMetadata.QueueProperty] is JsonValue v && v.TryGetValue<int>(out var n) ? n : 0,
            RoomId = roomId,
            GpuModel = Text(properties["gpu_model"]),
            Server = server,
            ConnectedAt = peer.ConnectedAt,
        };
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

/// <summary>No worker of the room serves the space (never started, stopped or disconnected).</summary>
public sealed class SpaceOfflineException : SleapRtcException
{
    public SpaceOfflineException(string space, string roomId)
        : base("SpaceOffline", SleapRtcErrorKind.ResourceUnavailable,
            $"The inference space '{space}' is offline: no worker in room {roomId} serves it.",
            "Start one with Start-SleapWorker -Space <name> -ModelPath <folders>, or list the room's spaces with Get-SleapSpace.")
    {
        Space = space;
    }

    public string Space { get; }
}
