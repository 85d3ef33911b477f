using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>Collects every log line so tests can assert that secrets never appear.</summary>
public sealed class CapturingLogSink : ILogSink
{
    private readonly List<string> _lines = [];

    public bool IsEnabled(LogLevel level) => true;

    public void Write(LogLevel level, string component, string message)
    {
        lock (_lines) _lines.Add($"{level} {component}: {message}");
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }
}

/// <summary>A real server on an ephemeral loopback port with an in-memory (or given) database.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private TestServer(SignalingServerHost host, CapturingLogSink log)
    {
        Host = host;
        Log = log;
        Http = new HttpClient { BaseAddress = new Uri(host.HttpUrl.Replace(ListenHost(host), "127.0.0.1") + "/"), Timeout = Wait };
    }

    private static string ListenHost(SignalingServerHost host) => new Uri(host.HttpUrl).Host;

    public SignalingServerHost Host { get; }

    /// <summary>The other instances of a cluster (<see cref="StartClusterAsync"/>); empty for a single server.</summary>
    public IReadOnlyList<TestServer> Companions { get; private set; } = [];
    private int _nextJoin;
    public CapturingLogSink Log { get; }
    public HttpClient Http { get; }
    public string WsUrl => $"ws://127.0.0.1:{Host.Port}";

    public static async Task<TestServer> StartAsync(Action<SignalingServerOptions>? configure = null)
    {
        var log = new CapturingLogSink();
        var options = new SignalingServerOptions { Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", Log = log };
        configure?.Invoke(options);
        var host = await SignalingServerHost.StartAsync(options, CancellationToken.None).WaitAsync(Wait);
        return new TestServer(host, log);
    }

    public async Task<(string IdToken, string Username)> SignInAsync(string? username = null)
    {
        using var content = new StringContent(username is null ? "" : $$"""{"username":"{{username}}"}""", Encoding.UTF8, "application/json");
        using var response = await Http.PostAsync("anonymous-signin", content);
        response.EnsureSuccessStatusCode();
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        return ((string)json["id_token"]!, (string)json["username"]!);
    }

    public async Task<(string RoomId, string Token)> CreateRoomAsync(string idToken, string? body = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "create-room");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idToken);
        request.Content = new StringContent(body ?? "", Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        return ((string)json["room_id"]!, (string)json["token"]!);
    }

    public async Task<(int Status, JsonObject? Body)> PostAsync(string path, string body, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path.TrimStart('/'));
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject);
    }

    /// <summary>A room plus a connected, registered classic-shaped peer.</summary>
    public async Task<RawPeer> JoinAsync(string roomId, string token, string role, string? metadataJson = null, string? username = null)
    {
        var (idToken, peerId) = await SignInAsync(username);
        // In a cluster, peers join through each instance in turn, so conversations cross instances.
        var through = Companions.Count == 0 ? this : (Interlocked.Increment(ref _nextJoin) - 1) % (Companions.Count + 1) is var n && n == 0 ? this : Companions[n - 1];
        var peer = await RawPeer.ConnectAsync(through.WsUrl);
        peer.PeerId = peerId;
        peer.IdToken = idToken;
        await peer.SendAsync($$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{idToken}}", "role": "{{role}}", "metadata": {{metadataJson ?? "{}"}}}""");
        var answer = await peer.ReceiveAsync("registered_auth");
        Assert.Equal(peerId, (string?)answer["peer_id"]);
        return peer;
    }

    public async Task<(string RoomId, string Token)> NewRoomAsync(string? body = null)
    {
        var (idToken, _) = await SignInAsync();
        return await CreateRoomAsync(idToken, body);
    }

    /// <summary>Instance 0 of <paramref name="count"/> instances sharing <paramref name="redis"/>; the others are its companions.</summary>
    public static async Task<TestServer> StartClusterAsync(RedisTestServer redis, int count, Action<SignalingServerOptions>? configure = null)
    {
        var cluster = await TestCluster.StartAsync(redis, count, configure);
        var first = cluster[0];
        first.Companions = cluster.Instances.Skip(1).ToList();
        return first;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Host.StopAsync().WaitAsync(Wait);
        foreach (var companion in Companions) await companion.DisposeAsync();
    }
}

/// <summary>A peer speaking raw JSON over ClientWebSocket, exactly like the classic Python client and worker do.</summary>
public sealed class RawPeer : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;

    private RawPeer(ClientWebSocket socket) => _socket = socket;

    public string PeerId { get; set; } = "";
    public string IdToken { get; set; } = "";
    public ClientWebSocket Socket => _socket;

    public static async Task<RawPeer> ConnectAsync(string url)
    {
        var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TestServer.Wait);
        await socket.ConnectAsync(new Uri(url), timeout.Token);
        return new RawPeer(socket);
    }

    public async Task SendAsync(string json)
    {
        using var timeout = new CancellationTokenSource(TestServer.Wait);
        await _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, timeout.Token);
    }

    public Task SendAsync(JsonObject message) => SendAsync(message.ToJsonString());

    /// <summary>Next message that is not a ping (or exactly a ping when asked for one).</summary>
    public async Task<JsonObject> ReceiveAsync(string? type = null, TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? TestServer.Wait);
        while (true)
        {
            var message = await ReceiveAnyAsync(timeout.Token);
            var actual = (string?)message["type"];
            if (type == "ping" ? actual == "ping" : actual != "ping")
            {
                if (type is not null && type != "error" && actual == "error") Assert.Fail("Expected " + type + " but got " + message.ToJsonString());
                if (type is not null) Assert.Equal(type, actual ?? (message.ContainsKey("error") ? "error" : null));
                return message;
            }
        }
    }

    private async Task<JsonObject> ReceiveAnyAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await _socket.ReceiveAsync(buffer, ct);
            if (result.MessageType == WebSocketMessageType.Close) throw new WebSocketException("closed: " + result.CloseStatus);
            message.Write(buffer, 0, result.Count);
        } while (!result.EndOfMessage);
        return JsonNode.Parse(message.ToArray())!.AsObject();
    }

    /// <summary>Asserts that nothing but pings arrives within the window.</summary>
    public async Task ExpectSilenceAsync(int milliseconds = 300)
    {
        using var timeout = new CancellationTokenSource(milliseconds);
        try
        {
            while (true)
            {
                var message = await ReceiveAnyAsync(timeout.Token);
                if ((string?)message["type"] != "ping") Assert.Fail("Expected no message but got " + message.ToJsonString());
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException) when (_socket.State == WebSocketState.Aborted) { }
    }

    /// <summary>Waits for the server to close; returns the close status it sent.</summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync()
    {
        using var timeout = new CancellationTokenSource(TestServer.Wait);
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close) return result.CloseStatus;
            }
        }
        catch (WebSocketException)
        {
            return _socket.CloseStatus;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(1000);
            if (_socket.State == WebSocketState.Open) await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        _socket.Dispose();
    }
}

/// <summary>Messages and waits the signaling tests share.</summary>
public static class Wire
{
    /// <summary>A classic register message (the peer's own id_token unless a test says otherwise).</summary>
    public static string Register(string peerId, string roomId, string token, string idToken, string role = "worker", string? metadataJson = null)
        => $$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{idToken}}", "role": "{{role}}", "metadata": {{metadataJson ?? "{}"}}}""";

    /// <summary>Polls until the condition holds; fails the test after <see cref="TestServer.Wait"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TestServer.Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(20);
        }
    }
}
