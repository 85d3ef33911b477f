using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;

// The room job queue under load: 1,000 tickets, 20 workers that finish each job at once (a 0 s stand-in) and turn
// available again, over loopback against the real server with its real SQLite file. Measures tickets handed out per
// second, the time from a worker turning available to the assignment push reaching the submitter, and to the submitter's
// offer reaching the worker: the offer is the upload's first message on the wire (the "next upload starting").
//
// What a submitter does once it hears queue_assigned is one step, IAssignmentFollowUp: here the signaling part only
// (the offer that ends the assignment timeout, and the job id the worker would learn from the hello). The second
// phase (EndToEnd.cs) runs the real thing: our worker host and one real queued submission per ticket, over WebRTC,
// and measures a worker turning available → its next upload starting.

var tickets = ArgInt("--tickets", 1000);
var workerCount = ArgInt("--workers", 20);
var database = Path.Combine(Path.GetTempPath(), $"sleaprtc-queuebench-{Guid.NewGuid():N}.db");
Console.WriteLine($"load average: {LoadAverage()}");
Console.WriteLine($"{tickets} tickets, {workerCount} workers, database {database}");

var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
{
    Port = 0, ListenAddress = "127.0.0.1", DatabasePath = database, EnableStun = false,
    Jobs = { PositionPushDelay = TimeSpan.FromMilliseconds(ArgInt("--position-push-ms", 200)) },
});
var url = $"ws://127.0.0.1:{server.Port}";
var options = new SignalingClientOptions { RequestTimeout = TimeSpan.FromSeconds(30) };
SleapRtc.Room room;
await using (var admin = new SignalingClient(url, options)) room = await admin.CreateRoomAsync("queue-bench");

async Task<SignalingClient> JoinAsync(string role, JsonObject? metadata)
{
    var peer = new SignalingClient(url, options);
    var signIn = await peer.AnonymousSignInAsync();
    await peer.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, role, metadata));
    return peer;
}

var submitter = await JoinAsync("client", null);
var workers = new List<SignalingClient>();
for (var i = 0; i < workerCount; i++)
{
    workers.Add(await JoinAsync("worker", new JsonObject
    {
        ["tags"] = new JsonArray("sleap-rtc"),
        ["properties"] = new JsonObject { ["status"] = "busy", ["gpu_memory_mb"] = 24576, ["sleaprtc_ext"] = 1 },
    }));
}

// Every ticket queued first (workers busy), so the hand-out rate is the queue's, not the submit rate.
var submitTimer = Stopwatch.StartNew();
for (var i = 0; i < tickets; i++)
{
    await submitter.SubmitTicketAsync(new JobRecord
    {
        JobId = $"job_{Guid.NewGuid():N}"[..16], PackageName = $"bench{i}.zip", Priority = i % 3, PackageBytes = 1 << 20,
    });
}
submitTimer.Stop();
Console.WriteLine($"queued {tickets} tickets in {submitTimer.Elapsed.TotalSeconds:F2} s ({tickets / submitTimer.Elapsed.TotalSeconds:F0}/s, each a round trip)");

var inbox = workers.ToDictionary(w => w.PeerId!, _ => Channel.CreateUnbounded<string>());
// When each worker received each offer (Stopwatch ticks), as its signaling connection delivered it.
var offersIn = workers.ToDictionary(w => w.PeerId!, _ => Channel.CreateUnbounded<long>());
foreach (var worker in workers) worker.OfferReceived += _ => offersIn[worker.PeerId!].Writer.TryWrite(Stopwatch.GetTimestamp());
var offerLatencies = new ConcurrentBag<double>();
// When each worker last turned available (Stopwatch ticks), and the latency of each hand-out to the submitter's push.
var availableAt = new ConcurrentDictionary<string, long>();
var latencies = new ConcurrentBag<double>();
var handedOut = new ConcurrentDictionary<string, int>();
var allAssigned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
IAssignmentFollowUp followUp = new SignalingOnlyFollowUp(submitter, inbox);
long lastAssignment = 0;
submitter.TicketAssigned += assignment =>
{
    var now = Stopwatch.GetTimestamp();
    if (availableAt.TryGetValue(assignment.WorkerId, out var since)) latencies.Add(Stopwatch.GetElapsedTime(since, now).TotalMilliseconds);
    handedOut.AddOrUpdate(assignment.JobId, 1, (_, n) => n + 1);
    Volatile.Write(ref lastAssignment, now);
    followUp.Start(assignment);
    if (handedOut.Count == tickets) allAssigned.TrySetResult();
};

