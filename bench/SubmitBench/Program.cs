using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using SleapRtc.Bench;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using SleapRtc.WebRtc.PeerConnection;

// End-to-end submission benchmark on loopback (real signaling server, real WebRTC stack, worker in a child
// process): a 1 GiB package (total seconds, upload MB/s, worker peak RSS), the raw data-channel throughput
// between the same two processes for comparison, and connect time p50 over 20 submissions.
//   dotnet run -c Release --project bench/SubmitBench -- [--size MiB (1024)] [--connects N (20)]
if (args.Length > 0 && args[0] == "worker") return await ChildProcesses.RunWorkerAsync(args[1], args[2], args[3], args[4], args[5]);
if (args.Length > 0 && args[0] == "sink") return await ChildProcesses.RunSinkAsync(args[1], args[2], args[3]);

var sizeMiB = 1024L;
var connects = 20;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--size": sizeMiB = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--connects": connects = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: Console.Error.WriteLine("usage: SubmitBench [--size MiB (default 1024)] [--connects N (default 20)]"); return 2;
    }
}

var repo = FindRepoRoot();
var trainer = Path.Combine(repo, "tests", "fixtures", "sleap-nn");
Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.01");
var scratch = Path.Combine(Path.GetTempPath(), "sleaprtc-submitbench-" + Environment.ProcessId);
Directory.CreateDirectory(scratch);
Console.WriteLine($"SubmitBench: {sizeMiB} MiB package, {connects} connects, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on the box skews every figure)");
Console.WriteLine("MB = 10^6 bytes.");

await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions { Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", EnableStun = false });
var url = $"ws://127.0.0.1:{server.Port}";
var room = await server.CreateRoomAsync("bench", null);
var factory = new RtcPeerConnectionFactory();

try
{
    var bytes = sizeMiB * 1048576;
    var rawMBps = await MeasureRawAsync(url, room.RoomId, room.Token, bytes);
    Console.WriteLine($"raw data channel, parent -> child, 64 KiB messages, 4 MiB high-water mark: {rawMBps:0.0} MB/s");

    var package = BuildPackage(scratch, "bench_pkg", bytes);
    Console.WriteLine($"package: {new FileInfo(package).Length / 1e6:0} MB (stored zip)");
    using (var worker = ChildProcesses.Start("worker", url, room.RoomId, room.Token, Path.Combine(scratch, "worker"), trainer))
    {
        var peakDuringUpload = 0.0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakDuringUpload = Math.Max(peakDuringUpload, worker.RssMB());
                await Task.Delay(50);
            }
        });
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = package, OutputPath = Path.Combine(scratch, "out"), PeerConnectionFactory = factory,
            PeerConnection = ChildProcesses.Loopback, RoomId = room.RoomId, Token = room.Token, Server = url, WorkerId = worker.PeerId,
        });
        var clock = Stopwatch.StartNew();
        var result = await submission.RunAsync(CancellationToken.None);
        var total = clock.Elapsed.TotalSeconds;
        sampling.Cancel();
        await sampler;
        var ratio = rawMBps > 0 ? result.UploadMBps * 1.048576 / rawMBps : 0;
        Console.WriteLine();
        Console.WriteLine("| figure | value | target |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| end-to-end total ({sizeMiB} MiB, upload + unpack + train + results) | {total:0.0} s | |");
        Console.WriteLine($"| upload | {result.UploadMBps * 1.048576:0.0} MB/s | >= 80 % of raw |");
        Console.WriteLine($"| upload / raw data channel | {ratio * 100:0} % | >= 80 % |");
        Console.WriteLine($"| worker peak RSS (VmHWM, whole job) | {worker.PeakRssMB():0} MB | < 200 MB while receiving |");
        Console.WriteLine($"| worker max sampled RSS | {peakDuringUpload:0} MB | |");
        Console.WriteLine($"| result | {result.Status}, {result.ModelPaths.Length} model folder(s) | |");
        File.Delete(package);
        await WaitForWorkerAvailableAsync(url, room.RoomId, room.Token, worker.PeerId);

        var tiny = BuildPackage(scratch, "tiny_pkg", 4096);
        var samples = new List<double>();
        for (var i = 0; i < connects; i++)
        {
            var quick = new TrainingSubmission(new SubmissionOptions
            {
                PackagePath = tiny, OutputPath = Path.Combine(scratch, "tiny-" + i), PeerConnectionFactory = factory,
                PeerConnection = ChildProcesses.Loopback, RoomId = room.RoomId, Token = room.Token, Server = url, WorkerId = worker.PeerId,
            });
            await quick.RunAsync(CancellationToken.None);
            samples.Add(quick.TimeToChannelOpen!.Value.TotalMilliseconds);
            await WaitForWorkerAvailableAsync(url, room.RoomId, room.Token, worker.PeerId);
        }
        samples.Sort();
        Console.WriteLine($"| connect: submission start -> channel open, p50 of {connects} | {samples[samples.Count / 2]:0} ms (min {samples[0]:0}, max {samples[^1]:0}) | < 100 ms |");
    }
}
finally
{
    try { Directory.Delete(scratch, recursive: true); } catch (IOException) { }
}
return 0;

