using System.Diagnostics;
using System.Text.Json.Nodes;
using SleapRtc.Bench.Common;
using SleapRtc.Signaling.Server;

// Registers 1,000 workers in one room and 1,000 in other rooms on an in-process server over loopback,
// then measures discover_peers round trips and peer_message relay throughput. Prints figures and targets.

const int WorkersInRoom = 1000;
const int WorkersElsewhere = 1000;
const int OtherRooms = 10;
const int DiscoverSamples = 500;
const int RelayPairs = 8;
const int RelayWindow = 512;
var relayDuration = TimeSpan.FromSeconds(4);
var total = Stopwatch.StartNew();

await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
{
    Port = 0,
    ListenAddress = "127.0.0.1",
    DatabasePath = ":memory:",
    EnableStun = false,
});
using var endpoint = new SignalingEndpoint(server.Port);

var mainRoom = await server.CreateRoomAsync("bench-main", null);
var otherRooms = new List<SleapRtc.Signaling.Store.RoomRecord>();
for (var i = 0; i < OtherRooms; i++) otherRooms.Add(await server.CreateRoomAsync($"bench-{i}", null));

Task<BenchPeer> JoinAsync(SleapRtc.Signaling.Store.RoomRecord room, string role, JsonObject metadata) => endpoint.JoinAsync(room.RoomId, room.Token, role, metadata);

// Here workers also advertise capacity, models and job types: this bench's figures were measured with them.
JsonObject WorkerMetadata(int index)
{
    var metadata = SignalingLoad.WorkerMetadata(index);
    var properties = metadata["properties"]!.AsObject();
    properties["max_concurrent_jobs"] = 1;
    properties["supported_models"] = new JsonArray("base", "centroid", "topdown");
    properties["supported_job_types"] = new JsonArray("training", "inference");
    return metadata;
}

var registerTimer = Stopwatch.StartNew();
var peers = await SignalingLoad.RegisterAsync(WorkersInRoom + WorkersElsewhere, 50,
    i => JoinAsync(i < WorkersInRoom ? mainRoom : otherRooms[i % OtherRooms], "worker", WorkerMetadata(i)));
registerTimer.Stop();
Console.WriteLine($"Registered {WorkersInRoom} workers in room {mainRoom.RoomId} and {WorkersElsewhere} in {OtherRooms} other rooms in {registerTimer.Elapsed.TotalSeconds:F1} s ({server.Peers.Count} live peers)");

// discover_peers round trips from a client in the main room.
var client = await JoinAsync(mainRoom, "client", new JsonObject());
var discover = new JsonObject
{
    ["type"] = "discover_peers",
    ["from_peer_id"] = client.PeerId,
    ["filters"] = JsonNode.Parse(Environment.GetEnvironmentVariable("BENCH_FILTER") ?? """{"role": "worker", "tags": ["sleap-rtc"], "properties": {"status": "available", "gpu_memory_mb": {"$gte": 12288}}}"""),
}.ToJsonString();
var churn = await JoinAsync(mainRoom, "client", new JsonObject());

// Measures discover round trips; with invalidate, another member's metadata changes before each poll,
// so the server cannot reuse its previous answer and filters all 1,000 workers again.
async Task<(List<double> Samples, int Matched, double CpuMs, string Gcs)> MeasureDiscoverAsync(bool invalidate)
{
    var samples = new List<double>();
    var matched = 0;
    var cpu = TimeSpan.Zero;
    var cpuBefore = TimeSpan.Zero;
    var gcBefore = (0, 0, 0);
    for (var i = 0; i < DiscoverSamples + 50; i++)
    {
        if (invalidate)
        {
            var cpuPause = Process.GetCurrentProcess().TotalProcessorTime;
            await churn.UpdateMetadataAsync(i);
            cpuBefore += Process.GetCurrentProcess().TotalProcessorTime - cpuPause;
        }
        var (elapsed, length) = await client.DiscoverAsync(discover);
        if (i >= 50) samples.Add(elapsed); // the first 50 warm the JIT and caches
        if (i == 49)
        {
            cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            gcBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        }
        matched = client.LastPeerListCount(length);
    }
    cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
    samples.Sort();
    return (samples, matched, cpu.TotalMilliseconds / DiscoverSamples,
        $"GCs gen0/1/2 {GC.CollectionCount(0) - gcBefore.Item1}/{GC.CollectionCount(1) - gcBefore.Item2}/{GC.CollectionCount(2) - gcBefore.Item3}");
}

