using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

public sealed class SignalingClientOptions
{
    public Protocol.Logging.ILogSink Log { get; set; } = Protocol.Logging.Log.Null;

    /// <summary>How long a request (register, discover, update) waits for its answer.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>WebSocket opening handshake limit.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Reconnect and re-register after the connection drops (backoff 1, 2, 4… s up to <see cref="MaxReconnectDelay"/>).</summary>
    public bool AutoReconnect { get; set; } = true;

    public TimeSpan InitialReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>What a register message carries. Metadata follows the classic shape {"tags":[…],"properties":{…}}.</summary>
public sealed record RegistrationRequest(string PeerId, string RoomId, string Token, string IdToken, string Role = "peer", JsonObject? Metadata = null, bool IsAdmin = false)
{
    /// <summary>The room token and id_token are secrets: keep them out of logs and debugger displays.</summary>
    public override string ToString() => $"RegistrationRequest {{ PeerId = {PeerId}, RoomId = {RoomId}, Role = {Role} }}";
}

/// <summary>The registered_auth answer. Its <see cref="IceServers"/> are the registration's, whose TURN credentials expire:
/// new connections take <see cref="SignalingClient.IceServers"/>, which the server renews.</summary>
public sealed record RegistrationResult(
    string PeerId,
    string RoomId,
    IReadOnlyList<string> PeerIds,
    JsonObject PeerMetadata,
    JsonArray IceServers,
    string? AdminPeerId,
    JsonObject Raw);

/// <summary>One entry of peer_list.</summary>
public sealed record DiscoveredPeer(string PeerId, string Role, JsonObject Metadata, DateTimeOffset? ConnectedAt)
{
    public JsonObject Properties => Metadata.GetObject(PeerMetadataKeys.Properties) ?? new JsonObject();

    public IReadOnlyList<string> Tags => Metadata[PeerMetadataKeys.Tags] is JsonArray tags
        ? tags.Select(t => t is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>().ToList()
        : [];
}

/// <summary>A relayed offer or answer. Sender is the identity the server registered for the other side.</summary>
public sealed record SdpMessage(string Type, string Sender, string Sdp, JsonObject Raw);

public sealed record CandidateMessage(string Sender, JsonNode? Candidate, JsonObject Raw);

public sealed record PeerMessage(string FromPeerId, JsonNode? Payload, JsonObject Raw);

/// <summary>Either classic error shape, a relayed worker refusal, or the type-less {"error":…}.</summary>
public sealed record SignalingError(string? Code, string? Reason, string? Message, string? Sender, string? Target, string? InReplyTo, JsonObject Raw)
{
    /// <summary>A worker (or the server for it) refused an offer because the worker is reserved or busy.</summary>
    public bool IsWorkerBusy => Reason == RegistrationReasons.WorkerBusy || Code == ErrorCodes.WorkerBusy;

    public string? CurrentStatus => Raw.GetString("current_status");

    public string Describe() => Message ?? Reason ?? Code ?? "unknown signaling error";

    public static SignalingError From(JsonObject raw) => new(
        raw.GetString("code"),
        raw.GetString("reason") ?? (raw.GetString("type") is null ? raw.GetString("error") : null),
        raw.GetString("message"),
        raw.GetString("sender"),
        raw.GetString("target"),
        raw.GetString(SignalingJson.InReplyTo),
        raw);
}

/// <summary>A request the server refused, or a connection problem. Never carries tokens.</summary>
public sealed class SignalingException : Exception
{
    public SignalingException(string message, SignalingError? error = null, Exception? inner = null) : base(message, inner) => Error = error;

    public SignalingError? Error { get; }

    public string? Code => Error?.Code;

    public string? Reason => Error?.Reason;
}

/// <summary>The /anonymous-signin answer: Username is the peer_id to register with.</summary>
public sealed record SignInResult(string IdToken, string Username)
{
    public override string ToString() => $"SignInResult {{ Username = {Username} }}";
}

/// <summary>Builders for the classic discover_peers filters.</summary>
public static class PeerFilters
{
    /// <summary>Workers with the given status (null = any), at least <paramref name="minGpuMemoryMB"/> MB of GPU memory (0 = no limit), and any of the tags.</summary>
    public static JsonObject Workers(string? status = "available", long minGpuMemoryMB = 0, IEnumerable<string>? anyTags = null)
    {
        var properties = new JsonObject();
        if (status is not null) properties[PeerMetadataKeys.Status] = status;
        if (minGpuMemoryMB > 0) properties[PeerMetadataKeys.GpuMemoryMB] = new JsonObject { ["$gte"] = minGpuMemoryMB };
        var filters = new JsonObject { ["role"] = "worker", [PeerMetadataKeys.Properties] = properties };
        if (anyTags is not null)
        {
            var tags = new JsonArray();
            foreach (var tag in anyTags) tags.Add(tag);
            if (tags.Count > 0) filters[PeerMetadataKeys.Tags] = tags;
        }
        return filters;
    }
}
