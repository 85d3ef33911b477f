using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Handles the classic WebSocket messages of registered and unregistered connections.
///
/// Reservation (why the server holds it): classic left the busy check to the worker, whose refusal
/// the classic server never delivered, and two clients could both reach an "available" worker in the
/// window before it published "reserved". Here an <c>offer</c> to a peer with role "worker" is relayed
/// only when the worker's status is "available" (or absent) and no other client holds it; relaying
/// marks it reserved by the sender (and its advertised status "reserved", so discovery hides it at
/// once). The hold ends when the worker publishes status "available" again, or the client
/// disconnects (a status the server set goes back to "available"). Refused offers get the same shape a
/// classic worker sends: <c>{"type":"error","reason":"worker_busy","code":"WORKER_BUSY","target":client,
/// "sender":worker,"current_status":…}</c>. Workers keep their own safeguard; their refusals (errors
/// carrying a target) are relayed to the target.
/// </summary>
internal sealed partial class SignalingHub
{
    private const string Component = "signaling";
    private static readonly byte[] PingJson = """{"type":"ping"}"""u8.ToArray();
    private static readonly UTF8Encoding Utf8 = new(false);

    private readonly IRoomStore _store;
    private readonly IPeerRegistry _peers;
    private readonly IdTokenService _idTokens;
    private readonly CredentialThrottle _throttle;
    private readonly IPeerIdBindings _bindings;
    private readonly ILogSink _log;
    private readonly Func<int> _stunPort;
    private readonly Jobs.JobQueueRouter _jobs;

    private const int MaxCachedDiscoveries = 1024;
    private const long MaxCachedDiscoveryBytes = 32L * 1024 * 1024;
    private long _discoveryCacheBytes;
    private readonly Dictionary<(string Room, string Requester, string Filters), (long Version, byte[] Frame)> _discoveryCache = [];

    public long TotalMessages;
    public long TotalConnections;
    public long RoomsCreated;

    public SignalingHub(IRoomStore store, IPeerRegistry peers, IdTokenService idTokens, CredentialThrottle throttle, IPeerIdBindings bindings, ILogSink log, Func<int> stunPort, Jobs.JobQueueRouter jobs)
    {
        _jobs = jobs;
        _store = store;
        _peers = peers;
        _idTokens = idTokens;
        _throttle = throttle;
        _bindings = bindings;
        _log = log;
        _stunPort = stunPort;
    }

    public static byte[] Ping => PingJson;

