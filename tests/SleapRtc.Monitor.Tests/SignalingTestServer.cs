using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Monitor;
using SleapRtc.Signaling.Server;

namespace SleapRtc.Monitor.Tests;

/// <summary>
/// The real signaling server on an ephemeral loopback port with an in-memory room store, plus helpers that talk
/// to it the way classic sleap-RTC peers do (HTTP sign-in and room creation, raw WebSocket JSON messages).
/// </summary>
public sealed class SignalingTestServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private SignalingTestServer(SignalingServerHost host)
    {
        Host = host;
        Http = new HttpClient { BaseAddress = new Uri(host.LocalUrl.Replace("ws://", "http://", StringComparison.Ordinal)), Timeout = Timeout };
    }

    public SignalingServerHost Host { get; }
    public HttpClient Http { get; }
    public Uri BaseAddress => Http.BaseAddress!;

    public static async Task<SignalingTestServer> StartAsync(MonitorOptions? monitor = null, int port = 0, string databasePath = ":memory:", ILogSink? log = null)
    {
        var host = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = port,
            ListenAddress = "127.0.0.1",
            DatabasePath = databasePath,
            EnableStun = false,
            Monitor = monitor ?? new MonitorOptions(),
            Log = log ?? Log.Null,
        });
        return new SignalingTestServer(host);
    }

    /// <summary>Signs in (classic anonymous sign-in) and returns the id_token for that user name.</summary>
    public async Task<string> SignInAsync(string userName)
    {
        using var response = await Http.PostAsync("/anonymous-signin", JsonBody(new JsonObject { ["username"] = userName }));
        response.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return (string)body["id_token"]!;
    }

    /// <summary>Creates a room as a classic client does and returns its id and token.</summary>
    public async Task<(string RoomId, string Token)> CreateRoomAsync()
    {
        var idToken = await SignInAsync("room-owner-" + Guid.NewGuid().ToString("N")[..8]);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/create-room") { Content = JsonBody(new JsonObject()) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idToken);
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return ((string)body["room_id"]!, (string)body["token"]!);
    }

    /// <summary>Registers a classic-shaped worker in the room with the given metadata properties.</summary>
    /// <param name="idToken">The id_token to register with (a peer re-registering keeps its own); null signs in afresh.</param>
    public async Task<ClassicPeer> RegisterWorkerAsync(string roomId, string token, string peerId, JsonObject properties, string role = "worker", string? idToken = null)
    {
        idToken ??= await SignInAsync(peerId);
        var peer = await ClassicPeer.ConnectAsync(new Uri(Host.LocalUrl + "/"), peerId);
        await peer.SendAsync(new JsonObject
        {
            ["type"] = "register",
            ["peer_id"] = peerId,
            ["room_id"] = roomId,
            ["token"] = token,
            ["id_token"] = idToken,
            ["role"] = role,
            ["metadata"] = new JsonObject { ["tags"] = new JsonArray("sleap-rtc"), ["properties"] = properties },
        });
        var reply = await peer.ReceiveAsync("registered_auth");
        Assert.Equal(peerId, (string?)reply["peer_id"]);
        return peer;
    }

    public static JsonObject WorkerProperties(string gpuModel, long memoryMb, string hostname, string status = "available", string? name = null)
    {
        var properties = new JsonObject
        {
            ["gpu_model"] = gpuModel,
            ["gpu_memory_mb"] = memoryMb,
            ["cuda_version"] = "12.4",
            ["hostname"] = hostname,
            ["status"] = status,
            ["sleap_version"] = "1.4.1",
            ["max_concurrent_jobs"] = 1,
        };
        if (name is not null) properties["worker_name"] = name;
        return properties;
    }

    public HttpRequestMessage AuthorisedGet(string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Host.StopAsync();
    }

    private static StringContent JsonBody(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}

/// <summary>A peer speaking the classic signaling JSON over a raw WebSocket, as the Python sleap-RTC does.</summary>
public sealed class ClassicPeer : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;

    private ClassicPeer(ClientWebSocket socket, string peerId)
    {
        _socket = socket;
        PeerId = peerId;
    }

    public string PeerId { get; }

    public static async Task<ClassicPeer> ConnectAsync(Uri server, string peerId)
    {
        var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
        await socket.ConnectAsync(server, timeout.Token);
        return new ClassicPeer(socket, peerId);
    }

    public async Task SendAsync(JsonObject message)
    {
        using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, timeout.Token);
    }

    /// <summary>Classic update_metadata: the server merges the properties and answers metadata_updated.</summary>
    public async Task UpdatePropertiesAsync(JsonObject properties)
    {
        await SendAsync(new JsonObject
        {
            ["type"] = "update_metadata",
            ["peer_id"] = PeerId,
            ["metadata"] = new JsonObject { ["properties"] = properties },
        });
        await ReceiveAsync("metadata_updated");
    }

    /// <summary>Reads messages until one of the wanted type arrives (server pings and the like are skipped).</summary>
    public async Task<JsonNode> ReceiveAsync(string type)
    {
        using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var message = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await _socket.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close) throw new InvalidOperationException($"{PeerId}: connection closed while waiting for {type}");
                message.Write(buffer, 0, result.Count);
            } while (!result.EndOfMessage);
            var node = JsonNode.Parse(message.ToArray())!;
            var received = (string?)node["type"];
            if (received == type) return node;
            if (received == "error") throw new InvalidOperationException($"{PeerId}: server error while waiting for {type}: {node.ToJsonString()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
            try { await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token); }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException) { }
        }
        _socket.Dispose();
    }
}

/// <summary>Reads a text/event-stream response event by event, each wait bounded.</summary>
public sealed class EventStreamReader(Stream stream) : IAsyncDisposable
{
    private readonly StreamReader _reader = new(stream, Encoding.UTF8);

    public async Task<(string Name, JsonElement Data)> NextAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        string name = "message";
        var data = new StringBuilder();
        while (true)
        {
            var line = await _reader.ReadLineAsync(cancel.Token)
                ?? throw new EndOfStreamException("The event stream ended.");
            if (line.Length == 0)
            {
                if (data.Length == 0) { name = "message"; continue; }
                using var document = JsonDocument.Parse(data.ToString());
                return (name, document.RootElement.Clone());
            }
            if (line.StartsWith(':')) continue;
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Append(line["data: ".Length..]);
        }
    }

    /// <summary>The next event with that name, skipping others; fails if it does not come within the timeout.</summary>
    public async Task<JsonElement> NextNamedAsync(string name, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero) throw new TimeoutException($"no {name} event within {timeout.TotalMilliseconds} ms");
            var (eventName, data) = await NextAsync(remaining);
            if (eventName == name) return data;
        }
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Keeps every line the server logs (all levels), so tests can check what reaches the logs.</summary>
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
