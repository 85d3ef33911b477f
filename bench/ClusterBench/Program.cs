using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Signaling.Server;

// Three signaling instances sharing one redis-server, each in its own process, side by side with one single server
// (also its own process), measured by the same client code in this process over loopback:
//   1. discover_peers round trips with 1,000 workers in one room (workers spread over the instances);
//   2. peer_message relays between peers connected to different instances;
//   3. 10,000 peers connected across the instances, held for a minute, with the RSS of every server process.
// `--instance <redis-url|none>` is the child mode: one server on a free port until its stdin closes.

if (args.Length >= 2 && args[0] == "--instance") return await RunInstanceAsync(args[1]);

const int WorkersInRoom = 1000;
const int DiscoverSamples = 500;
const int RelayPairs = 8;
const int RelayWindow = 512;
var heldPeers = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PEERS"), out var p) ? p : 10_000;
var hold = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("BENCH_HOLD_SECONDS"), out var h) ? h : 60);
var relayDuration = TimeSpan.FromSeconds(4);
var total = Stopwatch.StartNew();
RaiseOpenFileLimit(2 * heldPeers + 1024);

using var redis = RedisProcess.Start();
var setups = new List<(string Name, List<Instance> Instances)>();
try
{
    setups.Add(("single server", [await Instance.StartAsync("none")]));
    var cluster = new List<Instance>();
    for (var i = 0; i < 3; i++) cluster.Add(await Instance.StartAsync(redis.Url));
    setups.Add(("3 instances + Redis", cluster));

    var results = new List<Figures>();
    foreach (var (name, instances) in setups)
    {
        Console.WriteLine($"== {name} ==");
        results.Add(await MeasureAsync(name, instances, name.StartsWith("3") ? redis : null));
    }

    Console.WriteLine();
    Console.WriteLine($"{"figure",-46}{results[0].Name,16}{results[1].Name,22}  target");
    void Row(string label, Func<Figures, string> value, string target) =>
        Console.WriteLine($"{label,-46}{value(results[0]),16}{value(results[1]),22}  {target}");
    Row("discover p99, room changed before each poll", f => $"{f.DiscoverChangedP99:F2} ms", "< 20 ms");
    Row("discover p50, room changed before each poll", f => $"{f.DiscoverChangedP50:F2} ms", "");
    Row("discover p99, room unchanged", f => $"{f.DiscoverUnchangedP99:F2} ms", "< 20 ms");
    Row("relayed peer_messages/s (across instances)", f => $"{f.RelayPerSecond:N0}", ">= 20,000");
    Row($"registering {heldPeers:N0} peers", f => $"{f.RegisterSeconds:F1} s", "");
    Row($"peers still connected after {hold.TotalSeconds:0} s", f => $"{f.StillConnected:N0}", $"{heldPeers:N0}");
    Row("RSS per server process, MB", f => string.Join(" / ", f.RssMb.Select(r => r.ToString("F0"))), "");
    Row("Redis RSS, MB", f => f.RedisRssMb is { } r ? r.ToString("F0") : "-", "");
    Console.WriteLine($"total run {total.Elapsed.TotalSeconds:F0} s on {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    return 0;
}
finally
{
    foreach (var instance in setups.SelectMany(s => s.Instances)) instance.Dispose();
}

async Task<Figures> MeasureAsync(string name, List<Instance> instances, RedisProcess? sharedRedis)
{
    var figures = new Figures { Name = name };
    var n = instances.Count;
    var room = await instances[0].CreateRoomAsync("bench-main");

    // 1. discover_peers with 1,000 workers in the room, registered through the instances in turn.
    var peers = new List<BenchPeer>();
    foreach (var batch in Enumerable.Range(0, WorkersInRoom).Chunk(50))
    {
        var joined = await Task.WhenAll(batch.Select(i => instances[i % n].JoinAsync(room, "worker", WorkerMetadata(i))));
        foreach (var peer in joined) peer.StartDraining();
        peers.AddRange(joined);
    }
    var client = await instances[0].JoinAsync(room, "client", new JsonObject());
    // The churning member sits on another instance: each change reaches the client's instance through Redis.
    var churn = await instances[n - 1].JoinAsync(room, "client", new JsonObject());
    var discover = new JsonObject
    {
        ["type"] = "discover_peers", ["from_peer_id"] = client.PeerId,
        ["filters"] = JsonNode.Parse("""{"role": "worker", "tags": ["sleap-rtc"], "properties": {"status": "available", "gpu_memory_mb": {"$gte": 12288}}}"""),
    }.ToJsonString();
    async Task<List<double>> DiscoverAsync(bool invalidate)
    {
        var samples = new List<double>();
        for (var i = 0; i < DiscoverSamples + 50; i++)
        {
            if (invalidate)
            {
                await churn.SendAsync($$"""{"type":"update_metadata","peer_id":"{{churn.PeerId}}","metadata":{"properties":{"poll":{{i}} } } }""");
                string ack;
                do ack = await churn.ReceiveHeadAsync(); while (!ack.StartsWith("{\"type\":\"metadata_updated\"", StringComparison.Ordinal));
                // Wait until the client's instance has the change (its answer would otherwise be the cached one).
                await Task.Delay(1);
            }
            var started = Stopwatch.GetTimestamp();
            await client.SendAsync(discover);
            string head;
            do head = await client.ReceiveHeadAsync(); while (!head.StartsWith("{\"type\":\"peer_list\"", StringComparison.Ordinal));
            if (i >= 50) samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        samples.Sort();
        return samples;
    }
    var changed = await DiscoverAsync(invalidate: true);
    var unchanged = await DiscoverAsync(invalidate: false);
    figures.DiscoverChangedP50 = Percentile(changed, 0.5);
    figures.DiscoverChangedP99 = Percentile(changed, 0.99);
    figures.DiscoverUnchangedP99 = Percentile(unchanged, 0.99);
    Console.WriteLine($"discover_peers (800 of 1,000 workers match): room changed p50 {figures.DiscoverChangedP50:F2} ms p99 {figures.DiscoverChangedP99:F2} ms; unchanged p50 {Percentile(unchanged, 0.5):F2} ms p99 {figures.DiscoverUnchangedP99:F2} ms");

    // 2. Relays: sender on instance i, receiver on instance i+1 (the same server for the single one).
    var senders = new List<BenchPeer>();
    var receivers = new List<BenchPeer>();
    for (var i = 0; i < RelayPairs; i++)
    {
        senders.Add(await instances[i % n].JoinAsync(room, "client", new JsonObject()));
        receivers.Add(await instances[(i + 1) % n].JoinAsync(room, "client", new JsonObject()));
    }
    var relayed = 0L;
    using (var stopRelay = new CancellationTokenSource())
    {
        var relayTimer = Stopwatch.StartNew();
        var tasks = new List<Task>();
        for (var i = 0; i < RelayPairs; i++)
        {
            var (sender, receiver) = (senders[i], receivers[i]);
            var window = new SemaphoreSlim(RelayWindow, RelayWindow);
            var message = new JsonObject
            {
                ["type"] = "peer_message", ["from_peer_id"] = sender.PeerId, ["to_peer_id"] = receiver.PeerId,
                ["payload"] = new JsonObject { ["app_message_type"] = "progress", ["epoch"] = 3, ["loss"] = 0.0123 },
            }.ToJsonString();
            tasks.Add(Task.Run(async () =>
            {
                while (!stopRelay.IsCancellationRequested)
                {
                    if (!await window.WaitAsync(TimeSpan.FromSeconds(5))) throw new TimeoutException("relay stalled");
                    await sender.SendAsync(message);
                }
            }));
            tasks.Add(Task.Run(async () =>
            {
                while (!stopRelay.IsCancellationRequested)
                {
                    var received = await receiver.ReceiveRawAsync(stopRelay.Token);
                    if (received < 0) return;
                    if (!receiver.IsPeerMessage(received)) continue;
                    Interlocked.Increment(ref relayed);
                    window.Release();
                }
            }));
        }
        await Task.Delay(relayDuration);
        var count = Interlocked.Read(ref relayed);
        figures.RelayPerSecond = count / relayTimer.Elapsed.TotalSeconds;
        stopRelay.Cancel();
        try { await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or System.Net.WebSockets.WebSocketException) { }
        Console.WriteLine($"peer_message relay: {count:N0} in {relayTimer.Elapsed.TotalSeconds:F1} s over {RelayPairs} pairs = {figures.RelayPerSecond:N0}/s");
    }
    foreach (var peer in peers.Concat(senders).Concat(receivers).Append(client).Append(churn)) peer.Abort();
    await Task.Delay(2000);

    // 3. 10,000 peers across the instances (100 rooms), held while every server answers its pings.
    var rooms = new List<SleapRtc.Signaling.Store.RoomRecord>();
    for (var i = 0; i < 100; i++) rooms.Add(await instances[i % n].CreateRoomAsync($"hold-{i}"));
    var held = new List<BenchPeer>(heldPeers);
    var register = Stopwatch.StartNew();
    foreach (var batch in Enumerable.Range(0, heldPeers).Chunk(100))
    {
        var joined = await Task.WhenAll(batch.Select(i => instances[i % n].JoinAsync(rooms[i % rooms.Count], i % 10 == 0 ? "client" : "worker", WorkerMetadata(i))));
        foreach (var peer in joined) peer.StartDraining();
        held.AddRange(joined);
    }
    figures.RegisterSeconds = register.Elapsed.TotalSeconds;
    Console.WriteLine($"registered {held.Count:N0} peers in {figures.RegisterSeconds:F1} s; holding {hold.TotalSeconds:0} s");
    var holdTimer = Stopwatch.StartNew();
    while (holdTimer.Elapsed < hold)
    {
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(15, Math.Max(1, (hold - holdTimer.Elapsed).TotalSeconds))));
        Console.WriteLine($"  {holdTimer.Elapsed.TotalSeconds,3:F0} s: {held.Count(b => b.IsOpen):N0} open, RSS {string.Join(" / ", instances.Select(i => i.RssMb().ToString("F0")))} MB");
    }
    figures.StillConnected = held.Count(b => b.IsOpen);
    figures.RssMb = instances.Select(i => i.RssMb()).ToList();
    figures.RedisRssMb = sharedRedis?.RssMb();
    foreach (var peer in held) peer.Abort();
    await Task.Delay(2000);
    return figures;
}