    public async Task HandleAsync(PeerSocket peer, string text)
    {
        Interlocked.Increment(ref TotalMessages);
        try
        {
            await DispatchAsync(peer, text).ConfigureAwait(false);
        }
        catch (SharedStoreUnavailableException e)
        {
            // An instance sharing Redis that cannot reach it: say so (clients retry or fail over) instead of hanging.
            var error = SignalingJson.CodedError(ErrorCodes.ServerUnavailable, e.Message, SignalingJson.TryParse(text) is JsonObject m ? m.GetString("type") : null);
            // A registration failing this way keeps the classic registration error shape too.
            if ((string?)error[SignalingJson.InReplyTo] == MessageTypes.Register) error["reason"] = RegistrationReasons.StoreError;
            Send(peer, error);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A message no handler foresaw must not end the connection or reach the accept loop; the log names the failure, not the content.
            _log.Write(LogLevel.Error, Component, $"Handling a message from {peer.RemoteAddress} failed: {e.GetType().Name}");
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "The message could not be handled."));
        }
    }

    private async Task DispatchAsync(PeerSocket peer, string text)
    {
        var node = SignalingJson.TryParse(text);
        if (node is null)
        {
            if (peer.SpendMalformedAllowance(text.Length)) Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidJson, "Invalid JSON"));
            return;
        }
        if (node is not JsonObject message || message.GetString("type") is not { } type)
        {
            if (peer.SpendMalformedAllowance(text.Length)) Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "Messages must be JSON objects with a string 'type'."));
            return;
        }

        if (type == MessageTypes.Register)
        {
            await RegisterAsync(peer, message).ConfigureAwait(false);
            return;
        }
        if (type is "ping" or "pong") return;

        if (!IsKnown(type))
        {
            // The type is echoed (classic clients match errors by it), but only its start: it is untrusted and may be 1 MB.
            if (peer.SpendMalformedAllowance(text.Length))
                Send(peer, SignalingJson.CodedError(ErrorCodes.UnknownMessageType, $"Unknown message type: {Truncate(type)}", Truncate(type)));
            return;
        }
        if (peer.PeerId is not { } self || peer.RoomId is not { } room)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.NotInRoom, "Peer not registered in any room", type));
            return;
        }

        switch (type)
        {
            case MessageTypes.DiscoverPeers: Discover(peer, self, room, message); break;
            case MessageTypes.UpdateMetadata: UpdateMetadata(peer, self, message); break;
            case MessageTypes.PeerMessage: RelayPeerMessage(peer, self, room, message); break;
            case MessageTypes.Offer: RelayOffer(peer, self, room, message); break;
            case MessageTypes.Answer or MessageTypes.Candidate: RelaySignal(peer, self, room, message, type); break;
            case MessageTypes.Error: RelayPeerError(self, room, message); break;
            case MessageTypes.MeshConnect: RelayMesh(peer, self, room, message, MessageTypes.MeshOffer, "offer"); break;
            case MessageTypes.MeshAnswer: RelayMesh(peer, self, room, message, MessageTypes.MeshAnswer, "answer"); break;
            case MessageTypes.IceCandidate: RelayMesh(peer, self, room, message, MessageTypes.IceCandidate, "candidate"); break;
            default: DispatchJobMessage(peer, self, room, type, message); break;
        }
    }

    private static bool IsKnown(string type) => type is MessageTypes.DiscoverPeers or MessageTypes.UpdateMetadata or MessageTypes.PeerMessage
        or MessageTypes.Offer or MessageTypes.Answer or MessageTypes.Candidate or MessageTypes.Error
        or MessageTypes.MeshConnect or MessageTypes.MeshAnswer or MessageTypes.IceCandidate || IsJobMessage(type);

    private async Task RegisterAsync(PeerSocket peer, JsonObject message)
    {
        var peerId = message.GetString("peer_id");
        var roomId = message.GetString("room_id");
        var token = message.GetString("token");
        var idToken = message.GetString("id_token");
        if (string.IsNullOrEmpty(peerId) || string.IsNullOrEmpty(roomId) || string.IsNullOrEmpty(token) || string.IsNullOrEmpty(idToken))
        {
            Send(peer, SignalingJson.ReasonError(RegistrationReasons.MissingFields));
            return;
        }

        if (_idTokens.Validate(idToken, DateTimeOffset.UtcNow) != peerId)
        {
            // Classic answered a bad JWT with a type-less {"error":"Invalid token"}; keep that key and add the usual ones.
            var error = SignalingJson.ReasonError(RegistrationReasons.InvalidToken);
            error["error"] = RegistrationReasons.InvalidToken;
            error["code"] = ErrorCodes.InvalidIdToken;
            error["message"] = "The id_token is invalid, expired, or was issued for another peer_id; sign in again.";
            await FailCredentialAsync(peer, roomId, error, $"invalid id_token for peer {Truncate(peerId)}").ConfigureAwait(false);
            return;
        }

        RoomRecord? room;
        try { room = await _store.GetRoomAsync(roomId, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log.Write(LogLevel.Error, Component, $"Room store failed while registering peer {peerId}: {e.GetType().Name}");
            var error = SignalingJson.ReasonError(RegistrationReasons.StoreError);
            if (e is SharedStoreUnavailableException)
            {
                error["code"] = ErrorCodes.ServerUnavailable;
                error["message"] = e.Message;
            }
            Send(peer, error);
            return;
        }
        // An unknown room and a wrong token get the same answer (classic said "Room not found"), so guessing tells nothing about which rooms exist.
        if (!RoomTokens.Opens(room, token))
        {
            await FailCredentialAsync(peer, roomId, SignalingJson.ReasonError(RegistrationReasons.InvalidToken),
                room is null ? $"unknown room {Truncate(roomId)}" : $"wrong room token for room {roomId}").ConfigureAwait(false);
            return;
        }
        if (room!.IsExpired(DateTimeOffset.UtcNow))
        {
            Send(peer, SignalingJson.ReasonError(RegistrationReasons.RoomExpired));
            return;
        }
        if (!_bindings.TryClaim(peerId, idToken, peer, DateTimeOffset.UtcNow))
        {
            var inUse = SignalingJson.ReasonError(RegistrationReasons.PeerIdInUse);
            inUse["code"] = ErrorCodes.PeerIdInUse;
            inUse["message"] = "This peer_id is registered by another connection with another id_token; sign in for a peer_id of your own.";
            await FailCredentialAsync(peer, roomId, inUse, $"peer id {peerId} is held by another id_token").ConfigureAwait(false);
            return;
        }

        var role = message.GetString("role") is { Length: > 0 } r ? r : "peer";
        var metadata = message.GetObject("metadata")?.DeepClone() as JsonObject ?? new JsonObject();
        // A space name is unique in its room: claimed here, atomically, before the peer becomes visible, so of two
        // workers starting at once with one name exactly one is registered and the other is refused.
        if (role == SpaceMetadata.Role && metadata.GetObject("properties")?.GetString(SpaceMetadata.NameProperty) is { Length: > 0 } space
            && _peers.ClaimSpace(roomId, space, peerId) is { } holder)
        {
            var taken = SignalingJson.ReasonError(RegistrationReasons.SpaceTaken);
            taken["code"] = ErrorCodes.SpaceTaken;
            taken["message"] = $"The space '{space}' is already served by {holder} in this room; a space name is unique in its room.";
            taken["space"] = space;
            taken["current_holder"] = holder;
            _log.Write(LogLevel.Information, Component, $"Peer {peerId} refused as space '{space}' in room {roomId}: held by {holder}");
            Send(peer, taken);
            return;
        }

        if (peer.PeerId is { } previous && previous != peerId)
        {
            _peers.Remove(previous, peer);
            _bindings.Release(previous, peer, resumable: false, DateTimeOffset.UtcNow);
        }
        var displaced = _peers.Register(peerId, roomId, role, metadata, peer, DateTimeOffset.UtcNow);
        peer.PeerId = peerId;
        peer.RoomId = roomId;
        peer.Role = role;
        peer.MovesWhenDraining = ListsClientExtension(message, DrainingMessages.ClientFeature);
        peer.RenewsIceServers = ListsClientExtension(message, IceServerRenewalMessages.ClientFeature);
        // Only the holder of the id_token gets here: this is the same peer on a newer connection (a reconnect after a stale socket).
        displaced?.Link.Close(WebSocketCloseStatus.PolicyViolation, "Replaced by a newer registration of this peer");

        string? adminConflict = null;
        if (message.GetBool("is_admin")) adminConflict = _peers.ClaimAdmin(roomId, peerId);

        _log.Write(LogLevel.Information, Component, $"Peer {peerId} registered in room {roomId} as {role} from {peer.RemoteAddress}");
        peer.TrySendUtf8(BuildRegisteredAuth(peer, peerId, roomId, token));
        ScheduleIceServerRenewal(peer);
        if (adminConflict is not null)
            Send(peer, new JsonObject { ["type"] = MessageTypes.AdminConflict, ["room_id"] = roomId, ["current_admin"] = adminConflict });
        // A returning submitter's tickets wait for it again; a new worker may take one.
        _jobs.PeerJoined(roomId, peerId);
    }

    /// <summary>Whether a register message lists <paramref name="feature"/> among the extensions the peer understands.</summary>
    private static bool ListsClientExtension(JsonObject register, string feature) =>
        register[DrainingMessages.ClientExtensionsKey] is JsonArray extensions
        && extensions.Any(e => e is JsonValue v && v.TryGetValue<string>(out var name) && name == feature);

    /// <summary>A wrong credential: answered after the throttle's delay for this address and room (the connection's next message waits too).</summary>
    private async Task FailCredentialAsync(PeerSocket peer, string room, JsonObject error, string why)
    {
        var delay = await _throttle.HoldBackFailureAsync(peer.RemoteAddress, room, peer.Lifetime).ConfigureAwait(false);
        _log.Write(LogLevel.Warning, Component, $"Registration from {peer.RemoteAddress} refused: {why}" + (delay > TimeSpan.Zero ? $" (answer held back {delay.TotalMilliseconds:F0} ms)" : ""));
        Send(peer, error);
    }

    private byte[] BuildRegisteredAuth(PeerSocket peer, string peerId, string roomId, string token)
    {
        var others = _peers.PeersInRoom(roomId).Where(p => p.PeerId != peerId).ToList();
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = SignalingJson.WireOptions.Encoder, SkipValidation = true }))
        {
            w.WriteStartObject();
            w.WriteString("type", MessageTypes.RegisteredAuth);
            w.WriteString("room_id", roomId);
            w.WriteString("token", token);
            w.WriteString("peer_id", peerId);
            if (_peers.AdminOf(roomId) is { } admin) w.WriteString("admin_peer_id", admin); else w.WriteNull("admin_peer_id");
            w.WriteStartArray("peer_list");
            foreach (var other in others) w.WriteStringValue(other.PeerId);
            w.WriteEndArray();
            w.WriteStartObject("peer_metadata");
            foreach (var other in others)
            {
                w.WritePropertyName(other.PeerId);
                w.WriteRawValue(other.MetadataJson, skipInputValidation: true);
            }
            w.WriteEndObject();
            w.WritePropertyName("ice_servers");
            WriteIceServers(w, peer);
            // Classic mesh connections (worker to worker) stay STUN-only, as classic servers send them.
            w.WritePropertyName("mesh_ice_servers");
            WriteIceServers(w, peer, withTurn: false);
            // Our extensions (classic clients ignore unknown keys): the job queue, unique space names.
            w.WriteStartArray(JobQueueMessages.ServerExtensionsKey);
            w.WriteStringValue(JobQueueMessages.ServerFeature);
            w.WriteStringValue(SpaceMetadata.ServerFeature);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Issues TURN credentials with registered_auth when TURN servers are configured.</summary>
    internal TurnCredentialIssuer? Turn { get; init; }

    /// <summary>
    /// Our own STUN responder, at the host name the peer used to reach us, and the configured TURN servers with
    /// credentials for this peer, in the RTCIceServer form classic aiortc peers read (urls, username, credential).
    /// </summary>
    private void WriteIceServers(Utf8JsonWriter w, PeerSocket peer, bool withTurn = true)
    {
        w.WriteStartArray();
        var port = _stunPort();
        if (port > 0)
        {
            var host = peer.HostName.Contains(':') && !peer.HostName.StartsWith('[') ? "[" + peer.HostName + "]" : peer.HostName;
            w.WriteStartObject();
            w.WriteStartArray("urls");
            w.WriteStringValue($"stun:{host}:{port}");
            w.WriteEndArray();
            w.WriteEndObject();
        }
        if (withTurn && Turn is { } turn && peer.PeerId is { } peerId)
        {
            var (username, password) = turn.CredentialsFor(peerId);
            w.WriteStartObject();
            w.WriteStartArray("urls");
            foreach (var url in turn.Urls) w.WriteStringValue(url);
            w.WriteEndArray();
            w.WriteString("username", username);
            w.WriteString("credential", password);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private void Discover(PeerSocket peer, string self, string room, JsonObject message)
    {
        // Scope is the registered room; a room_id inside filters (classic clients send one) is ignored.
        var filters = message.GetObject("filters");
        // Clients poll discover_peers; while the room has not changed, the same requester asking the
        // same question gets the same bytes, so a room of a thousand workers costs one filter pass per change.
        var cacheKey = (room, self, filters is null ? "" : SignalingJson.ToWire(filters));
        var version = _peers.RoomVersion(room);
        lock (_discoveryCache)
        {
            if (version != 0 && _discoveryCache.TryGetValue(cacheKey, out var cached) && cached.Version == version)
            {
                peer.TrySendUtf8(cached.Frame);
                return;
            }
        }

        var found = _peers.Discover(room, self, filters, out version);

        // Written by hand: the entries are ready-made JSON, so this is one copy per entry.
        var head = Utf8.GetBytes($$"""{"type":"peer_list","to_peer_id":{{JsonSerializer.Serialize(self)}},"count":{{found.Count}},"peers":[""");
        var frame = new byte[head.Length + 2 + found.Sum(p => p.PeerListEntryUtf8.Length) + Math.Max(0, found.Count - 1)];
        head.CopyTo(frame, 0);
        var offset = head.Length;
        for (var i = 0; i < found.Count; i++)
        {
            if (i > 0) frame[offset++] = (byte)',';
            var entry = found[i].PeerListEntryUtf8;
            entry.CopyTo(frame, offset);
            offset += entry.Length;
        }
        frame[offset++] = (byte)']';
        frame[offset] = (byte)'}';
        peer.TrySendUtf8(frame);

        lock (_discoveryCache)
        {
            // Bounded in entries and bytes: stale versions and departed requesters are simply dropped wholesale.
            if (_discoveryCache.Count >= MaxCachedDiscoveries || _discoveryCacheBytes + frame.Length > MaxCachedDiscoveryBytes)
            {
                _discoveryCache.Clear();
                _discoveryCacheBytes = 0;
            }
            if (_discoveryCache.TryGetValue(cacheKey, out var previous)) _discoveryCacheBytes -= previous.Frame.Length;
            _discoveryCache[cacheKey] = (version, frame);
            _discoveryCacheBytes += frame.Length;
        }
    }

    private void UpdateMetadata(PeerSocket peer, string self, JsonObject message)
    {
        if (message.GetObject("metadata") is not { } update)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "update_metadata needs a 'metadata' object.", MessageTypes.UpdateMetadata));
            return;
        }
        if (message.GetString("peer_id") is { } claimed && claimed != self)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "A peer can update only its own metadata.", MessageTypes.UpdateMetadata));
            return;
        }
        var assignmentMark = _jobs.AssignmentMark;
        var merged = _peers.UpdateMetadata(self, update);
        if (merged is null)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.PeerNotFound, "Peer not found", MessageTypes.UpdateMetadata));
            return;
        }
        _log.Write(LogLevel.Debug, Component, $"Peer {self} updated its metadata");
        peer.TrySend($$"""{"type":"metadata_updated","peer_id":{{JsonSerializer.Serialize(self)}},"metadata":{{merged}}}""");
        // A worker turning available ends its reservation (registry): it may take the next queued ticket.
        if (peer.Role == WorkerRole && peer.RoomId is { } room
            && update.GetObject(PeerMetadataKeys.Properties)?.GetString(PeerMetadataKeys.Status) == WorkerStatus.Available)
            _jobs.WorkerAvailable(room, self, assignmentMark);
    }

    private void RelayPeerMessage(PeerSocket peer, string self, string room, JsonObject message)
    {
        var targetId = message.GetString("to_peer_id");
        if (string.IsNullOrEmpty(targetId) || !message.ContainsKey("payload"))
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "peer_message needs 'to_peer_id' and 'payload'.", MessageTypes.PeerMessage));
            return;
        }
        var target = _peers.Get(targetId);
        if (target is null)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.PeerNotFound, $"Peer {Truncate(targetId)} not found", MessageTypes.PeerMessage));
            return;
        }
        if (target.RoomId != room)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.PeerNotInRoom, $"Peer {Truncate(targetId)} is not in your room", MessageTypes.PeerMessage));
            return;
        }
        message["from_peer_id"] = self;
        if (!Relay(peer, self, target.Link, message, MessageTypes.PeerMessage))
            Send(peer, SignalingJson.CodedError(ErrorCodes.DeliveryFailed, $"Could not deliver to {targetId}", MessageTypes.PeerMessage));
    }

    private void RelayOffer(PeerSocket peer, string self, string room, JsonObject message)
    {
        if (message.GetString("target") is not { Length: > 0 } targetId)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, "offer needs a 'target'.", MessageTypes.Offer));
            return;
        }
        // A result collection or a connection test (our extension key "purpose") may reach a busy worker and reserves
        // nothing; our worker serves it beside the job it runs. A resume reaches the worker still reserved for the cut-off
        // upload: the worker alone knows whether it keeps that upload, and for whom (the sender set below, the client's
        // peer id, which it keeps over its reconnects).
        var purpose = message.GetString(JobQueueMessages.OfferPurposeKey);
        if (JobQueueMessages.ReservesNothing(purpose) || purpose == JobQueueMessages.ResumePurpose)
        {
            RelaySignal(peer, self, room, message, MessageTypes.Offer);
            return;
        }
        var outcome = _peers.TryReserve(targetId, self, room, out var status);
        switch (outcome)
        {
            case ReservationOutcome.TargetNotFound or ReservationOutcome.TargetInOtherRoom:
                SendPeerNotFound(peer, targetId, MessageTypes.Offer);
                return;
            case ReservationOutcome.Busy:
                _log.Write(LogLevel.Information, Component, $"Offer from {self} to {targetId} refused: worker is {status ?? "reserved"}");
                Send(peer, new JsonObject
                {
                    ["type"] = MessageTypes.Error,
                    ["code"] = ErrorCodes.WorkerBusy,
                    ["reason"] = RegistrationReasons.WorkerBusy,
                    ["message"] = $"Worker is currently {status ?? "reserved"}. Please use --room-id and --token to discover available workers.",
                    ["current_status"] = status ?? "reserved",
                    ["target"] = self,
                    ["sender"] = targetId,
                    [SignalingJson.InReplyTo] = MessageTypes.Offer,
                });
                return;
        }
        var target = _peers.Get(targetId);
        message["sender"] = self;
        if (target is null || !Relay(peer, self, target.Link, message, MessageTypes.Offer))
        {
            _peers.ReleaseReservationsHeldBy(self);
            Send(peer, SignalingJson.CodedError(ErrorCodes.DeliveryFailed, $"Could not deliver to {targetId}", MessageTypes.Offer));
            return;
        }
        if (outcome == ReservationOutcome.Reserved)
            _log.Write(LogLevel.Information, Component, $"Worker {targetId} reserved by {self}");
        _jobs.OfferRelayed(room, self, targetId);
    }

    private void RelaySignal(PeerSocket peer, string self, string room, JsonObject message, string type)
    {
        if (message.GetString("target") is not { Length: > 0 } targetId)
        {
            Send(peer, SignalingJson.CodedError(ErrorCodes.InvalidMessage, $"{type} needs a 'target'.", type));
            return;
        }
        var target = _peers.Get(targetId);
        if (target is null || target.RoomId != room)
        {
            SendPeerNotFound(peer, targetId, type);
            return;
        }
        message["sender"] = self;
        if (!Relay(peer, self, target.Link, message, type))
            Send(peer, SignalingJson.CodedError(ErrorCodes.DeliveryFailed, $"Could not deliver to {targetId}", type));
    }

    /// <summary>A peer's own error (a worker refusing an offer) goes to its target; classic dropped these.</summary>
    private void RelayPeerError(string self, string room, JsonObject message)
    {
        if (message.GetString("target") is not { Length: > 0 } targetId)
        {
            _log.Write(LogLevel.Debug, Component, $"Dropped an error without target from {self}");
            return;
        }
        var target = _peers.Get(targetId);
        if (target is null || target.RoomId != room)
        {
            _log.Write(LogLevel.Debug, Component, $"Dropped an error from {self} for unknown peer {Truncate(targetId)}");
            return;
        }
        message["sender"] = self;
        target.Link.TrySendUtf8(SignalingJson.ToUtf8(message));
    }

    private void RelayMesh(PeerSocket peer, string self, string room, JsonObject message, string forwardedType, string payloadKey)
    {
        var targetId = message.GetString("target_peer_id");
        var target = string.IsNullOrEmpty(targetId) ? null : _peers.Get(targetId);
        if (target is null || target.RoomId != room)
        {
            Send(peer, new JsonObject
            {
                ["type"] = MessageTypes.Error, ["code"] = ErrorCodes.PeerNotFound, ["reason"] = "peer_not_found",
                ["target_peer_id"] = targetId is null ? null : Truncate(targetId), [SignalingJson.InReplyTo] = message.GetString("type"),
            });
            return;
        }
        var forwarded = new JsonObject
        {
            ["type"] = forwardedType,
            ["from_peer_id"] = self,
            [payloadKey] = message[payloadKey]?.DeepClone(),
        };
        target.Link.TrySendUtf8(SignalingJson.ToUtf8(forwarded));
    }

    /// <summary>Relays a peer's message. A target connected to another instance of a cluster gets it over the bus, and that
    /// instance answers the sender DELIVERY_FAILED if it cannot deliver it (a single server knows at once).</summary>
    private static bool Relay(PeerSocket from, string self, IPeerLink target, JsonObject message, string type) =>
        target is Cluster.RemotePeerLink remote
            ? remote.TrySendUtf8From(SignalingJson.ToUtf8(message), from, self, type)
            : target.TrySendUtf8(SignalingJson.ToUtf8(message));

    private static void SendPeerNotFound(PeerSocket peer, string targetId, string inReplyTo)
    {
        var error = SignalingJson.CodedError(ErrorCodes.PeerNotFound, $"Peer {Truncate(targetId)} not found in your room", inReplyTo);
        error["target_peer_id"] = Truncate(targetId);
        Send(peer, error);
    }

    /// <summary>Called once when a connection ends: frees its registration (if still its own) and its reservations.</summary>
    public void Disconnected(PeerSocket peer)
    {
        if (peer.PeerId is not { } peerId) return;
        try { Leave(peer, peerId); }
        catch (SharedStoreUnavailableException)
        {
            // Redis is unreachable. The registry still forgets this connection locally (its Remove does that before it
            // writes), so the instance removes the entry, and frees the id, once Redis answers again.
            try { _peers.Remove(peerId, peer); }
            catch (SharedStoreUnavailableException) { }
            _log.Write(LogLevel.Warning, Component, $"Peer {peerId} left while the shared store was unreachable; it is removed when it answers again");
        }
    }

    private void Leave(PeerSocket peer, string peerId)
    {
        // Lost without a goodbye: the id stays reserved for its holder for the resume grace.
        _bindings.Release(peerId, peer, resumable: !peer.SaidGoodbye, DateTimeOffset.UtcNow);
        var reserved = _peers.WorkersReservedBy(peerId);
        if (!_peers.Remove(peerId, peer)) return;
        _log.Write(LogLevel.Information, Component, $"Peer {peerId} left room {peer.RoomId}");
        if (peer.RoomId is { } room) _jobs.PeerLeft(room, peerId);
        // A client killed between its offer and an open data channel would otherwise hold its worker "reserved"
        // until the worker's own reservation timeout (20 s; more on a loaded box): tell each worker it reserved.
        foreach (var workerId in reserved)
        {
            if (_peers.Get(workerId) is not { } worker) continue;
            _log.Write(LogLevel.Information, Component, $"Told worker {workerId} that {peerId}, who reserved it, left");
            worker.Link.TrySendUtf8(SignalingJson.ToUtf8(new JsonObject
            {
                ["type"] = MessageTypes.Error,
                ["code"] = ErrorCodes.PeerLeft,
                ["message"] = $"Peer {peerId}, whose offer reserved you, left the server.",
                ["sender"] = peerId,
                ["target"] = workerId,
            }));
        }
    }

    private static void Send(PeerSocket peer, JsonObject message) => peer.TrySendUtf8(SignalingJson.ToUtf8(message));

    /// <summary>The peer was deleted through the HTTP API (with its room token): its id is free at once.</summary>
    public void PeerDeleted(string peerId, string roomId)
    {
        _bindings.Forget(peerId);
        // Its connection's end will not count as leaving (the registration is already gone): tell the job queue now.
        _jobs.PeerLeft(roomId, peerId);
    }

    /// <summary>The room was deleted (its peers already evicted): its job records and tickets go with it.</summary>
    public void RoomDeleted(string roomId) => _jobs.ForgetRoom(roomId);

    /// <summary>Echoed identifiers are untrusted input (up to a whole message): keep what goes back and into logs short.
    /// Never cuts a surrogate pair in two.</summary>
    internal static string Truncate(string text)
    {
        const int Keep = 64;
        if (text.Length <= Keep) return text;
        var cut = char.IsHighSurrogate(text[Keep - 1]) ? Keep - 1 : Keep;
        return text[..cut] + "…";
    }
}
