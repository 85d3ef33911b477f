using System.Net.WebSockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>A JSON (or empty) HTTP answer.</summary>
internal readonly record struct HttpResponse(int StatusCode, JsonNode? Body)
{
    public static HttpResponse Json(JsonNode body, int status = 200) => new(status, body);
    public static HttpResponse Detail(int status, string detail) => new(status, new JsonObject { ["detail"] = detail });
}

/// <summary>
/// The classic HTTP API: /anonymous-signin, /create-room, /delete-peer, /delete-peers-and-room,
/// /health, /metrics. The delete endpoints need the room token (classic left them open to anyone); an unknown room
/// and a wrong token both get 403 with the same body, after the credential throttle's delay.
/// </summary>
internal sealed partial class HttpEndpoints
{
    private const string Component = "signaling-http";
    public const string ClassicVersion = "2.0.0";

    private readonly RoomService _rooms;
    private readonly IPeerRegistry _peers;
    private readonly IdTokenService _idTokens;
    private readonly SignalingHub _hub;
    private readonly CredentialThrottle _throttle;
    private readonly ILogSink _log;
    /// <summary>Null while healthy; otherwise what is wrong (an instance sharing Redis that cannot reach it).</summary>
    private readonly Func<string?> _healthProblem;

    /// <summary>The one answer to a room token that does not open the room, whether the room exists or not.</summary>
    private static HttpResponse WrongRoomToken => new(RoomTokens.RefusalStatus, RoomTokens.RefusalBody());

    public HttpEndpoints(RoomService rooms, IPeerRegistry peers, IdTokenService idTokens, SignalingHub hub, CredentialThrottle throttle, ILogSink log,
        Func<string?>? healthProblem = null)
    {
        _healthProblem = healthProblem ?? (() => null);
        _rooms = rooms;
        _peers = peers;
        _idTokens = idTokens;
        _hub = hub;
        _throttle = throttle;
        _log = log;
    }

    public async Task<HttpResponse> HandleAsync(HttpRequest request, string remoteAddress, CancellationToken ct)
    {
        var path = request.Path.TrimEnd('/');
        if (path.Length == 0) path = "/";
        if (request.Method == "OPTIONS") return new HttpResponse(204, null);

        switch (request.Method, path)
        {
            case ("GET" or "HEAD", "/health"):
            {
                // Degraded (503, so load balancers and failover take the hint): this instance cannot reach the Redis it shares.
                var problem = _healthProblem();
                var health = new JsonObject
                {
                    ["status"] = problem is null ? "healthy" : "degraded",
                    ["timestamp"] = DateTimeOffset.UtcNow.ToString("o"),
                    ["version"] = ClassicVersion,
                    ["server"] = "SleapRtc",
                };
                if (problem is not null) health["problem"] = problem;
                return HttpResponse.Json(health, problem is null ? 200 : 503);
            }
            case ("GET" or "HEAD", "/metrics"):
                return HttpResponse.Json(await MetricsAsync(ct).ConfigureAwait(false));
            case ("POST", "/anonymous-signin"):
                return SignIn(request);
            case ("POST", "/create-room"):
                return await CreateRoomAsync(request, remoteAddress, ct).ConfigureAwait(false);
            case ("POST", "/delete-peer"):
                return await DeletePeerAsync(request, remoteAddress, ct).ConfigureAwait(false);
            case ("POST", "/delete-peers-and-room"):
                return await DeleteRoomAsync(request, remoteAddress, ct).ConfigureAwait(false);
            case (_, "/health" or "/metrics" or "/anonymous-signin" or "/create-room" or "/delete-peer" or "/delete-peers-and-room"):
                return HttpResponse.Detail(405, "Method Not Allowed");
            default:
                return HttpResponse.Detail(404, "Not Found");
        }
    }

    private async Task<JsonObject> MetricsAsync(CancellationToken ct)
    {
        var byRole = new JsonObject();
        foreach (var (role, count) in _peers.CountByRole()) byRole[role] = count;
        return new JsonObject
        {
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("o"),
            ["active_rooms"] = _peers.RoomCount,
            ["active_connections"] = _peers.Count,
            ["peers_by_role"] = byRole,
            ["total_connections"] = Interlocked.Read(ref _hub.TotalConnections),
            ["total_messages"] = Interlocked.Read(ref _hub.TotalMessages),
            ["rooms_created"] = Interlocked.Read(ref _hub.RoomsCreated),
            ["stored_rooms"] = await _rooms.CountAsync(ct).ConfigureAwait(false),
        };
    }

