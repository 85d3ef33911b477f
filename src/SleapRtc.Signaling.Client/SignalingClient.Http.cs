using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

/// <summary>The classic HTTP endpoints, on the same server as the WebSocket.</summary>
public sealed partial class SignalingClient
{
    /// <summary>POST /anonymous-signin. Our server also accepts a requested readable <paramref name="username"/>.</summary>
    public async Task<SignInResult> AnonymousSignInAsync(string? username = null, CancellationToken ct = default)
    {
        var body = username is null ? null : new JsonObject { ["username"] = username };
        var answer = await PostAsync("/anonymous-signin", body, null, ct).ConfigureAwait(false);
        var result = new SignInResult(answer.GetString("id_token") ?? throw new SignalingException("The sign-in answer has no id_token."),
            answer.GetString("username") ?? throw new SignalingException("The sign-in answer has no username."));
        IdToken = result.IdToken;
        return result;
    }

    /// <summary>POST /create-room with the id_token of the last sign-in (signs in anonymously first if there was none).
    /// <paramref name="expiresIn"/>: null = the server default (30 days), <see cref="Timeout.InfiniteTimeSpan"/> = never.</summary>
    public async Task<Room> CreateRoomAsync(string? name = null, TimeSpan? expiresIn = null, CancellationToken ct = default)
    {
        if (IdToken is null) await AnonymousSignInAsync(null, ct).ConfigureAwait(false);
        var body = new JsonObject();
        if (name is not null) body["name"] = name;
        if (expiresIn == Timeout.InfiniteTimeSpan) body["expires_in_days"] = null;
        else if (expiresIn is { } ttl) body["expires_in_seconds"] = Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));
        var answer = await PostAsync("/create-room", body, IdToken, ct).ConfigureAwait(false);
        DateTimeOffset? expiresAt = answer["expires_at"] is JsonValue v && v.TryGetValue<long>(out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
        return new Room
        {
            RoomId = answer.GetString("room_id") ?? throw new SignalingException("The create-room answer has no room_id."),
            Token = answer.GetString("token") ?? throw new SignalingException("The create-room answer has no token."),
            Name = answer.GetString("name") ?? name,
            ExpiresAt = expiresAt,
            CreatedAt = DateTimeOffset.UtcNow,
            Server = ServerList,
        };
    }

    /// <summary>POST /delete-peer: disconnects one peer of the room (needs the room token on our server).</summary>
    public Task DeletePeerAsync(string peerId, string roomId, string token, CancellationToken ct = default)
        => PostAsync("/delete-peer", new JsonObject { ["peer_id"] = peerId, ["room_id"] = roomId, ["token"] = token }, null, ct);

    /// <summary>POST /delete-peers-and-room: disconnects every peer and deletes the room.</summary>
    public Task DeleteRoomAsync(string roomId, string token, CancellationToken ct = default)
        => PostAsync("/delete-peers-and-room", new JsonObject { ["room_id"] = roomId, ["token"] = token }, null, ct);

    /// <summary>GET /health.</summary>
    public Task<JsonObject> GetHealthAsync(CancellationToken ct = default) => GetAsync("/health", ct);

    /// <summary>GET /metrics.</summary>
    public Task<JsonObject> GetMetricsAsync(CancellationToken ct = default) => GetAsync("/metrics", ct);

    private Task<JsonObject> GetAsync(string path, CancellationToken ct)
        => SendHttpAsync(server => new HttpRequestMessage(HttpMethod.Get, server.HttpEndpoint(path)), path, ct);

    private Task<JsonObject> PostAsync(string path, JsonObject? body, string? bearer, CancellationToken ct)
        => SendHttpAsync(server =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, server.HttpEndpoint(path));
            request.Content = new ByteArrayContent(body is null ? [] : Encoding.UTF8.GetBytes(SignalingJson.ToWire(body)));
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            return request;
        }, path, ct);

    /// <summary>
    /// Sends to the server in use, and on to the next of the list when one cannot be reached (connection refused,
    /// no route): with several instances the first reachable answers. Before any WebSocket is open, the server that
    /// answered becomes the one in use, so the registration that follows a sign-in goes to the same instance.
    /// </summary>
    private async Task<JsonObject> SendHttpAsync(Func<SignalingEndpoints, HttpRequestMessage> build, string path, CancellationToken ct)
    {
        var first = Volatile.Read(ref _current);
        var failures = new List<string>();
        HttpResponseMessage? response = null;
        for (var i = 0; i < Servers.Count && response is null; i++)
        {
            var index = (first + i) % Servers.Count;
            using var request = build(Servers[index]);
            try
            {
                response = await _http.SendAsync(request, ct).ConfigureAwait(false);
                if (index != first && _socket is null) Volatile.Write(ref _current, index);
            }
            catch (HttpRequestException e)
            {
                failures.Add($"Could not reach the signaling server at {Servers[index].Http}: {e.Message}");
                if (i == Servers.Count - 1)
                    throw new SignalingException(failures.Count == 1 ? failures[0] : string.Join(" | ", failures), inner: e);
            }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new SignalingException($"The signaling server did not answer {path} in time.", inner: e);
            }
        }
        if (response is null) throw new SignalingException("No signaling server was tried.");
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            var json = SignalingJson.TryParse(text) as JsonObject;
            if (!response.IsSuccessStatusCode)
            {
                var detail = json?.GetString("detail") ?? response.ReasonPhrase ?? "error";
                throw new SignalingException($"{path} failed with HTTP {(int)response.StatusCode}: {detail}",
                    new SignalingError("HTTP_" + (int)response.StatusCode, detail, detail, null, null, path, json ?? new JsonObject()));
            }
            return json ?? throw new SignalingException($"{path} answered with something that is not a JSON object.");
        }
    }
}