async Task<double> MeasureRawAsync(string serverUrl, string roomId, string token, long total)
{
    using var sink = ChildProcesses.Start("sink", serverUrl, roomId, token);
    await using var signaling = new SignalingClient(serverUrl);
    var signIn = await signaling.AnonymousSignInAsync();
    await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "client"));
    await using var peer = factory.Create(ChildProcesses.Loopback);
    var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
    signaling.AnswerReceived += m => answer.TrySetResult(m.Sdp);
    await signaling.SendOfferAsync(sink.PeerId, await peer.CreateOfferAsync(CancellationToken.None));
    await peer.AcceptAnswerAsync(await answer.Task.WaitAsync(TimeSpan.FromSeconds(20)), CancellationToken.None);
    var channel = await peer.OpenDataChannelAsync("raw", CancellationToken.None);
    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    channel.MessageReceived += m => { if (m.IsText && m.Text == "DONE") done.TrySetResult(); };
    var writer = new FrameWriter(channel.Send, f => channel.Send(f), () => channel.BufferedAmount);
    var chunk = new byte[65536];
    Random.Shared.NextBytes(chunk);
    var clock = Stopwatch.StartNew();
    writer.SendText("EXPECT::" + total.ToString(CultureInfo.InvariantCulture));
    for (long sent = 0; sent < total; sent += chunk.Length)
        await writer.SendBinaryAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, total - sent)), CancellationToken.None);
    await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
    return total / 1e6 / clock.Elapsed.TotalSeconds;
}

static string BuildPackage(string directory, string name, long payloadBytes)
{
    var path = Path.Combine(directory, name + ".zip");
    using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
    void Text(string entry, string content)
    {
        using var s = zip.CreateEntry(name + "/" + entry).Open();
        s.Write(Encoding.UTF8.GetBytes(content));
    }
    Text("train-script.sh", "#!/bin/bash\nsleap-nn train --config-name centroid.json --config-dir .\n");
    Text("centroid.json", "{\"trainer_config\": {\"max_epochs\": 1}}");
    using var payload = zip.CreateEntry(name + "/labels.v001.pkg.slp", CompressionLevel.NoCompression).Open();
    var block = new byte[1 << 20];
    Random.Shared.NextBytes(block);
    for (long written = 0; written < payloadBytes; written += block.Length)
        payload.Write(block, 0, (int)Math.Min(block.Length, payloadBytes - written));
    return path;
}

static async Task WaitForWorkerAvailableAsync(string serverUrl, string roomId, string token, string peerId)
{
    var deadline = DateTime.UtcNow.AddSeconds(20);
    while (DateTime.UtcNow < deadline)
    {
        var workers = await SleapRtc.Client.Discovery.WorkerDiscovery.DiscoverAsync(
            new SleapRtc.Client.Credentials.ResolvedRoom { RoomId = roomId, Token = token, Server = serverUrl }, null, null, CancellationToken.None);
        if (workers.Any(w => w.PeerId == peerId)) return;
        await Task.Delay(20);
    }
    throw new TimeoutException("the worker did not become available again");
}

static string FindRepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}