    /// <summary>Issues a signed id_token. The username (= peer_id) is a fresh UUID, or a requested readable name.</summary>
    private HttpResponse SignIn(HttpRequest request)
    {
        var body = ParseBody(request, out var invalid);
        if (invalid) return HttpResponse.Detail(400, "The body must be empty or a JSON object.");
        var username = body?.GetString("username");
        if (username is null) username = Guid.NewGuid().ToString();
        else if (!ValidName().IsMatch(username)) return HttpResponse.Detail(400, "username must be 1-64 letters, digits, '.', '_' or '-'.");

        var idToken = _idTokens.Issue(username, DateTimeOffset.UtcNow);
        _log.Write(LogLevel.Debug, Component, $"Signed in anonymous user {username}");
        return HttpResponse.Json(new JsonObject { ["id_token"] = idToken, ["username"] = username });
    }

    private async Task<HttpResponse> CreateRoomAsync(HttpRequest request, string remoteAddress, CancellationToken ct)
    {
        var authorization = request.Header("Authorization");
        var bearer = authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization[7..].Trim() : null;
        var user = _idTokens.Validate(bearer, DateTimeOffset.UtcNow);
        if (user is null)
        {
            // Signed tokens cannot be guessed, but every credential check is throttled alike (no room: by address only).
            await _throttle.HoldBackFailureAsync(remoteAddress, null, ct).ConfigureAwait(false);
            return HttpResponse.Detail(401, "Invalid or expired id_token");
        }

        var body = ParseBody(request, out var invalid);
        if (invalid) return HttpResponse.Detail(400, "The body must be empty or a JSON object.");
        var name = body?.GetString("name");
        if (name is { Length: > 200 }) return HttpResponse.Detail(400, "name is too long (200 characters at most).");

        TimeSpan? ttl = null;
        var never = false;
        if (body is not null && body.TryGetPropertyValue("expires_in_seconds", out var secondsNode) && secondsNode is not null)
        {
            if (!TryPositive(secondsNode, 1, 365.0 * 86400, out var seconds)) return HttpResponse.Detail(400, "expires_in_seconds must be between 1 and 31536000.");
            ttl = TimeSpan.FromSeconds(seconds);
        }
        else if (body is not null && body.TryGetPropertyValue("expires_in_days", out var daysNode))
        {
            // Later upstream servers: null means the room never expires.
            if (daysNode is null) never = true;
            else if (!TryPositive(daysNode, 1, 365, out var days)) return HttpResponse.Detail(400, "expires_in_days must be between 1 and 365, or null for never.");
            else ttl = TimeSpan.FromDays(days);
        }

        var room = await _rooms.CreateAsync(name, never ? Timeout.InfiniteTimeSpan : ttl, user, ct).ConfigureAwait(false);
        return HttpResponse.Json(new JsonObject
        {
            ["room_id"] = room.RoomId,
            ["token"] = room.Token,
            ["name"] = room.Name,
            ["expires_at"] = room.ExpiresAt?.ToUnixTimeSeconds(),
        });
    }

    private static bool TryPositive(JsonNode node, double min, double max, out double value)
    {
        value = 0;
        return node is JsonValue v && v.TryGetValue(out value) && value >= min && value <= max;
    }

