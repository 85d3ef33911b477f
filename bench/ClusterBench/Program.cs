using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Bench.Common;
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
    Row("server CPU per relayed message (all processes)", f => $"{f.RelayCpuMicroseconds:F1} µs", "");
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
    var peers = await SignalingLoad.RegisterAsync(WorkersInRoom, 50, i => instances[i % n].JoinAsync(room, "worker", SignalingLoad.WorkerMetadata(i)));
    var client = await instances[0].JoinAsync(room, "client", new JsonObject());
    // The churning member is a matching worker on another instance: each change reaches the client's instance through
    // Redis, and a sample counts only once the answer shows the change (a stale, cached answer is asked again).
    var churn = await instances[n - 1].JoinAsync(room, "worker", SignalingLoad.WorkerMetadata(1));
    var discover = new JsonObject
    {
        ["type"] = "discover_peers", ["from_peer_id"] = client.PeerId,
        ["filters"] = JsonNode.Parse("""{"role": "worker", "tags": ["sleap-rtc"], "properties": {"status": "available", "gpu_memory_mb": {"$gte": 12288}}}"""),
    }.ToJsonString();
    var staleAnswers = 0;
    async Task<List<double>> DiscoverAsync(bool invalidate)
    {
        var samples = new List<double>();
        for (var i = 0; i < DiscoverSamples + 50; i++)
        {
            var mark = $"\"poll\":{i}";
            if (invalidate) await churn.UpdateMetadataAsync(i);
            while (true)
            {
                var (elapsed, length) = await client.DiscoverAsync(discover);
                if (invalidate && !client.LastMessageContains(length, mark))
                {
                    staleAnswers++;
                    continue;
                }
                if (i >= 50) samples.Add(elapsed);
                break;
            }
        }
        samples.Sort();
        return samples;
    }
    var changed = await DiscoverAsync(invalidate: true);
    var unchanged = await DiscoverAsync(invalidate: false);
    figures.DiscoverChangedP50 = SignalingLoad.Percentile(changed, 0.5);
    figures.DiscoverChangedP99 = SignalingLoad.Percentile(changed, 0.99);
    figures.DiscoverUnchangedP99 = SignalingLoad.Percentile(unchanged, 0.99);
    Console.WriteLine($"discover_peers (800 of 1,000 workers match; {staleAnswers} answers asked again as they predated the change): room changed p50 {figures.DiscoverChangedP50:F2} ms p99 {figures.DiscoverChangedP99:F2} ms; unchanged p50 {SignalingLoad.Percentile(unchanged, 0.5):F2} ms p99 {figures.DiscoverUnchangedP99:F2} ms");

    // 2. Relays: sender on instance i, receiver on instance i+1 (the same server for the single one).
    var senders = new List<BenchPeer>();
    var receivers = new List<BenchPeer>();
    for (var i = 0; i < RelayPairs; i++)
    {
        senders.Add(await instances[i % n].JoinAsync(room, "client", new JsonObject()));
        receivers.Add(await instances[(i + 1) % n].JoinAsync(room, "client", new JsonObject()));
    }
    // CPU the servers (and Redis) spend per relayed message: less sensitive to a busy box than the rate.
    double ServerCpuSeconds() => instances.Sum(i => i.CpuSeconds()) + (sharedRedis?.CpuSeconds() ?? 0);
    var cpuBefore = ServerCpuSeconds();
    await using (var relay = RelayLoad.Start(senders.Zip(receivers), RelayWindow))
    {
        await Task.Delay(relayDuration);
        var count = relay.Relayed;
        var seconds = relay.Elapsed.TotalSeconds;
        figures.RelayPerSecond = count / seconds;
        figures.RelayCpuMicroseconds = (ServerCpuSeconds() - cpuBefore) * 1e6 / Math.Max(1, count);
        Console.WriteLine($"peer_message relay: {count:N0} in {seconds:F1} s over {RelayPairs} pairs = {figures.RelayPerSecond:N0}/s, server CPU {figures.RelayCpuMicroseconds:F1} µs per message");
    }
    foreach (var peer in peers.Concat(senders).Concat(receivers).Append(client).Append(churn)) peer.Abort();
    await Task.Delay(2000);

    // 3. 10,000 peers across the instances (100 rooms), held while every server answers its pings.
    var rooms = new List<SleapRtc.Signaling.Store.RoomRecord>();
    for (var i = 0; i < 100; i++) rooms.Add(await instances[i % n].CreateRoomAsync($"hold-{i}"));
    var register = Stopwatch.StartNew();
    var held = await SignalingLoad.RegisterAsync(heldPeers, 100,
        i => instances[i % n].JoinAsync(rooms[i % rooms.Count], i % 10 == 0 ? "client" : "worker", SignalingLoad.WorkerMetadata(i)));
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
    public double DiscoverChangedP50, DiscoverChangedP99, DiscoverUnchangedP99, RelayPerSecond, RelayCpuMicroseconds, RegisterSeconds;
    public int StillConnected;
    public List<double> RssMb = [];
    public double? RedisRssMb;
}

/// <summary>One server process (a child of this bench).</summary>
sealed class Instance : IDisposable
{
    private readonly Process _process;
    private readonly SignalingEndpoint _endpoint;

    private Instance(Process process, int port)
    {
        _process = process;
        _endpoint = new SignalingEndpoint(port);
    }

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

    public double RssMb() => ProcFs.RssMb(_process.Id);

    public double CpuSeconds() => ProcFs.CpuSeconds(_process.Id);

    public async Task<SleapRtc.Signaling.Store.RoomRecord> CreateRoomAsync(string name)
    {
        var (idToken, _) = await _endpoint.SignInAsync();
        // StringContent has a length: the server answers a chunked body 411.
        using var request = new HttpRequestMessage(HttpMethod.Post, "create-room") { Content = new StringContent(new JsonObject { ["name"] = name }.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idToken);
        using var response = await _endpoint.Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var json = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        return new((string)json["room_id"]!, (string)json["token"]!, name, null, DateTimeOffset.UtcNow, null);
    }

    public Task<BenchPeer> JoinAsync(SleapRtc.Signaling.Store.RoomRecord room, string role, JsonObject metadata) =>
        _endpoint.JoinAsync(room.RoomId, room.Token, role, metadata);

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _endpoint.Dispose();
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

    public double RssMb() => ProcFs.RssMb(_process.Id);

    public double CpuSeconds() => ProcFs.CpuSeconds(_process.Id);

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

/// <summary>Another process's resident memory and CPU time, from /proc (Linux).</summary>
static class ProcFs
{
    public static double RssMb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return 0;
    }

    /// <summary>utime + stime (fields 14 and 15 of /proc/pid/stat, after the command name in parentheses), at 100 ticks a second.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
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
