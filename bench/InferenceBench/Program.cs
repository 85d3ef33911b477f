using System.Diagnostics;
using System.Globalization;
using System.Net;
using SleapRtc.Client.Jobs;
using SleapRtc.Signaling.Server;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

// Remote inference on loopback with the real parts (bundled server, managed WebRTC, a space worker, the stand-in
// tracker with 0 frames, so "inference" is the tracker process starting and writing its file):
//   request connect   InferenceSubmission start -> data channel open (credentials, sign-in, space lookup, offer), p50
//   1 MB delivered    channel open (the client starts sending) -> the worker has the whole request unpacked and
//                     starts the tracker, p50
//   warm round trip   whole request to a warm space: connect, upload, tracker, predictions back, p50; and the
//                     same without the tracker process (from "Inference started." to "Inference finished."),
//                     which on a loaded box is mostly Python starting
//   1 GB video rate   a video of --video-mb MB sent to the space (channel open -> tracker starts, so the worker's
//                     disk write, SHA-256 and unpack are in it) against the raw rate of a data channel between
//                     two of our peer connections in this process (same 64 KiB messages and 1 MiB high-water mark,
//                     bytes counted on arrival, nothing written)
//   dotnet run -c Release --project bench/InferenceBench -- [--runs N (20)] [--video-mb N (1000; 0 skips)]
var runs = 20;
var videoMB = 1000;
var trace = false;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--runs") runs = int.Parse(args[++i], CultureInfo.InvariantCulture);
    else if (args[i] == "--video-mb") videoMB = int.Parse(args[++i], CultureInfo.InvariantCulture);
    else if (args[i] == "--trace") trace = true;
    else { Console.Error.WriteLine("usage: InferenceBench [--runs N (default 20)] [--video-mb N (default 1000, 0 skips)] [--trace]"); return 2; }
}

var repo = FindRepoRoot();
Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_FRAMES", "0");
var scratch = Path.Combine(Path.GetTempPath(), "sleaprtc-inferencebench-" + Environment.ProcessId);
Directory.CreateDirectory(scratch);
Console.WriteLine($"InferenceBench: {runs} runs per figure, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on the box skews every figure)");

await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions { Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", EnableStun = false });
var url = $"ws://127.0.0.1:{server.Port}";
var room = await server.CreateRoomAsync("bench", null);
var factory = new RtcPeerConnectionFactory();
var loopback = new PeerConnectionOptions { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };
var model = Directory.CreateDirectory(Path.Combine(scratch, "models", "centroid")).FullName;
File.WriteAllText(Path.Combine(model, "best.ckpt"), "bench");

try
{
    await using var space = await WorkerHost.StartAsync(new WorkerOptions
    {
        Server = url, RoomId = room.RoomId, Token = room.Token, NvidiaSmiPath = "/nonexistent/nvidia-smi",
        SleapNnPath = Path.Combine(repo, "tests", "fixtures", "sleap-nn"), WorkingDirectory = Path.Combine(scratch, "worker"),
        PeerConnectionFactory = factory, PeerConnection = loopback, Space = "bench", SpaceModelPaths = new[] { model },
    }, CancellationToken.None);
    var trackerStarted = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
    space.LogLine += line => { if (line.StartsWith("Running inference", StringComparison.Ordinal)) trackerStarted.TrySetResult(Stopwatch.GetTimestamp()); };

    var small = Data("small.mp4", 4096);
    var megabyte = Data("one-mb.mp4", 1_000_000);
    await RequestAsync(small, null); // warm-up: JIT, first tracker start
    var connect = new List<double>();
    var roundTrip = new List<double>();
    var delivered = new List<double>();
    var overhead = new List<double>();
    for (var i = 0; i < runs; i++)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan trackerStart = default, trackerEnd = default;
        var submission = await RequestAsync(small, null, line =>
        {
            if (line == "Inference started.") trackerStart = clock.Elapsed;
            else if (line == "Inference finished.") trackerEnd = clock.Elapsed;
        });
        roundTrip.Add(clock.Elapsed.TotalMilliseconds);
        overhead.Add((clock.Elapsed - (trackerEnd - trackerStart)).TotalMilliseconds);
        connect.Add(submission.TimeToChannelOpen!.Value.TotalMilliseconds);
    }
    for (var i = 0; i < runs; i++)
    {
        trackerStarted = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        long uploadStart = 0;
        await RequestAsync(megabyte, message => { if (message.StartsWith("Connection established", StringComparison.Ordinal)) uploadStart = Stopwatch.GetTimestamp(); });
        delivered.Add(Stopwatch.GetElapsedTime(uploadStart, await trackerStarted.Task).TotalMilliseconds);
    }

    Console.WriteLine();
    Console.WriteLine("| figure | p50 | min / max | target |");
    Console.WriteLine("|---|---|---|---|");
    Row("request connect: submission start -> channel open", connect, 100);
    Row("1 MB request delivered: channel open -> worker starts the tracker", delivered, 50);
    Row("warm space round trip, 0 s stand-in inference (4 KB data)", roundTrip, 150);
    Row("the same round trip without the tracker process (its start and run, as the client sees them)", overhead, 150);

    if (videoMB > 0)
    {
        var bytes = (long)videoMB * 1_000_000;
        var raw = await RawChannelRateAsync(bytes);
        var video = Data("video.mp4", bytes);
        trackerStarted = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        long uploadStart = 0;
        await RequestAsync(video, message => { if (message.StartsWith("Connection established", StringComparison.Ordinal)) uploadStart = Stopwatch.GetTimestamp(); });
        var seconds = Stopwatch.GetElapsedTime(uploadStart, await trackerStarted.Task).TotalSeconds;
        var rate = bytes / 1e6 / seconds;
        File.Delete(video);
        Console.WriteLine();
        Console.WriteLine($"| {videoMB:N0} MB video to the space (channel open -> tracker starts) | {rate:0} MB/s ({seconds:0.0} s) |");
        Console.WriteLine($"| raw data channel, ours -> ours in this process, {videoMB:N0} MB | {raw:0} MB/s |");
        Console.WriteLine($"ratio video / raw: {rate / raw:0.00} (target >= 0.80)");
    }
}
finally
{
    try { Directory.Delete(scratch, recursive: true); } catch (IOException) { }
}
return 0;

