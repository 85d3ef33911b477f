using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The classic protocol both ways against a real classic peer: tests/interop/classic_peer.py, a Python client and
/// worker on aiortc and websockets (the libraries classic sleap-RTC uses) that follow classic client-train,
/// client-track and worker message by message. Python classic client → our worker (train, track) and our client →
/// Python classic worker (train, track), over the real server, on loopback. Neither side may see an extension message.
/// </summary>
public sealed class ClassicPythonPeerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_python_classic_client_trains_on_our_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var package = Fixtures.BuildPackage(room.Root, "labels.v002", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(2) }, extraBytes: 300_000);
        var output = Path.Combine(room.Root, "classic-client");

        await using var client = ClassicPeer.Start(room, "client-train", "--room-id", worker.Session.RoomId, "--token", worker.Session.Token,
            "--pkg-path", package, "--out", output);
        Assert.Equal(0, await client.ExitAsync(Wait));

        Assert.Equal(worker.Session.PeerId, client.Event("selected")["worker_id"]!.GetValue<string>());
        var texts = client.Received;
        Assert.DoesNotContain(texts, t => t.StartsWith("SLEAPRTC_"));
        Assert.True(texts.IndexOf("TRAIN_JOB_START::centroid") < texts.IndexOf("TRAIN_JOB_END::centroid"));
        Assert.True(texts.IndexOf("TRAIN_JOB_END::centroid") < texts.IndexOf("TRAINING_JOBS_DONE"));
        Assert.Contains(texts, t => t.Contains("train_loss"));
        var saved = client.Event("file")["path"]!.GetValue<string>();
        Assert.Equal(Path.Combine(output, "trained_labels.v002.zip"), saved);
        Assert.Equal($"FILE_META::trained_labels.v002.zip:{new FileInfo(saved).Length}:models", Assert.Single(texts, t => t.StartsWith("FILE_META::")));
        using var zip = ZipFile.OpenRead(saved);
        Assert.Contains(zip.Entries, e => e.FullName.Replace('\\', '/') == "centroid/best.ckpt");
    }

    [Fact]
    public async Task A_python_classic_track_client_gets_predictions_from_our_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, _) = InferenceTests.Inputs(room.Root);
        var labels = Path.Combine(room.Root, "labels.v001.slp");
        File.WriteAllText(labels, "classic labels");
        var output = Path.Combine(room.Root, "classic-track");

        // Classic's default output name (predictions.slp): its own worker's glob would miss it, ours returns what -o names.
        await using var client = ClassicPeer.Start(room, "client-track", "--session-string", worker.Session.SessionString,
            "--data-path", labels, "--model-paths", models[0], models[1], "--out", output);
        Assert.Equal(0, await client.ExitAsync(Wait));

        var texts = client.Received;
        Assert.DoesNotContain(texts, t => t.StartsWith("SLEAPRTC_"));
        Assert.Equal("INFERENCE_START", texts.First(t => t.StartsWith("INFERENCE")));
        Assert.True(texts.IndexOf("INFERENCE_JOB_START::inference") < texts.IndexOf("INFERENCE_JOB_END::inference"));
        Assert.Contains(texts, t => t.StartsWith("TRACK_LOG:") && t.Contains("Predicted"));
        Assert.True(texts.IndexOf("INFERENCE_JOB_END::inference") < texts.FindIndex(t => t.StartsWith("FILE_META::predictions.slp:")));
        Assert.Equal("INFERENCE_JOBS_DONE", texts[^1]);
        var predictions = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "predictions.slp"))).RootElement;
        Assert.Equal("labels.v001.slp", predictions.GetProperty("data_name").GetString());
        Assert.Equal(new[] { "centroid", "centered_instance" }, predictions.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.True(predictions.GetProperty("only_suggested_frames").GetBoolean());
        // Classic's track client then deletes the whole room with no token; our server refuses that, so the worker stays.
        await using var look = new SignalingClient(room.Url);
        var signIn = await look.AnonymousSignInAsync();
        await look.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, worker.Session.Token, signIn.IdToken, "client"));
        Assert.Contains(await look.DiscoverAsync(PeerFilters.Workers(status: null)), p => p.PeerId == worker.Session.PeerId);
    }

    [Fact]
    public async Task Our_client_trains_on_a_python_classic_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var credentials = await CreateRoomAsync(room);
        await using var classic = ClassicPeer.Start(room, "worker", "--room-id", credentials.RoomId, "--token", credentials.Token,
            "--workdir", Path.Combine(room.Root, "classic-worker"), "--sleap-nn", Fixtures.SleapNn);
        var peerId = (await classic.WaitForAsync("registered", Wait))["peer_id"]!.GetValue<string>();
        var package = Fixtures.BuildPackage(room.Root, "labels.v003", new Dictionary<string, string> { ["bottomup.json"] = Fixtures.Config(2) }, extraBytes: 200_000);
        var output = Path.Combine(room.Root, "from-classic");

        var result = await new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = package, OutputPath = output, RoomId = credentials.RoomId, Token = credentials.Token, Server = room.Url, AutoSelect = true,
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        }).RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal(("Succeeded", peerId), (result.Status, result.WorkerId));
        Assert.Equal(new[] { "bottomup" }, result.Configs);
        Assert.Contains(result.ModelPaths, p => File.Exists(Path.Combine(p, "best.ckpt")));
        var received = classic.Received;
        Assert.DoesNotContain(received, t => t.StartsWith("SLEAPRTC_"));
        Assert.Equal(new[] { "PACKAGE_TYPE::train", "OUTPUT_DIR::models" }, received.Take(2));
        Assert.StartsWith("FILE_META::labels.v003.zip:", received[2]);
        Assert.Equal("END_OF_FILE", received[3]);
    }

    [Fact]
    public async Task Our_client_runs_inference_on_a_python_classic_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var credentials = await CreateRoomAsync(room);
        await using var classic = ClassicPeer.Start(room, "worker", "--room-id", credentials.RoomId, "--token", credentials.Token,
            "--workdir", Path.Combine(room.Root, "classic-worker"), "--sleap-nn", Fixtures.SleapNn);
        var peerId = (await classic.WaitForAsync("registered", Wait))["peer_id"]!.GetValue<string>();
        var (models, data) = InferenceTests.Inputs(room.Root);
        var output = Path.Combine(room.Root, "predictions");
        var logs = new ConcurrentQueue<string>();
        var submission = new InferenceSubmission(new SubmissionOptions
        {
            RoomId = credentials.RoomId, Token = credentials.Token, Server = room.Url, AutoSelect = true, OutputPath = output,
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        }, new InferenceRequest { DataPath = data, ModelPaths = models });
        submission.LogLine += logs.Enqueue;

        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal(("Succeeded", peerId), (result.Status, result.WorkerId));
        Assert.Equal(Path.Combine(output, "session1.predictions.slp"), result.PredictionsPath);
        var predictions = JsonDocument.Parse(File.ReadAllText(result.PredictionsPath!)).RootElement;
        Assert.Equal("session1.mp4", predictions.GetProperty("data_name").GetString());
        Assert.Equal(new[] { "centroid", "centered_instance" }, predictions.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(20, result.Frames);
        Assert.Contains(logs, l => l.Contains("Predicted"));
        var received = classic.Received;
        Assert.DoesNotContain(received, t => t.StartsWith("SLEAPRTC_"));
        Assert.Equal(new[] { "PACKAGE_TYPE::track", "OUTPUT_DIR::." }, received.Take(2));
        Assert.StartsWith("FILE_META::track_package.zip:", received[2]);
    }

    /// <summary>
    /// Issue 12's wire line: classic peers in a room whose queue is in use. A classic client trains on our worker while
    /// one ticket is assigned and others wait; a classic worker, free and matching a waiting ticket in everything but
    /// our extension, is never handed one, and a classic client uses it directly.
    /// </summary>
    [Fact]
    public async Task Classic_peers_keep_working_in_a_room_whose_queue_is_in_use()
    {
        await using var room = await RoomFixture.StartAsync();
        var big = await room.StartWorkerAsync(gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi);          // 49,140 MB
        var (roomId, token) = (big.Session.RoomId, big.Session.Token);
        var small = await room.StartWorkerAsync(roomId, token, gpuId: 2, nvidiaSmi: Fixtures.NvidiaSmi); // 11,264 MB
        await using var classicWorker = ClassicPeer.Start(room, "worker", "--room-id", roomId, "--token", token,
            "--workdir", Path.Combine(room.Root, "classic-worker"), "--sleap-nn", Fixtures.SleapNn);
        var classicId = (await classicWorker.WaitForAsync("registered", Wait))["peer_id"]!.GetValue<string>();

        await using var submitter = new SignalingClient(room.Url);
        var signIn = await submitter.AnonymousSignInAsync();
        await submitter.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "client"));
        var assigned = new ConcurrentQueue<TicketAssignment>();
        submitter.TicketAssigned += assigned.Enqueue;
        JobRecord Ticket(long minGpu) => new()
        {
            JobId = JobIds.New(), PackageName = "queued.zip", PackageBytes = 1000,
            Requirements = minGpu == 0 ? null : new TicketRequirements { MinGpuMemoryMb = minGpu },
        };
        // Assigned to the big worker (reserved for the submitter, which never offers), and a second one waiting for it.
        var onBig = (await submitter.SubmitTicketAsync(Ticket(40_000))).JobId;
        await Fixtures.WaitUntilAsync(() => assigned.Any(a => a.JobId == onBig));
        var waiting = (await submitter.SubmitTicketAsync(Ticket(40_000))).JobId;

        // A classic client auto-selects among the available workers (the small one: most memory of small and classic) and trains.
        var package = Fixtures.BuildPackage(room.Root, "labels.v004", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(25) });
        await using (var classicClient = ClassicPeer.Start(room, "client-train", "--room-id", roomId, "--token", token, "--pkg-path", package,
            "--out", Path.Combine(room.Root, "classic-on-ours")))
        {
            await classicClient.WaitForAsync("open", Wait);
            // While it trains, a ticket any worker matches: the only free worker is the classic one, which must not get it.
            var anyWorker = (await submitter.SubmitTicketAsync(Ticket(0))).JobId;
            Assert.Equal(0, await classicClient.ExitAsync(Wait));
            Assert.Equal(small.Session.PeerId, classicClient.Event("selected")["worker_id"]!.GetValue<string>());
            Assert.Contains("TRAINING_JOBS_DONE", classicClient.Received);
            Assert.DoesNotContain(classicClient.Received, t => t.StartsWith("SLEAPRTC_"));
            Assert.True(File.Exists(classicClient.Event("file")["path"]!.GetValue<string>()));
            // Once the small worker is free again the queue hands that ticket to it, not to the classic worker.
            await Fixtures.WaitUntilAsync(() => assigned.Any(a => a.JobId == anyWorker));
            Assert.Equal(small.Session.PeerId, assigned.Single(a => a.JobId == anyWorker).WorkerId);
        }
        var records = (await submitter.ListJobsAsync()).ToDictionary(r => r.JobId);
        Assert.Equal((JobStates.Queued, big.Session.PeerId), (records[onBig].State, records[onBig].WorkerId));
        Assert.Equal((JobStates.Queued, (string?)null), (records[waiting].State, records[waiting].WorkerId));
        Assert.DoesNotContain(assigned, a => a.WorkerId == classicId);

        // The classic worker, never handed a ticket, serves a classic client directly.
        var direct = Fixtures.BuildPackage(room.Root, "labels.v005", new Dictionary<string, string> { ["single.json"] = Fixtures.Config(2) });
        await using var onClassic = ClassicPeer.Start(room, "client-train", "--room-id", roomId, "--token", token, "--worker-id", classicId,
            "--pkg-path", direct, "--out", Path.Combine(room.Root, "classic-on-classic"));
        Assert.Equal(0, await onClassic.ExitAsync(Wait));
        Assert.Contains("TRAIN_JOB_END::single", onClassic.Received);
        Assert.DoesNotContain(classicWorker.Received, t => t.StartsWith("SLEAPRTC_") || t.StartsWith("queue_") || t.StartsWith("job_"));
        Assert.DoesNotContain(assigned, a => a.WorkerId == classicId);
    }

    private static async Task<SleapRtc.Room> CreateRoomAsync(RoomFixture room)
    {
        await using var admin = new SignalingClient(room.Url);
        return await admin.CreateRoomAsync("classic-python");
    }
}

