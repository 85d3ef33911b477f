using System.Buffers;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

/// <summary>
/// A signaling connection for workers and clients: one reader loop per socket dispatching by type,
/// request/response waiters (register → registered_auth, discover_peers → peer_list, update_metadata →
/// metadata_updated), typed events for everything pushed, and automatic reconnect with re-registration.
/// Event handlers run on the reader loop: keep them short and never block on this client from inside one.
/// Works against classic servers too (errors without in_reply_to fail the oldest pending request).
/// </summary>
public sealed partial class SignalingClient : IAsyncDisposable
{
    private const string Component = "signaling-client";
    private const int MaxIncomingMessageBytes = 16 * 1024 * 1024;

    private readonly SignalingClientOptions _options;
    private readonly ILogSink _log;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly object _waiterGate = new();
    private readonly List<(string ResponseType, string RequestType, TaskCompletionSource<JsonObject> Completion, ClientWebSocket Socket)> _waiters = [];
    private readonly CancellationTokenSource _disposed = new();
    private ClientWebSocket? _socket;
    private Task? _supervisor;
    private RegistrationRequest? _registration;
    private int _disposeStarted;
    /// <summary>Index in <see cref="Servers"/> of the server in use.</summary>
    private int _current;

    /// <param name="server">One server address, or several instances of one deployment as a comma list (see <see cref="SignalingEndpoints.ParseList"/>).</param>
    public SignalingClient(string server, SignalingClientOptions? options = null) : this(SignalingEndpoints.ParseList(server), options) { }

    public SignalingClient(SignalingEndpoints endpoints, SignalingClientOptions? options = null) : this(new[] { endpoints }, options) { }

    /// <summary>A client of several instances sharing one store: it uses the first reachable and fails over along the list.</summary>
    public SignalingClient(IReadOnlyList<SignalingEndpoints> servers, SignalingClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(servers);
        if (servers.Count == 0) throw new ArgumentException("At least one signaling server is required.", nameof(servers));
        Servers = servers.ToArray();
        _options = options ?? new SignalingClientOptions();
        _log = _options.Log;
        _http = new HttpClient { Timeout = _options.RequestTimeout };
    }

    /// <summary>Every server this client may use, in order of preference.</summary>
    public IReadOnlyList<SignalingEndpoints> Servers { get; }

    /// <summary>The server in use now (the last one that answered); changes on failover.</summary>
    public SignalingEndpoints Endpoints => Servers[Volatile.Read(ref _current)];

    /// <summary>All servers as the comma list users type (what session strings and room credentials carry).</summary>
    public string ServerList => SignalingEndpoints.FormatList(Servers);

    /// <summary>The id_token of the last sign-in (used by <see cref="CreateRoomAsync"/> and reconnects).</summary>
    public string? IdToken { get; private set; }

    public string? PeerId => _registration?.PeerId;
    public string? RoomId => _registration?.RoomId;
    public bool IsConnected => _socket?.State == WebSocketState.Open && Registration is not null;

    /// <summary>The latest registered_auth (renewed on every reconnect).</summary>
    public RegistrationResult? Registration { get; private set; }

    private JsonArray _iceServers = new();

    /// <summary>
    /// The newest ICE servers (RTCIceServer form) the server handed this peer: registered_auth's, replaced whenever the
    /// server renews the TURN credentials in them (ice_servers_renewed) and at every registration. Read it for each new
    /// peer connection: <see cref="RegistrationResult.IceServers"/> keeps the credentials of the registration, which
    /// expire. Kept while reconnecting; empty before the first registration. Never modify the array.
    /// </summary>
    public JsonArray IceServers => Volatile.Read(ref _iceServers);

    public event Action<SdpMessage>? OfferReceived;
    public event Action<SdpMessage>? AnswerReceived;
    public event Action<CandidateMessage>? CandidateReceived;
    public event Action<SignalingError>? ErrorReceived;
    public event Action<PeerMessage>? PeerMessageReceived;
    public event Action? PingReceived;
    /// <summary>Every message as received, before typed dispatch (mesh messages, future types).</summary>
    public event Action<JsonObject>? MessageReceived;
    /// <summary>The connection dropped; the client is reconnecting when AutoReconnect is on.</summary>
    public event Action<Exception?>? Disconnected;
    /// <summary>A reconnect succeeded and the peer is registered again.</summary>
    public event Action<RegistrationResult>? Reconnected;