    /// <summary>Removes one live peer; needs the token of its room. The room itself stays (it may be long-lived).</summary>
    private async Task<HttpResponse> DeletePeerAsync(HttpRequest request, string remoteAddress, CancellationToken ct)
    {
        var body = ParseBody(request, out var invalid);
        var peerId = body?.GetString("peer_id");
        if (invalid || body is null || string.IsNullOrEmpty(peerId)) return HttpResponse.Detail(400, "Body must be JSON with peer_id, room_id and token.");
        var live = _peers.Get(peerId);
        // Classic clients send only peer_id: the room is the live peer's. No room at all is answered like a wrong token.
        var roomId = body.GetString("room_id") ?? live?.RoomId;
        if (await CheckRoomTokenAsync(roomId, body.GetString("token"), remoteAddress, ct).ConfigureAwait(false) is { } refusal) return refusal;
        if (live is null || live.RoomId != roomId) return HttpResponse.Detail(404, "Peer not found");

        if (_peers.Evict(peerId) is { } evicted)
        {
            _hub.PeerDeleted(evicted.PeerId, evicted.RoomId);
            evicted.Link.Close(WebSocketCloseStatus.NormalClosure, "Peer deleted");
        }
        _log.Write(LogLevel.Information, Component, $"Deleted peer {peerId} from room {roomId}");
        return HttpResponse.Json(new JsonObject { ["status"] = $"Peer {peerId} deleted" });
    }

    /// <summary>Disconnects every peer of the room and deletes it; needs the room token.</summary>
    private async Task<HttpResponse> DeleteRoomAsync(HttpRequest request, string remoteAddress, CancellationToken ct)
    {
        var body = ParseBody(request, out var invalid);
        if (invalid || body is null) return HttpResponse.Detail(400, "Body must be JSON with room_id (or peer_id) and token.");
        var roomId = body.GetString("room_id") ?? (body.GetString("peer_id") is { } peerId ? _peers.Get(peerId)?.RoomId : null);
        if (await CheckRoomTokenAsync(roomId, body.GetString("token"), remoteAddress, ct).ConfigureAwait(false) is { } refusal) return refusal;

        var removed = 0;
        foreach (var peer in _peers.PeersInRoom(roomId!))
        {
            if (_peers.Evict(peer.PeerId) is not { } evicted) continue;
            _hub.PeerDeleted(evicted.PeerId, evicted.RoomId);
            evicted.Link.Close(WebSocketCloseStatus.NormalClosure, "Room deleted");
            removed++;
        }
        await _rooms.DeleteAsync(roomId!, ct).ConfigureAwait(false);
        _hub.RoomDeleted(roomId!);
        _log.Write(LogLevel.Information, Component, $"Deleted room {roomId} and its {removed} peer(s)");
        return HttpResponse.Json(new JsonObject { ["status"] = $"Room {roomId} and {removed} peer(s) deleted" });
    }

    /// <summary>Null when <paramref name="token"/> opens <paramref name="roomId"/>; otherwise the refusal, after the throttle's delay.
    /// An unknown (or unnamed) room and a wrong token get the same 403 and body, so the API does not reveal which rooms exist.</summary>
    private async Task<HttpResponse?> CheckRoomTokenAsync(string? roomId, string? token, string remoteAddress, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token)) return HttpResponse.Detail(401, "The room token is required.");
        var room = string.IsNullOrEmpty(roomId) ? null : await _rooms.GetAsync(roomId!, ct).ConfigureAwait(false);
        if (RoomTokens.Opens(room, token)) return null;
        var delay = await _throttle.HoldBackFailureAsync(remoteAddress, roomId ?? "", ct).ConfigureAwait(false);
        _log.Write(LogLevel.Warning, Component, $"Room token refused for room {SignalingHub.Truncate(roomId ?? "-")} from {remoteAddress}" +
            (delay > TimeSpan.Zero ? $" (answer held back {delay.TotalMilliseconds:F0} ms)" : ""));
        return WrongRoomToken;
    }

    private static JsonObject? ParseBody(HttpRequest request, out bool invalid)
    {
        invalid = false;
        if (request.Body.Length == 0 || request.Body.AsSpan().Trim(" \t\r\n"u8).IsEmpty) return null;
        try
        {
            if (JsonNode.Parse(request.Body) is JsonObject body) return body;
        }
        catch (System.Text.Json.JsonException) { }
        invalid = true;
        return null;
    }

#if NET8_0_OR_GREATER
    [GeneratedRegex(ValidNamePattern)]
    private static partial Regex ValidName();
#else
    private static readonly Regex s_validName = new(ValidNamePattern, RegexOptions.CultureInvariant);
    private static Regex ValidName() => s_validName;
#endif
    private const string ValidNamePattern = "^[A-Za-z0-9._-]{1,64}$";
}