/// <summary>tests/interop/classic_peer.py as a child process: its JSON-line events, its exit code, and its stderr for failure messages.</summary>
internal sealed class ClassicPeer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<JsonObject> _events = new();
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private ClassicPeer(Process process) => _process = process;

    public static ClassicPeer Start(RoomFixture room, string mode, params string[] arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(Fixtures.RepoRoot, "tests", "interop", "classic_peer.py"));
        foreach (var argument in new[] { mode, "--ws", room.Url, "--http", room.Url.Replace("ws://", "http://") }.Concat(arguments)) start.ArgumentList.Add(argument);
        start.Environment["CLASSIC_PEER_LOOPBACK"] = "1";
        start.Environment["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = "0.02";
        var peer = new ClassicPeer(Process.Start(start)!);
        peer._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            try { peer._events.Enqueue(JsonNode.Parse(e.Data)!.AsObject()); }
            catch (JsonException) { peer._stderr.Enqueue("stdout: " + e.Data); }
            peer._arrived.Release();
        };
        peer._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) peer._stderr.Enqueue(e.Data); };
        peer._process.BeginOutputReadLine();
        peer._process.BeginErrorReadLine();
        return peer;
    }

    /// <summary>Every text message the peer received, in order.</summary>
    public List<string> Received => _events.Where(e => e["ev"]!.GetValue<string>() == "received").Select(e => e["text"]!.GetValue<string>()).ToList();

    public JsonObject Event(string name) => _events.FirstOrDefault(e => e["ev"]!.GetValue<string>() == name) ?? throw new Xunit.Sdk.XunitException($"no '{name}' event. {Describe()}");

    public async Task<JsonObject> WaitForAsync(string name, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            if (_events.FirstOrDefault(e => e["ev"]!.GetValue<string>() == name) is { } found) return found;
            if (_events.FirstOrDefault(e => e["ev"]!.GetValue<string>() == "error") is not null || _process.HasExited || DateTime.UtcNow > deadline)
                throw new Xunit.Sdk.XunitException($"classic peer: no '{name}' event. {Describe()}");
            await _arrived.WaitAsync(TimeSpan.FromMilliseconds(200));
        }
    }

    public async Task<int> ExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { throw new Xunit.Sdk.XunitException($"classic peer did not finish within {within.TotalSeconds:F0} s. {Describe()}"); }
        if (_process.ExitCode != 0) throw new Xunit.Sdk.XunitException($"classic peer exited with {_process.ExitCode}. {Describe()}");
        return _process.ExitCode;
    }

    private string Describe() =>
        "events: " + string.Join(" | ", _events.Select(e => e.ToJsonString()).TakeLast(30)) + " stderr: " + string.Join("\n", _stderr.TakeLast(30));

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