    /// <summary>Opens the WebSocket and registers. Throws <see cref="SignalingException"/> with the server's reason when refused.</summary>
    public async Task<RegistrationResult> ConnectAsync(RegistrationRequest registration, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        if (_supervisor is not null) throw new InvalidOperationException("This client is already connected.");
        _registration = registration;
        IdToken ??= registration.IdToken;

        try
        {
            // The first server that answers; one that refuses the registration ends it (they share their rooms).
            var first = Volatile.Read(ref _current);
            var order = Enumerable.Range(0, Servers.Count).Select(i => (first + i) % Servers.Count);
            var (_, reader, result) = await ConnectAndRegisterAsync(order, signInAgainOnInvalidIdToken: false, ct).ConfigureAwait(false);
            _supervisor = Task.Run(() => SuperviseAsync(reader));
            return result;
        }
        catch
        {
            _registration = null;
            throw;
        }
    }

    /// <summary>Runs discover_peers in the registered room. Filters: classic shape, see <see cref="PeerFilters"/>.</summary>
    public async Task<IReadOnlyList<DiscoveredPeer>> DiscoverAsync(JsonObject? filters = null, CancellationToken ct = default)
    {
        var request = new JsonObject { ["type"] = MessageTypes.DiscoverPeers, ["from_peer_id"] = RequirePeerId() };
        if (filters is not null) request["filters"] = filters.DeepClone();
        var answer = await RequestAsync(request, MessageTypes.PeerList, ct).ConfigureAwait(false);
        var peers = new List<DiscoveredPeer>();
        if (answer["peers"] is JsonArray list)
        {
            foreach (var item in list.OfType<JsonObject>())
            {
                DateTimeOffset? connectedAt = item["connected_at"] is JsonValue v && v.TryGetValue<double>(out var seconds)
                    ? DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000)) : null;
                peers.Add(new DiscoveredPeer(item.GetString("peer_id") ?? "", item.GetString("role") ?? "peer",
                    item.GetObject("metadata")?.DeepClone() as JsonObject ?? new JsonObject(), connectedAt));
            }
        }
        return peers;
    }

    /// <summary>Merges metadata on the server (tags union, properties shallow merge) and returns the merged result.
    /// The update is remembered so a re-registration after reconnect advertises it.</summary>
    public async Task<JsonObject> UpdateMetadataAsync(JsonObject metadata, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var request = new JsonObject { ["type"] = MessageTypes.UpdateMetadata, ["peer_id"] = RequirePeerId(), ["metadata"] = metadata.DeepClone() };
        var answer = await RequestAsync(request, MessageTypes.MetadataUpdated, ct).ConfigureAwait(false);
        if (_registration is { } current)
            _registration = current with { Metadata = MetadataMerge.Merge(current.Metadata, metadata) };
        return answer.GetObject("metadata")?.DeepClone() as JsonObject ?? new JsonObject();
    }

    public Task SendOfferAsync(string target, string sdp, CancellationToken ct = default) => SendSdpAsync(MessageTypes.Offer, target, sdp, ct);

    public Task SendAnswerAsync(string target, string sdp, CancellationToken ct = default) => SendSdpAsync(MessageTypes.Answer, target, sdp, ct);

    private Task SendSdpAsync(string type, string target, string sdp, CancellationToken ct)
        => SendAsync(new JsonObject { ["type"] = type, ["sender"] = RequirePeerId(), ["target"] = target, ["sdp"] = sdp }, ct);

    public Task SendCandidateAsync(string target, JsonNode? candidate, CancellationToken ct = default)
        => SendAsync(new JsonObject { ["type"] = MessageTypes.Candidate, ["sender"] = RequirePeerId(), ["target"] = target, ["candidate"] = candidate?.DeepClone() }, ct);

    public Task SendPeerMessageAsync(string target, JsonNode? payload, CancellationToken ct = default)
        => SendAsync(new JsonObject { ["type"] = MessageTypes.PeerMessage, ["from_peer_id"] = RequirePeerId(), ["to_peer_id"] = target, ["payload"] = payload?.DeepClone() }, ct);

    /// <summary>The classic worker refusal of an offer, delivered by our server to <paramref name="target"/>.</summary>
    public Task SendBusyRejectionAsync(string target, string currentStatus, CancellationToken ct = default)
        => SendAsync(new JsonObject
        {
            ["type"] = MessageTypes.Error,
            ["target"] = target,
            ["reason"] = RegistrationReasons.WorkerBusy,
            ["message"] = $"Worker is currently {currentStatus}. Please use --room-id and --token to discover available workers.",
            ["current_status"] = currentStatus,
        }, ct);

    /// <summary>Sends any JSON message as is (the server still stamps the sender identity on relays).</summary>
    public async Task SendAsync(JsonObject message, CancellationToken ct = default)
    {
        var socket = _socket ?? throw new SignalingException("Not connected to the signaling server.");
        await SendRawAsync(socket, SignalingJson.ToWire(message), ct).ConfigureAwait(false);
    }

    private string RequirePeerId() => _registration?.PeerId ?? throw new InvalidOperationException("Connect and register first.");

    /// <param name="on">The socket to send on: the one in use unless given (a registration on a new connection).</param>
    private async Task<JsonObject> RequestAsync(JsonObject request, string responseType, CancellationToken ct, ClientWebSocket? on = null)
    {
        var socket = on ?? _socket ?? throw new SignalingException("Not connected to the signaling server.");
        var requestType = request.GetString("type")!;
        var completion = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiter = (responseType, requestType, completion, socket);
        // The waiter is queued under the send lock so waiters and requests stay in the same order (the server answers in order).
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            lock (_waiterGate) _waiters.Add(waiter);
            await SendLockedAsync(socket, SignalingJson.ToWire(request), ct).ConfigureAwait(false);
        }
        catch
        {
            lock (_waiterGate) _waiters.Remove(waiter);
            throw;
        }
        finally
        {
            _sendLock.Release();
        }

        try
        {
            return await completion.Task.WaitAsync(_options.RequestTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_waiterGate) _waiters.Remove(waiter);
            throw new SignalingException($"The signaling server did not answer {requestType} within {_options.RequestTimeout.TotalSeconds:F0} s.");
        }
        catch (OperationCanceledException)
        {
            lock (_waiterGate) _waiters.Remove(waiter);
            throw;
        }
    }

    private async Task<RegistrationResult> RegisterAsync(CancellationToken ct, ClientWebSocket on)
    {
        var registration = _registration!;
        var request = new JsonObject
        {
            ["type"] = MessageTypes.Register,
            ["peer_id"] = registration.PeerId,
            ["room_id"] = registration.RoomId,
            ["token"] = registration.Token,
            ["id_token"] = IdToken ?? registration.IdToken,
            ["role"] = registration.Role,
            ["metadata"] = registration.Metadata?.DeepClone() ?? new JsonObject(),
        };
        if (registration.IsAdmin) request["is_admin"] = true;
        // Classic servers ignore the key; ours then tells this peer to move before an instance stops (server_draining)
        // and sends it fresh TURN credentials before its current ones expire (ice_servers_renewed).
        request[DrainingMessages.ClientExtensionsKey] = new JsonArray(DrainingMessages.ClientFeature, IceServerRenewalMessages.ClientFeature);
        var answer = await RequestAsync(request, MessageTypes.RegisteredAuth, ct, on).ConfigureAwait(false);
        var result = new RegistrationResult(
            answer.GetString("peer_id") ?? registration.PeerId,
            answer.GetString("room_id") ?? registration.RoomId,
            answer["peer_list"] is JsonArray ids ? ids.Select(i => i?.GetValue<string>()).OfType<string>().ToList() : [],
            answer.GetObject("peer_metadata")?.DeepClone() as JsonObject ?? new JsonObject(),
            answer["ice_servers"]?.DeepClone() as JsonArray ?? new JsonArray(),
            answer.GetString("admin_peer_id"),
            answer);
        Registration = result;
        Volatile.Write(ref _iceServers, result.IceServers);
        _log.Write(LogLevel.Information, Component, $"Registered as {result.PeerId} in room {result.RoomId} at {Endpoints.WebSocket} ({result.PeerIds.Count} other peer(s))");
        return result;
    }

    private async Task SendRawAsync(ClientWebSocket socket, string json, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try { await SendLockedAsync(socket, json, ct).ConfigureAwait(false); }
        finally { _sendLock.Release(); }
    }

    private static async Task SendLockedAsync(ClientWebSocket socket, string json, CancellationToken ct)
    {
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            throw new SignalingException("The signaling connection is closed.", inner: e);
        }
    }
}
