using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json.Nodes;

namespace SleapRtc.Bench.Common;

/// <summary>One signaling server on loopback as the signaling benches' raw peers reach it: HTTP sign-in and WebSocket registration.</summary>
public sealed class SignalingEndpoint : IDisposable
{
    private readonly Uri _webSocketUrl;

    public SignalingEndpoint(int port)
    {
        Port = port;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
        _webSocketUrl = new Uri($"ws://127.0.0.1:{port}/");
    }

    public int Port { get; }
    public HttpClient Http { get; }

    public async Task<(string IdToken, string PeerId)> SignInAsync()
    {
        using var response = await Http.PostAsync("anonymous-signin", null);
        var json = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        return ((string)json["id_token"]!, (string)json["username"]!);
    }

    /// <summary>Signs in, connects and registers a peer in the room; returns once the server confirmed the registration.</summary>
    public async Task<BenchPeer> JoinAsync(string roomId, string token, string role, JsonObject metadata)
    {
        var (idToken, peerId) = await SignInAsync();
        var peer = await BenchPeer.ConnectAsync(_webSocketUrl, peerId);
        await peer.SendAsync(new JsonObject
        {
            ["type"] = "register", ["peer_id"] = peerId, ["room_id"] = roomId, ["token"] = token,
            ["id_token"] = idToken, ["role"] = role, ["metadata"] = metadata,
        }.ToJsonString());
        // registered_auth lists every other peer's metadata: look at its head only, the client side is not what we measure.
        string head;
        do head = await peer.ReceiveHeadAsync(); while (head == "{\"type\":\"ping\"}");
        if (!head.StartsWith("{\"type\":\"registered_auth\"", StringComparison.Ordinal)) throw new InvalidOperationException("registration failed: " + head);
        return peer;
    }

    public void Dispose() => Http.Dispose();
}

/// <summary>The load the signaling benches put on a server, and how they read it.</summary>
public static class SignalingLoad
{
    /// <summary>
    /// Registers <paramref name="count"/> peers through <paramref name="join"/> (given each index) in parallel batches;
    /// every peer keeps draining its socket (pings) like a real one.
    /// </summary>
    public static async Task<List<BenchPeer>> RegisterAsync(int count, int batchSize, Func<int, Task<BenchPeer>> join)
    {
        var peers = new List<BenchPeer>(count);
        foreach (var batch in Enumerable.Range(0, count).Chunk(batchSize))
        {
            var joined = await Task.WhenAll(batch.Select(join));
            foreach (var peer in joined) peer.StartDraining();
            peers.AddRange(joined);
        }
        return peers;
    }

    /// <summary>A worker's metadata as sleap-RTC workers advertise it, varied by <paramref name="index"/> (GPU memory, status).</summary>
    public static JsonObject WorkerMetadata(int index) => new()
    {
        ["tags"] = new JsonArray("sleap-rtc", index % 2 == 0 ? "training-worker" : "inference-worker"),
        ["properties"] = new JsonObject
        {
            ["gpu_memory_mb"] = new[] { 8192, 12288, 24576, 49152, 81920 }[index % 5],
            ["gpu_model"] = "NVIDIA RTX A" + (4000 + index % 4 * 1000),
            ["sleap_version"] = "1.4.1",
            ["cuda_version"] = "12.4",
            ["hostname"] = "gpu-node-" + index,
            ["status"] = index % 10 == 0 ? "busy" : "available",
        },
    };

    public static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
}

/// <summary>
/// Small peer_messages relayed between pairs of peers as fast as the server forwards them, each sender keeping at most
/// a window of messages unanswered by its receiver; runs until disposed.
/// </summary>
public sealed class RelayLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _relayed;

    private RelayLoad() { }

    /// <summary>Messages that reached their receiver so far.</summary>
    public long Relayed => Interlocked.Read(ref _relayed);
    public TimeSpan Elapsed => _clock.Elapsed;

    public static RelayLoad Start(IEnumerable<(BenchPeer Sender, BenchPeer Receiver)> pairs, int window)
    {
        var load = new RelayLoad();
        foreach (var (sender, receiver) in pairs) load.Relay(sender, receiver, new SemaphoreSlim(window, window));
        return load;
    }

    private void Relay(BenchPeer sender, BenchPeer receiver, SemaphoreSlim window)
    {
        var message = new JsonObject
        {
            ["type"] = "peer_message", ["from_peer_id"] = sender.PeerId, ["to_peer_id"] = receiver.PeerId,
            ["payload"] = new JsonObject { ["app_message_type"] = "progress", ["epoch"] = 3, ["loss"] = 0.0123 },
        }.ToJsonString();
        _tasks.Add(Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                if (!await window.WaitAsync(TimeSpan.FromSeconds(5))) throw new TimeoutException("relay stalled");
                await sender.SendAsync(message);
            }
        }));
        _tasks.Add(Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var received = await receiver.ReceiveRawAsync(_stop.Token);
                if (received < 0) return;
                // Only relayed messages free a window slot; pings and any other server notice are not ours.
                if (!receiver.IsPeerMessage(received)) continue;
                Interlocked.Increment(ref _relayed);
                window.Release();
            }
        }));
    }

    /// <summary>Stops the senders and receivers (up to 5 s for them to notice).</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or WebSocketException) { }
        _stop.Dispose();
    }
}
