using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using SleapRtc.Bench.Common;
using SleapRtc.Signaling.Client;
using SleapRtc.Soak;

// The peers of a signaling instance killed with SIGKILL: how long until each is registered again (same peer id) on
// another instance of its server list, next to the same peers of a single server killed and restarted on its port.
// Instances are child processes (SoakBench's "server" mode) sharing a redis-server the bench starts (--sqlite: one
// database file instead); peers are SignalingClients with the default reconnect settings (what workers and clients
// use). Target: p99 < 10 s for the instance failover.
//   dotnet run -c Release --project bench/FailoverBench -- [--peers 200] [--rounds 3] [--sqlite]
int peers = 200, rounds = 3;
var useRedis = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--peers": peers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--sqlite": useRedis = false; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

var root = Path.Combine(Path.GetTempPath(), "failover-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(root);
using var redis = useRedis ? StartRedis() : null;
var redisUrl = redis is null ? null : $"redis://127.0.0.1:{redis.StartInfo.ArgumentList[1]}";
var failover = new List<double>();
var restart = new List<double>();
try
{
    for (var round = 1; round <= rounds; round++)
    {
        failover.AddRange(await KilledInstanceAsync(round));
        restart.AddRange(await RestartedServerAsync(round));
        Console.WriteLine($"round {round}: failover p99 {Percentile(failover, 0.99):F2} s, restart p99 {Percentile(restart, 0.99):F2} s");
    }
}
finally
{
    try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    if (redis is not null) { redis.Kill(); redis.WaitForExit(); }
}

Console.WriteLine();
Console.WriteLine($"{peers} peers x {rounds} rounds, instances sharing {(useRedis ? "a redis-server" : "one SQLite file")}, default reconnect settings (first round within 1 s, jittered)");
Console.WriteLine("| scenario | p50 | p99 | max |");
Console.WriteLine("|---|---|---|---|");
Console.WriteLine($"| instance killed, peers fail over to another | {Percentile(failover, 0.5):F2} s | {Percentile(failover, 0.99):F2} s | {failover.Max():F2} s |");
Console.WriteLine($"| single server killed and restarted at once | {Percentile(restart, 0.5):F2} s | {Percentile(restart, 0.99):F2} s | {restart.Max():F2} s |");
var ok = Percentile(failover, 0.99) < 10;
Console.WriteLine($"failover p99 < 10 s: {(ok ? "met" : "NOT met")}");
return ok ? 0 : 1;

async Task<List<double>> KilledInstanceAsync(int round)
{
    var (database, roomId, token) = Room(round, "instances");
    using var doomed = Instance("instance A", "0", database, roomId, token);
    using var survivor = Instance("instance B", "0", database, roomId, token);
    var servers = $"ws://127.0.0.1:{doomed.Ready},ws://127.0.0.1:{survivor.Ready}";
    var times = await MeasureAsync(servers, roomId, token, doomed.KillHard);
    if (Environment.GetEnvironmentVariable("FAILOVER_BENCH_TRACE") is "1") Console.Error.WriteLine(survivor.Transcript());
    survivor.Stop(TimeSpan.FromSeconds(10));
    return times;
}

async Task<List<double>> RestartedServerAsync(int round)
{
    var (database, roomId, token) = Room(round, "single");
    var first = Instance("server", "0", database, roomId, token);
    var port = first.Ready;
    ChildProcess? second = null;
    try
    {
        return await MeasureAsync($"ws://127.0.0.1:{port}", roomId, token, () =>
        {
            first.KillHard();
            second = Instance("server again", port, database, roomId, token);
        });
    }
    finally
    {
        first.Dispose();
        second?.Stop(TimeSpan.FromSeconds(10));
        second?.Dispose();
    }
}

ChildProcess Instance(string name, string port, string database, string roomId, string token) => redisUrl is null
    ? SoakChildProcess.Start(name, null, "server", port, database, roomId, token)
    : SoakChildProcess.Start(name, null, "server", port, database, roomId, token, redisUrl);

// A private redis-server on a free loopback port, without persistence (gone with the bench).
static Process StartRedis()
{
    var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
    listener.Start();
    var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    listener.Stop();
    var start = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
    foreach (var arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        start.ArgumentList.Add(arg);
    var process = Process.Start(start)!;
    process.OutputDataReceived += (_, _) => { };
    process.BeginOutputReadLine();
    for (var tries = 0; tries < 100; tries++)
    {
        try
        {
            using var probe = new System.Net.Sockets.TcpClient();
            probe.Connect(System.Net.IPAddress.Loopback, port);
            break;
        }
        catch (System.Net.Sockets.SocketException) { Thread.Sleep(50); }
    }
    AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { process.Kill(); } catch (InvalidOperationException) { } };
    return process;
}

(string Database, string RoomId, string Token) Room(int round, string name) =>
    (Path.Combine(root, $"{name}-{round}.db"), "bench" + Guid.NewGuid().ToString("N")[..8], "tok" + Guid.NewGuid().ToString("N"));

// Connects the peers, runs the fault, and returns each peer's seconds from the fault to its re-registration.
async Task<List<double>> MeasureAsync(string servers, string roomId, string token, Action fault)
{
    var clients = new List<SignalingClient>();
    var back = new ConcurrentBag<double>();
    var clock = new Stopwatch();
    var allBack = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    try
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, peers), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
        {
            var client = new SignalingClient(servers, Environment.GetEnvironmentVariable("FAILOVER_BENCH_TRACE") is "1" && i == 0
                ? new SignalingClientOptions { Log = new SleapRtc.Protocol.Logging.TextWriterLogSink(Console.Error, SleapRtc.Protocol.Logging.LogLevel.Debug) }
                : null);
            lock (clients) clients.Add(client);
            var signIn = await client.AnonymousSignInAsync(null, ct);
            await client.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, i % 4 == 0 ? "client" : "worker"), ct);
            var peerId = client.PeerId;
            client.Reconnected += result =>
            {
                if (result.PeerId != peerId) Console.Error.WriteLine($"peer {peerId} came back as {result.PeerId}");
                back.Add(clock.Elapsed.TotalSeconds);
                if (back.Count == peers) allBack.TrySetResult();
            };
        });
        clock.Start();
        if (Environment.GetEnvironmentVariable("FAILOVER_BENCH_TRACE") is "1") Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} fault");
        fault();
        if (Environment.GetEnvironmentVariable("FAILOVER_BENCH_TRACE") is "1") Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} fault done");
        try { await allBack.Task.WaitAsync(TimeSpan.FromSeconds(60)); }
        catch (TimeoutException)
        {
            Console.Error.WriteLine($"only {back.Count} of {peers} peers were back after 60 s; counted as 60 s");
            return back.Concat(Enumerable.Repeat(60.0, peers - back.Count)).ToList();
        }
        return back.ToList();
    }
    finally
    {
        await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
    }
}

static double Percentile(List<double> values, double p)
{
    var sorted = values.OrderBy(v => v).ToList();
    return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