async Task TurnAvailableAsync(SignalingClient worker)
{
    availableAt[worker.PeerId!] = Stopwatch.GetTimestamp();
    await worker.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["status"] = "available" } });
}

async Task RunWorkerAsync(SignalingClient worker)
{
    await TurnAvailableAsync(worker);
    await foreach (var jobId in inbox[worker.PeerId!].Reader.ReadAllAsync())
    {
        // A worker starts a job when the client's offer arrives, as ours does.
        var offerAt = await offersIn[worker.PeerId!].Reader.ReadAsync();
        offerLatencies.Add(Stopwatch.GetElapsedTime(availableAt[worker.PeerId!], offerAt).TotalMilliseconds);
        // The 0 s stand-in job: reported running and done at once, as the worker reports a real one.
        await worker.ReportJobAsync(new JobRecord { JobId = jobId, State = JobStates.Running });
        await worker.ReportJobAsync(new JobRecord { JobId = jobId, State = JobStates.Succeeded });
        await TurnAvailableAsync(worker);
    }
}

var start = Stopwatch.GetTimestamp();
var loops = workers.Select(w => Task.Run(() => RunWorkerAsync(w))).ToList();
await allAssigned.Task.WaitAsync(TimeSpan.FromMinutes(5));
var handOutSeconds = Stopwatch.GetElapsedTime(start, Volatile.Read(ref lastAssignment)).TotalSeconds;
foreach (var channel in inbox.Values) channel.Writer.TryComplete();
await Task.WhenAll(loops);

var records = await submitter.ListJobsAsync();
var succeeded = records.Count(r => r.State == JobStates.Succeeded);
var sorted = latencies.Order().ToList();
double Percentile(double p) => sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];
Console.WriteLine();
Console.WriteLine($"tickets handed out:         {handedOut.Count} (each exactly once: {handedOut.Values.All(n => n == 1)}), {succeeded} records Succeeded");
Console.WriteLine($"hand-out rate:              {tickets / handOutSeconds:F0} tickets/s ({handOutSeconds:F2} s for {tickets}; target >= 500/s)");
Console.WriteLine($"available -> queue_assigned at the submitter: p50 {Percentile(0.5):F2} ms, p90 {Percentile(0.9):F2} ms, p99 {Percentile(0.99):F2} ms, max {sorted[^1]:F2} ms ({sorted.Count} samples)");
sorted = offerLatencies.Order().ToList();
Console.WriteLine($"available -> the upload's offer reaches the worker: p50 {Percentile(0.5):F2} ms, p90 {Percentile(0.9):F2} ms, p99 {Percentile(0.99):F2} ms, max {sorted[^1]:F2} ms ({sorted.Count} samples; target p50 < 50 ms)");
Console.WriteLine($"load average: {LoadAverage()}");

await submitter.DisposeAsync();
foreach (var worker in workers) await worker.DisposeAsync();
var signalingOk = handedOut.Count == tickets && handedOut.Values.All(n => n == 1) && succeeded == tickets;

var e2eJobs = ArgInt("--e2e-jobs", 200);
var endToEndOk = true;
if (e2eJobs > 0)
{
    Console.WriteLine();
    endToEndOk = await EndToEnd.RunAsync(url, e2eJobs, ArgInt("--e2e-workers", 20));
    Console.WriteLine($"load average: {LoadAverage()}");
}
await server.StopAsync();
foreach (var file in new[] { database, database + "-wal", database + "-shm" }) File.Delete(file);
return signalingOk && endToEndOk ? 0 : 1;

int ArgInt(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], out var value) ? value : fallback;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

/// <summary>What the submitter does once a ticket got its worker.</summary>
internal interface IAssignmentFollowUp
{
    void Start(TicketAssignment assignment);
}

/// <summary>
/// The signaling part of a submission: the offer to the assigned worker (which is what ends the server's assignment
/// timeout) and, standing in for the hello on the data channel, the job id handed to the worker in-process.
/// A WebRTC follow-up would open the real connection here and report when the upload starts.
/// </summary>
internal sealed class SignalingOnlyFollowUp(SignalingClient submitter, IReadOnlyDictionary<string, Channel<string>> workers) : IAssignmentFollowUp
{
    public void Start(TicketAssignment assignment)
    {
        _ = submitter.SendOfferAsync(assignment.WorkerId, "v=0");
        workers[assignment.WorkerId].Writer.TryWrite(assignment.JobId);
    }
}