static JsonObject WorkerMetadata(int index) => new()
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

static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];

static async Task<int> RunInstanceAsync(string redisUrl)
{
    var options = new SignalingServerOptions { Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", EnableStun = false };
    if (redisUrl != "none") options.Redis = redisUrl;
    await using var server = await SignalingServerHost.StartAsync(options);
    Console.WriteLine($"READY {server.Port}");
    // Runs until the parent closes stdin (or dies).
    while (await Console.In.ReadLineAsync() is not null) { }
    return 0;
}

/// <summary>The bench process holds one socket per peer: raise its soft limit of open files up to the hard limit.</summary>
static void RaiseOpenFileLimit(int wanted)
{
    if (!OperatingSystem.IsLinux()) return;
    const int RlimitNofile = 7;
    if (Native.getrlimit(RlimitNofile, out var limit) != 0) return;
    var target = Math.Min((ulong)wanted, limit.Max);
    if (limit.Current >= target) return;
    limit.Current = target;
    if (Native.setrlimit(RlimitNofile, ref limit) != 0)
        Console.WriteLine($"could not raise the open-file limit to {target} (ulimit -n); the 10,000-peer step may fail");
}

sealed class Figures
{
    public required string Name;
    public double DiscoverChangedP50, DiscoverChangedP99, DiscoverUnchangedP99, RelayPerSecond, RegisterSeconds;
    public int StillConnected;
    public List<double> RssMb = [];
    public double? RedisRssMb;
}

/// <summary>One server process (a child of this bench).</summary>
sealed class Instance : IDisposable
{
    private readonly Process _process;
    private readonly HttpClient _http;

    private Instance(Process process, int port)
    {
        _process = process;
        Port = port;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public int Port { get; }

    public static async Task<Instance> StartAsync(string redisUrl)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        // `dotnet ClusterBench.dll` runs as the dotnet host: give it the assembly again.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") info.ArgumentList.Add(typeof(Instance).Assembly.Location);
        info.ArgumentList.Add("--instance");
        info.ArgumentList.Add(redisUrl);
        var process = Process.Start(info)!;
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line is null || !line.StartsWith("READY ", StringComparison.Ordinal)) throw new InvalidOperationException("instance did not start: " + line);
        return new Instance(process, int.Parse(line[6..]));
    }

    public double RssMb()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return 0;
    }

    private async Task<(string IdToken, string PeerId)> SignInAsync()
    {
        using var response = await _http.PostAsync("anonymous-signin", null);
        var json = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        return ((string)json["id_token"]!, (string)json["username"]!);
    }

    public async Task<SleapRtc.Signaling.Store.RoomRecord> CreateRoomAsync(string name)
    {
        var (idToken, _) = await SignInAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "create-room") { Content = JsonContent.Create(new { name }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idToken);
        using var response = await _http.SendAsync(request);
        var json = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        return new((string)json["room_id"]!, (string)json["token"]!, name, null, DateTimeOffset.UtcNow, null);
    }

    public async Task<BenchPeer> JoinAsync(SleapRtc.Signaling.Store.RoomRecord room, string role, JsonObject metadata)
    {
        var (idToken, peerId) = await SignInAsync();
        var peer = await BenchPeer.ConnectAsync(new Uri($"ws://127.0.0.1:{Port}/"), peerId);
        await peer.SendAsync(new JsonObject
        {
            ["type"] = "register", ["peer_id"] = peerId, ["room_id"] = room.RoomId, ["token"] = room.Token,
            ["id_token"] = idToken, ["role"] = role, ["metadata"] = metadata,
        }.ToJsonString());
        string head;
        do head = await peer.ReceiveHeadAsync(); while (head == "{\"type\":\"ping\"}");
        if (!head.StartsWith("{\"type\":\"registered_auth\"", StringComparison.Ordinal)) throw new InvalidOperationException("registration failed: " + head);
        return peer;
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _http.Dispose();
    }
}

/// <summary>A redis-server of its own on a free loopback port, without persistence.</summary>
sealed class RedisProcess : IDisposable
{
    private readonly Process _process;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }
    public string Url => $"redis://127.0.0.1:{Port}";

    public static RedisProcess Start()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var info = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning", "--maxclients", "1000" })
            info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start (is it installed?)");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var probe = new TcpClient("127.0.0.1", port);
                return new RedisProcess(process, port);
            }
            catch (SocketException) { Thread.Sleep(50); }
        }
        throw new TimeoutException("redis-server did not listen within 10 s");
    }

    public double RssMb()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return 0;
    }

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

static class Native
{
    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [DllImport("libc", SetLastError = true)]
    public static extern int getrlimit(int resource, out RLimit limit);

    [DllImport("libc", SetLastError = true)]
    public static extern int setrlimit(int resource, ref RLimit limit);
}
