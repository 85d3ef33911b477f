using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Client.Discovery;

/// <summary>Which workers Get-SleapWorker returns.</summary>
public sealed class WorkerFilter
{
    /// <summary>Only workers with at least this much GPU memory (0 = any).</summary>
    public long MinGpuMemoryMB { get; init; }
    /// <summary>Status to match; null or "*" = any status.</summary>
    public string? Status { get; init; } = WorkerStatus.Available;
    /// <summary>Match-any tags (classic semantics); empty = any.</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();

    internal JsonObject ToWire() =>
        PeerFilters.Workers(Status is null or "*" ? null : Status, MinGpuMemoryMB, Tags.Count == 0 ? null : Tags);
}

/// <summary>Options shared by discovery and submission for the client's signaling connection.</summary>
public sealed class ClientConnectionOptions
{
    public ILogSink Log { get; init; } = Protocol.Logging.Log.Null;
    public SignalingClientOptions? Signaling { get; init; }
}

/// <summary>Finds the workers of a room (Get-SleapWorker).</summary>
public static class WorkerDiscovery
{
    /// <summary>
    /// Joins the room as a client, runs discover_peers with the filter, and returns the workers with
    /// Server and Token filled in so piped objects carry the credentials onward.
    /// </summary>
    /// <exception cref="InvalidRoomCredentialsException">The room id or token is wrong, or the room expired.</exception>
    /// <exception cref="SignalingUnavailableException">The server cannot be reached.</exception>
    public static async Task<IReadOnlyList<WorkerInfo>> DiscoverAsync(ResolvedRoom room, WorkerFilter? filter, ClientConnectionOptions? options, CancellationToken cancellationToken)
    {
        await using var connection = await ClientRoomConnection.ConnectAsync(room, options ?? new ClientConnectionOptions(), cancellationToken).ConfigureAwait(false);
        return await connection.DiscoverWorkersAsync(filter ?? new WorkerFilter(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The available workers of the room with at least <paramref name="minGpuMemoryMB"/>; when there are none, throws the
    /// <see cref="NoWorkersAvailableException"/> that says why (nobody there, or everyone busy).
    /// </summary>
    public static async Task<IReadOnlyList<WorkerInfo>> DiscoverAvailableAsync(ResolvedRoom room, long minGpuMemoryMB, ClientConnectionOptions? options, CancellationToken cancellationToken)
    {
        await using var connection = await ClientRoomConnection.ConnectAsync(room, options ?? new ClientConnectionOptions(), cancellationToken).ConfigureAwait(false);
        var workers = await connection.DiscoverWorkersAsync(new WorkerFilter { MinGpuMemoryMB = minGpuMemoryMB }, cancellationToken).ConfigureAwait(false);
        if (workers.Count == 0) throw await connection.ExplainNoneAvailableAsync(minGpuMemoryMB, cancellationToken).ConfigureAwait(false);
        return workers;
    }

    /// <summary>What a worker that advertises no GPU model is shown as (classic workers without CUDA say "CPU").</summary>
    private const string GpuModelWithoutGpu = "CPU";

    /// <summary>Maps one peer_list entry (classic metadata keys) to the public object.</summary>
    public static WorkerInfo ToWorkerInfo(DiscoveredPeer peer, string roomId, string? server, string? token)
    {
        var properties = peer.Properties;
        var advertised = WorkerAdvertisement.Read(properties);
        var dictionary = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in properties) dictionary[key] = ToPlain(value);
        return new WorkerInfo
        {
            PeerId = peer.PeerId,
            RoomId = roomId,
            GpuModel = advertised.GpuModel ?? GpuModelWithoutGpu,
            GpuMemoryMB = advertised.GpuMemoryMB ?? 0,
            CudaVersion = advertised.CudaVersion,
            Hostname = advertised.Hostname,
            Status = advertised.Status ?? WorkerStatus.Available,
            SleapVersion = advertised.SleapVersion,
            ConnectedAt = peer.ConnectedAt,
            Properties = dictionary,
            Tags = peer.Tags.ToArray(),
            Server = server,
            Token = token,
            Job = advertised.Job is JsonObject job ? JobExtensions.ParseProgress(job.ToJsonString()) : null,
        };
    }

    // Plain .NET values so PowerShell users see numbers and strings, not JSON nodes.
    private static object? ToPlain(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonArray a => a.Select(ToPlain).ToArray(),
        JsonObject o => o.ToDictionary(p => p.Key, p => ToPlain(p.Value)),
        _ => node.ToJsonString(),
    };
}

/// <summary>A client's registered signaling connection to one room (discovery, offers, answers).</summary>
internal sealed class ClientRoomConnection : IAsyncDisposable
{
    private ClientRoomConnection(SignalingClient signaling, ResolvedRoom room, RegistrationResult registration)
    {
        Signaling = signaling;
        Room = room;
        Registration = registration;
    }

    public SignalingClient Signaling { get; }
    public ResolvedRoom Room { get; }
    public RegistrationResult Registration { get; }
    /// <summary>The newest ICE servers and TURN credentials (renewed while connected): what each new peer connection takes.</summary>
    public JsonArray IceServers => Signaling.IceServers;
    public string Server => Signaling.ServerList;
    /// <summary>The server's TURN servers with this peer's newest credentials, as the peer connection takes them.</summary>
    public IReadOnlyList<WebRtc.IceServer> TurnServers =>
        IceServerList.TurnServers(IceServers).Select(s => new WebRtc.IceServer(s.Urls, s.Username, s.Credential)).ToArray();

    public static async Task<ClientRoomConnection> ConnectAsync(ResolvedRoom room, ClientConnectionOptions options, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(room.Server)) throw new ServerNotSpecifiedException();
        SignalingClient signaling;
        var signalingOptions = options.Signaling ?? new SignalingClientOptions { AutoReconnect = false };
        if (ReferenceEquals(signalingOptions.Log, Protocol.Logging.Log.Null)) signalingOptions.Log = options.Log;
        try { signaling = new SignalingClient(room.Server!, signalingOptions); }
        catch (FormatException e) { throw new SignalingUnavailableException(room.Server!, e.Message, e); }
        try
        {
            var signIn = await signaling.AnonymousSignInAsync(null, cancellationToken).ConfigureAwait(false);
            var metadata = new JsonObject
            {
                [PeerMetadataKeys.Tags] = new JsonArray("sleap-rtc", "training-client"),
                [PeerMetadataKeys.Properties] = new JsonObject
                {
                    [PeerMetadataKeys.SleapVersion] = "unknown",
                    [PeerMetadataKeys.Platform] = Environment.OSVersion.Platform.ToString(),
                    [PeerMetadataKeys.UserId] = Environment.UserName,
                },
            };
            var registration = await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, "client", metadata), cancellationToken).ConfigureAwait(false);
            return new ClientRoomConnection(signaling, room, registration);
        }
        catch (SignalingException e) when (e.Reason is RegistrationReasons.InvalidToken or RegistrationReasons.RoomNotFound or RegistrationReasons.RoomExpired)
        {
            await signaling.DisposeAsync().ConfigureAwait(false);
            throw new InvalidRoomCredentialsException(room.RoomId, e.Reason!);
        }
        catch (SignalingException e)
        {
            await signaling.DisposeAsync().ConfigureAwait(false);
            throw new SignalingUnavailableException(room.Server!, e.Message, e);
        }
        catch
        {
            await signaling.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task<IReadOnlyList<WorkerInfo>> DiscoverWorkersAsync(WorkerFilter filter, CancellationToken cancellationToken)
    {
        IReadOnlyList<DiscoveredPeer> peers;
        try { peers = await Signaling.DiscoverAsync(filter.ToWire(), cancellationToken).ConfigureAwait(false); }
        catch (SignalingException e) { throw new SignalingUnavailableException(Server, e.Message, e); }
        return peers.Select(p => WorkerDiscovery.ToWorkerInfo(p, Room.RoomId, Server, Room.Token)).ToList();
    }

    /// <summary>Why no worker is available: the room has none that match, or all of those are busy or reserved.</summary>
    public async Task<NoWorkersAvailableException> ExplainNoneAvailableAsync(long minGpuMemoryMB, CancellationToken cancellationToken)
    {
        var matching = await DiscoverWorkersAsync(new WorkerFilter { MinGpuMemoryMB = minGpuMemoryMB, Status = null }, cancellationToken).ConfigureAwait(false);
        return matching.Count == 0
            ? NoWorkersAvailableException.EmptyRoom(Room.RoomId, minGpuMemoryMB)
            : NoWorkersAvailableException.AllBusy(Room.RoomId, matching.Count);
    }

    public ValueTask DisposeAsync() => Signaling.DisposeAsync();
}