var changed = await MeasureDiscoverAsync(invalidate: true);
var unchanged = await MeasureDiscoverAsync(invalidate: false);

// The same query straight against the registry (no sockets): the server's own share of a round trip.
var filters = JsonNode.Parse(discover)!["filters"]!.AsObject();
var inProcess = Stopwatch.StartNew();
var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
for (var i = 0; i < 200; i++) server.Peers.Discover(mainRoom.RoomId, client.PeerId, filters, out _);
var registryMs = inProcess.Elapsed.TotalMilliseconds / 200;
var registryCpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / 200;
Console.WriteLine($"registry filter alone: {registryMs:F2} ms wall, {registryCpuMs:F2} ms CPU per query (machine load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
foreach (var (name, run) in new[] { ("room changed before each poll", changed), ("room unchanged between polls", unchanged) })
    Console.WriteLine($"discover_peers, {name}: {run.Samples.Count} round trips, {run.Matched} of {WorkersInRoom} workers per answer: p50 {SignalingLoad.Percentile(run.Samples, 0.5):F2} ms, p99 {SignalingLoad.Percentile(run.Samples, 0.99):F2} ms, max {run.Samples[^1]:F2} ms, CPU {run.CpuMs:F2} ms per round trip (server + client), {run.Gcs}");

// Relay throughput: pairs of peers in the main room exchanging small peer_messages with a bounded window.
var senders = new List<BenchPeer>();
var receivers = new List<BenchPeer>();
for (var i = 0; i < RelayPairs; i++)
{
    senders.Add(await JoinAsync(mainRoom, "client", new JsonObject()));
    receivers.Add(await JoinAsync(mainRoom, "client", new JsonObject()));
}
long relayedCount;
double relaySeconds;
await using (var relay = RelayLoad.Start(senders.Zip(receivers), RelayWindow))
{
    await Task.Delay(relayDuration);
    relayedCount = relay.Relayed;
    relaySeconds = relay.Elapsed.TotalSeconds;
}
var perSecond = relayedCount / relaySeconds;
Console.WriteLine($"peer_message relay: {relayedCount:N0} messages in {relaySeconds:F1} s over {RelayPairs} pairs = {perSecond:N0} msgs/s");

Console.WriteLine();
Console.WriteLine($"{"figure",-38}{"measured",14}{"target",14}  result");
foreach (var (name, run) in new[] { ("discover p99, room changed each poll", changed), ("discover p99, room unchanged", unchanged) })
{
    var p99 = SignalingLoad.Percentile(run.Samples, 0.99);
    Console.WriteLine($"{name,-38}{p99,11:F2} ms{"< 20 ms",14}  {(p99 < 20 ? "PASS" : "MISS")}");
    Console.WriteLine($"{"  p50",-38}{SignalingLoad.Percentile(run.Samples, 0.5),11:F2} ms");
}
Console.WriteLine($"{"relayed messages per second",-38}{perSecond,14:N0}{">= 20,000",14}  {(perSecond >= 20_000 ? "PASS" : "MISS")}");
Console.WriteLine($"{"registration of 2,000 workers",-38}{registerTimer.Elapsed.TotalSeconds,12:F1} s");
Console.WriteLine($"total run {total.Elapsed.TotalSeconds:F1} s on {Environment.ProcessorCount} cores");

foreach (var peer in peers.Concat(senders).Concat(receivers).Append(client).Append(churn)) peer.Abort();
return 0;
