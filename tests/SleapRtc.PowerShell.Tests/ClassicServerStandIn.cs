using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// A signaling server that answers the first steps as the classic sleap-RTC server does (anonymous sign-in, register →
/// registered_auth) and announces no extension: what our client meets on a server that keeps no job queue. Anything
/// else it receives is ignored, as a classic server ignores what it does not know.
/// </summary>
internal sealed class ClassicServerStandIn : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();

    public ClassicServerStandIn()
    {
        var port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        Url = $"ws://127.0.0.1:{port}";
        _ = Task.Run(AcceptAsync);
    }

    public string Url { get; }

    /// <summary>Message types received after registration (a classic server would answer them UNKNOWN_MESSAGE_TYPE).</summary>
    public List<string> UnexpectedTypes { get; } = new();

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        try
        {
            if (context.Request.IsWebSocketRequest)
            {
                var socket = (await context.AcceptWebSocketAsync(null)).WebSocket;
                await ServeAsync(socket);
                return;
            }
            var body = context.Request.Url?.AbsolutePath == "/anonymous-signin"
                ? new JsonObject { ["id_token"] = "classic-id-token", ["username"] = "peer-" + Guid.NewGuid().ToString("N")[..8] }.ToJsonString()
                : "{}";
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or WebSocketException or IOException or ObjectDisposedException) { }
    }

    private async Task ServeAsync(WebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        while (socket.State == WebSocketState.Open && !_stop.IsCancellationRequested)
        {
            var received = await socket.ReceiveAsync(buffer, _stop.Token);
            if (received.MessageType == WebSocketMessageType.Close) return;
            if (JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, received.Count)) is not JsonObject message) continue;
            var type = message["type"]?.GetValue<string>();
            if (type != "register")
            {
                lock (UnexpectedTypes) UnexpectedTypes.Add(type ?? "");
                continue;
            }
            var answer = new JsonObject
            {
                ["type"] = "registered_auth",
                ["peer_id"] = message["peer_id"]?.GetValue<string>(),
                ["room_id"] = message["room_id"]?.GetValue<string>(),
                ["peer_list"] = new JsonArray(),
                ["ice_servers"] = new JsonArray(),
            };
            await socket.SendAsync(Encoding.UTF8.GetBytes(answer.ToJsonString()), WebSocketMessageType.Text, true, _stop.Token);
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
    }
}