async Task<InferenceSubmission> RequestAsync(string data, Action<string>? status, Action<string>? log = null)
{
    var submission = new InferenceSubmission(new SubmissionOptions
    {
        RoomId = room.RoomId, Token = room.Token, Server = url, OutputPath = Path.Combine(scratch, "out"),
        PeerConnectionFactory = factory, PeerConnection = loopback,
    }, new InferenceRequest { DataPath = data, Space = "bench" });
    if (status is not null) submission.StatusMessage += status;
    if (log is not null) submission.LogLine += log;
    if (trace)
    {
        var clock = Stopwatch.StartNew();
        submission.StatusMessage += m => Console.WriteLine($"  {clock.ElapsedMilliseconds,6} ms  {m}");
        submission.LogLine += m => Console.WriteLine($"  {clock.ElapsedMilliseconds,6} ms  log: {m}");
        submission.ProgressChanged += p => Console.WriteLine($"  {clock.ElapsedMilliseconds,6} ms  {p.Phase} {p.Describe()}");
    }
    var result = await submission.RunAsync(CancellationToken.None);
    if (result.Status != "Succeeded") throw new InvalidOperationException("request failed: " + result.Error);
    return submission;
}

string Data(string name, long bytes)
{
    var path = Path.Combine(scratch, name);
    var block = new byte[Math.Min(bytes, 1 << 20)];
    new Random(7).NextBytes(block);
    using var file = File.Create(path);
    for (var left = bytes; left > 0; left -= block.Length) file.Write(block, 0, (int)Math.Min(left, block.Length));
    return path;
}

// Two of our peer connections in this process, one channel, 64 KiB messages with a 1 MiB high-water mark (what the
// file transfer uses); MB/s = bytes / (first send -> last byte counted by the receiver).
async Task<double> RawChannelRateAsync(long bytes)
{
    await using var offerer = factory.CreateConnection(loopback);
    await using var answerer = factory.CreateConnection(loopback);
    var received = 0L;
    var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
    answerer.DataChannelOpened += channel => channel.MessageReceived += message =>
    {
        if ((received += message.Binary.Length) >= bytes) done.TrySetResult(Stopwatch.GetTimestamp());
    };
    var offer = await offerer.CreateOfferAsync(CancellationToken.None);
    await offerer.AcceptAnswerAsync(await answerer.AcceptOfferAsync(offer, CancellationToken.None), CancellationToken.None);
    var sender = await offerer.OpenDataChannelAsync("raw", CancellationToken.None);
    var chunk = new byte[64 * 1024];
    new Random(7).NextBytes(chunk);
    var start = Stopwatch.GetTimestamp();
    for (var sent = 0L; sent < bytes; sent += chunk.Length)
        await sender.SendAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, bytes - sent)), 1 << 20, CancellationToken.None);
    var end = await done.Task.WaitAsync(TimeSpan.FromMinutes(5));
    return bytes / 1e6 / Stopwatch.GetElapsedTime(start, end).TotalSeconds;
}

static void Row(string figure, List<double> samples, double target)
{
    samples.Sort();
    Console.WriteLine($"| {figure} | {samples[samples.Count / 2]:0.0} ms | {samples[0]:0.0} / {samples[^1]:0.0} ms | < {target:0} ms |");
}

static string FindRepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("SleapRtc.sln not found above the bench binaries.");
}
