using System.Collections.Concurrent;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>The 12 scenarios of seeds/000 at the library level, over a real signaling server on loopback.</summary>
public sealed class ScenarioTests
{
    private static readonly TimeSpan Wait = RoomFixture.Wait;

    private static string Package(RoomFixture room, string name = "labels.v001", int epochs = 2) =>
        Fixtures.BuildPackage(room.Root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) });

    [Fact]
    public async Task T01_worker_start_prints_session_string_and_room_credentials()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var banner = worker.GetCredentialsBanner();
        var text = string.Join("\n", banner);

        Assert.Contains("Session string for DIRECT connection to this worker:", text);
        Assert.Contains("  Room ID: " + worker.Session.RoomId, banner);
        Assert.Contains("  Token:   " + worker.Session.Token, banner);
        Assert.True(banner.ToList().IndexOf("Session string for DIRECT connection to this worker:") < banner.ToList().FindIndex(l => l.StartsWith("Room credentials")));
        var sessionLine = banner.Single(l => l.Trim().StartsWith(SessionString.Prefix)).Trim();
        var decoded = SessionString.Decode(sessionLine);
        Assert.Equal((worker.Session.RoomId, worker.Session.Token, worker.Session.PeerId, room.Url), (decoded.RoomId, decoded.Token, decoded.PeerId, decoded.Server));
        Assert.Equal(WorkerStatus.Available, worker.Status);
        Assert.True(worker.Session.Token.Length >= 22, "rooms we create get long random tokens");
    }

    [Fact]
    public async Task T02_several_workers_join_one_room_with_gpu_per_gpu_id()
    {
        await using var room = await RoomFixture.StartAsync();
        var first = await room.StartWorkerAsync(gpuId: 0, nvidiaSmi: Fixtures.NvidiaSmi);
        var second = await room.StartWorkerAsync(first.Session.RoomId, first.Session.Token, gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi);
        var third = await room.StartWorkerAsync(first.Session.RoomId, first.Session.Token, gpuId: 2, nvidiaSmi: Fixtures.NvidiaSmi);
        var cpu = await room.StartWorkerAsync(first.Session.RoomId, first.Session.Token);

        var workers = await WorkerDiscovery.DiscoverAsync(room.Room(first), null, null, CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(4, workers.Count);
        Assert.Single(workers.Select(w => w.RoomId).Distinct());
        Assert.Equal(4, new[] { first, second, third, cpu }.Select(w => w.Session.PeerId).Distinct().Count());
        Assert.Equal(4, new[] { first, second, third, cpu }.Select(w => w.Session.SessionString).Distinct().Count());
        Assert.All(workers, w => Assert.Equal(WorkerStatus.Available, w.Status));
        var byPeer = workers.ToDictionary(w => w.PeerId);
        Assert.Equal(("NVIDIA GeForce RTX 4090", 24564L, "12.2"), (byPeer[first.Session.PeerId].GpuModel, byPeer[first.Session.PeerId].GpuMemoryMB, byPeer[first.Session.PeerId].CudaVersion));
        Assert.Equal(49140L, byPeer[second.Session.PeerId].GpuMemoryMB);
        Assert.Equal("NVIDIA GeForce GTX 1080 Ti", byPeer[third.Session.PeerId].GpuModel);
        Assert.Equal(("CPU", 0L), (byPeer[cpu.Session.PeerId].GpuModel, byPeer[cpu.Session.PeerId].GpuMemoryMB));
        Assert.All(workers, w => Assert.Equal(room.Url, w.Server));
        Assert.All(workers, w => Assert.Equal(first.Session.Token, w.Token));
        Assert.All(workers, w => Assert.Contains("sleap-rtc", w.Tags));
        Assert.Equal((long)JobExtensions.Version, byPeer[first.Session.PeerId].Properties[JobExtensions.MetadataProperty]);

        var big = await WorkerDiscovery.DiscoverAsync(room.Room(first), new WorkerFilter { MinGpuMemoryMB = 20000 }, null, CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(new[] { first.Session.PeerId, second.Session.PeerId }.OrderBy(x => x), big.Select(w => w.PeerId).OrderBy(x => x));
    }

    [Fact]
    public async Task T03_T07_interactive_selection_lists_workers_and_refreshes()
    {
        await using var room = await RoomFixture.StartAsync();
        var first = await room.StartWorkerAsync(gpuId: 2, nvidiaSmi: Fixtures.NvidiaSmi);
        var chooser = new ScriptedChooser();
        WorkerHost? second = null;
        chooser.Answers.Enqueue(() =>
        {
            second = room.StartWorkerAsync(first.Session.RoomId, first.Session.Token, gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi).GetAwaiter().GetResult();
            return "r";
        });
        chooser.Answers.Enqueue(() => "7");
        chooser.Answers.Enqueue(() => "2");
        var output = Path.Combine(room.Root, "out");
        var options = new SubmissionOptions
        {
            PackagePath = Package(room, "interactive"),
            OutputPath = output,
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            RoomId = first.Session.RoomId,
            Token = first.Session.Token,
            Server = room.Url,
            Chooser = chooser,
        };
        var result = await new TrainingSubmission(options).RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal(second!.Session.PeerId, result.WorkerId);
        var lines = chooser.Lines.ToList();
        Assert.Contains("Found 1 available worker:", lines);
        Assert.Contains("Found 2 available workers:", lines);
        Assert.Contains("   GPU: NVIDIA GeForce GTX 1080 Ti (11264 MB)", lines);
        Assert.Contains("   Status: available", lines);
        Assert.Contains(lines, l => l.StartsWith("   Hostname: "));
        Assert.Contains("Refreshing worker list...", lines);
        Assert.Contains(lines, l => l.StartsWith("Invalid selection. Enter a number between 1 and 2"));
        Assert.Equal(new[] { "Select worker (1) or 'r' to refresh", "Select worker (1-2) or 'r' to refresh", "Select worker (1-2) or 'r' to refresh" }, chooser.Prompts);
    }

    [Fact]
    public async Task T03_interactive_selection_times_out_with_a_clear_error()
    {
        var chooser = new ScriptedChooser();
        var workers = new[] { new WorkerInfo { PeerId = "w1" } };
        var error = await Assert.ThrowsAsync<SelectionTimeoutException>(() =>
            WorkerSelection.SelectInteractiveAsync(chooser, workers, _ => Task.FromResult<IReadOnlyList<WorkerInfo>>(workers), TimeSpan.FromMilliseconds(50), "room", CancellationToken.None));
        Assert.Equal("WorkerSelectionTimeout", error.ErrorId);
        Assert.Contains("-AutoSelect", error.RecommendedAction);
    }

    [Fact]
    public async Task T04_auto_select_picks_the_most_gpu_memory_and_says_so()
    {
        await using var room = await RoomFixture.StartAsync();
        var small = await room.StartWorkerAsync(gpuId: 2, nvidiaSmi: Fixtures.NvidiaSmi);
        var big = await room.StartWorkerAsync(small.Session.RoomId, small.Session.Token, gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi);
        await room.StartWorkerAsync(small.Session.RoomId, small.Session.Token, gpuId: 0, nvidiaSmi: Fixtures.NvidiaSmi);
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room), OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            RoomId = small.Session.RoomId, Token = small.Session.Token, Server = room.Url, AutoSelect = true,
        });
        var messages = new ConcurrentQueue<string>();
        submission.StatusMessage += messages.Enqueue;
        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(big.Session.PeerId, result.WorkerId);
        Assert.Contains(messages, m => m.Contains("Auto-selecting") && m.Contains(big.Session.PeerId) && m.Contains("49140 MB"));
        Assert.Equal("Succeeded", result.Status);
    }

    [Fact]
    public async Task T05_T10_session_string_submission_trains_and_returns_models()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var statuses = new ConcurrentQueue<string>();
        worker.StatusChanged += statuses.Enqueue;
        var output = Path.Combine(room.Root, "models");
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room), OutputPath = output, PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString.Substring(SessionString.Prefix.Length).TrimEnd('='),
        });
        var progress = new ConcurrentQueue<SubmissionProgress>();
        submission.ProgressChanged += progress.Enqueue;
        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal("Succeeded", result.Status);
        Assert.Equal(worker.Session.PeerId, result.WorkerId);
        Assert.Equal(new[] { "centroid" }, result.Configs);
        Assert.Equal(output, Path.GetDirectoryName(result.OutputPath));
        Assert.Equal(new[] { Path.Combine(result.OutputPath!, "centroid") }, result.ModelPaths);
        Assert.True(File.Exists(Path.Combine(result.OutputPath!, "centroid", "best.ckpt")));
        Assert.StartsWith("job_", result.JobId);
        Assert.True(result.UploadedBytes > 0);
        Assert.NotNull(submission.ConnectTime);
        Assert.Contains(progress, p => p.Phase == SubmissionPhase.Training && p.Job is { Epoch: 2, EpochCount: 2 });
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        Assert.Equal(new[] { WorkerStatus.Reserved, WorkerStatus.Busy, WorkerStatus.Available }, statuses.Take(3));
    }

    [Fact]
    public async Task T06_status_moves_available_reserved_busy_available_visible_to_discovery()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var roomCredentials = room.Room(worker);
        var seen = new ConcurrentQueue<string>();
        var published = new ConcurrentQueue<JobProgress>();
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var all = await WorkerDiscovery.DiscoverAsync(roomCredentials, new WorkerFilter { Status = null }, null, CancellationToken.None);
                var info = all.Single(w => w.PeerId == worker.Session.PeerId);
                if (info.Status == WorkerStatus.Busy && info.Job is { ConfigCount: 1, Epoch: > 0 } job) published.Enqueue(job);
                if (seen.LastOrDefault() != info.Status) seen.Enqueue(info.Status);
                await Task.Delay(30);
            }
        });
        await Fixtures.WaitUntilAsync(() => seen.Count > 0);
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, epochs: 15), OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString,
        });
        await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);
        await Fixtures.WaitUntilAsync(() => seen.LastOrDefault() == WorkerStatus.Available && seen.Count >= 3);
        stop.Cancel();
        await watcher;
        var sequence = seen.ToList();
        Assert.Equal(WorkerStatus.Available, sequence[0]);
        Assert.Contains(WorkerStatus.Busy, sequence);
        Assert.Equal(WorkerStatus.Available, sequence[^1]);
        var busyAt = sequence.IndexOf(WorkerStatus.Busy);
        Assert.DoesNotContain(WorkerStatus.Available, sequence.Skip(1).Take(busyAt - 1));

        // The running job's progress is published in the worker's metadata for monitors.
        Assert.Contains(published, j => j.ConfigName == "centroid" && j.EpochCount == 15 && j.Loss > 0);

        var busyOnly = await WorkerDiscovery.DiscoverAsync(roomCredentials, new WorkerFilter { Status = WorkerStatus.Busy }, null, CancellationToken.None);
        Assert.Empty(busyOnly);
    }

    [Fact]
    public async Task T08a_no_workers_gives_a_clear_error()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var credentials = room.Room(worker);
        await worker.StopAsync();
        var error = await Assert.ThrowsAsync<NoWorkersAvailableException>(() => new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, RoomId = credentials.RoomId, Token = credentials.Token,
            Server = room.Url, AutoSelect = true,
        }).RunAsync(CancellationToken.None).WaitAsync(Wait));
        Assert.Equal("NoWorkersAvailable", error.ErrorId);
        Assert.Contains("No available workers found in room", error.Message);
        Assert.Contains("status 'available'", error.RecommendedAction);
    }

    [Fact]
    public async Task T08b_invalid_credentials_say_so()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var wrongToken = new ResolvedRoom { RoomId = worker.Session.RoomId, Token = "invalid_token", Server = room.Url };
        var error = await Assert.ThrowsAsync<InvalidRoomCredentialsException>(() => WorkerDiscovery.DiscoverAsync(wrongToken, null, null, CancellationToken.None).WaitAsync(Wait));
        Assert.Equal("InvalidRoomCredentials", error.ErrorId);
        Assert.Contains("Invalid room credentials", error.Message);
        Assert.DoesNotContain("invalid_token", error.Message);
        var noRoom = new ResolvedRoom { RoomId = "nosuchroom", Token = "x", Server = room.Url };
        await Assert.ThrowsAsync<InvalidRoomCredentialsException>(() => WorkerDiscovery.DiscoverAsync(noRoom, null, null, CancellationToken.None).WaitAsync(Wait));
        await Assert.ThrowsAsync<InvalidRoomCredentialsException>(() => room.StartWorkerAsync(worker.Session.RoomId, "invalid_token"));
    }

    [Fact]
    public async Task A_session_string_of_a_worker_that_left_fails_fast_and_clearly()
    {
        await using var room = await RoomFixture.StartAsync();
        var keeper = await room.StartWorkerAsync();
        var gone = await room.StartWorkerAsync(keeper.Session.RoomId, keeper.Session.Token);
        await gone.StopAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<WorkerNotFoundException>(() => new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            SessionString = gone.Session.SessionString,
        }).RunAsync(CancellationToken.None).WaitAsync(Wait));
        Assert.Contains(gone.Session.PeerId, error.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task T09_T11_T12_a_busy_worker_rejects_others_and_keeps_its_job()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var firstOutput = Path.Combine(room.Root, "first");
        var first = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "first", epochs: 40), OutputPath = firstOutput, PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString,
        });
        var firstRun = first.RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Busy);

        var rejections = await Task.WhenAll(Enumerable.Range(0, 2).Select(i => Assert.ThrowsAsync<WorkerBusyException>(() =>
            new TrainingSubmission(new SubmissionOptions
            {
                PackagePath = Package(room, "other" + i), OutputPath = Path.Combine(room.Root, "other" + i), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
                SessionString = worker.Session.SessionString,
            }).RunAsync(CancellationToken.None).WaitAsync(Wait))));
        foreach (var busy in rejections)
        {
            Assert.Equal("WorkerBusy", busy.ErrorId);
            Assert.Equal(worker.Session.PeerId, busy.WorkerId);
            Assert.Contains(busy.CurrentStatus, new[] { WorkerStatus.Busy, WorkerStatus.Reserved });
            // The worker's classic wording (with the Python tool's flags) is kept; the message speaks PowerShell.
            Assert.Contains("Worker is currently", busy.WorkerMessage);
            Assert.Contains($"is {busy.CurrentStatus}", busy.Message);
            Assert.False(string.IsNullOrEmpty(busy.RoomId));
            Assert.Contains(busy.RoomId, busy.Message);
            Assert.Contains("Get-SleapWorker -RoomId " + busy.RoomId, busy.RecommendedAction);
            Assert.DoesNotContain("--", busy.Message + busy.RecommendedAction);
        }

        var result = await firstRun.WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
        Assert.Equal(firstOutput, Path.GetDirectoryName(result.OutputPath));
        Assert.True(File.Exists(Path.Combine(result.OutputPath!, "centroid", "best.ckpt")));
        // A refused submission leaves no output folder behind.
        Assert.False(Directory.Exists(Path.Combine(room.Root, "other0")));
    }

    [Fact]
    public async Task Auto_select_moves_on_when_the_best_worker_is_busy()
    {
        await using var room = await RoomFixture.StartAsync();
        var best = await room.StartWorkerAsync(gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi);
        var next = await room.StartWorkerAsync(best.Session.RoomId, best.Session.Token, gpuId: 0, nvidiaSmi: Fixtures.NvidiaSmi);
        // Occupy the best worker through its session string, then auto-select while it is still listed:
        // the discovery snapshot is taken before it turns reserved, so the refusal path is exercised.
        var blocker = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "blocker", epochs: 40), OutputPath = Path.Combine(room.Root, "blocker"),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, SessionString = best.Session.SessionString,
        });
        var blockerRun = blocker.RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => best.Status == WorkerStatus.Busy || blockerRun.IsCompleted);
        if (blockerRun.IsFaulted) await blockerRun;

        var auto = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "auto"), OutputPath = Path.Combine(room.Root, "auto"), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            RoomId = best.Session.RoomId, Token = best.Session.Token, Server = room.Url, AutoSelect = true,
        });
        var result = await auto.RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(next.Session.PeerId, result.WorkerId);
        await blockerRun.WaitAsync(Wait);
    }

    [Fact]
    public async Task Race_twenty_clients_three_workers_exactly_three_jobs()
    {
        await using var room = await RoomFixture.StartAsync();
        var w1 = await room.StartWorkerAsync();
        var w2 = await room.StartWorkerAsync(w1.Session.RoomId, w1.Session.Token);
        var w3 = await room.StartWorkerAsync(w1.Session.RoomId, w1.Session.Token);
        var running = new ConcurrentDictionary<string, int>();
        var overlap = 0;
        var jobs = 0;
        foreach (var w in new[] { w1, w2, w3 })
        {
            w.StatusChanged += s =>
            {
                if (s == WorkerStatus.Busy)
                {
                    Interlocked.Increment(ref jobs);
                    if (running.AddOrUpdate(w.Session.PeerId, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref overlap);
                }
                if (s == WorkerStatus.Available) running.AddOrUpdate(w.Session.PeerId, 0, (_, n) => Math.Max(0, n - 1));
            };
        }
        var package = Package(room, "race", epochs: 30);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clients = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            await gate.Task;
            var submission = new TrainingSubmission(new SubmissionOptions
            {
                PackagePath = package, OutputPath = Path.Combine(room.Root, "race-" + i), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
                RoomId = w1.Session.RoomId, Token = w1.Session.Token, Server = room.Url, AutoSelect = true,
                Connection = new ClientConnectionOptions { Log = RoomFixture.Log },
            });
            try { return (object)await submission.RunAsync(CancellationToken.None); }
            catch (SleapRtcException e) { return e; }
        })).ToArray();
        gate.SetResult();
        var outcomes = await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(90));

        var results = outcomes.OfType<TrainingResult>().ToList();
        Assert.Equal(3, results.Count);
        Assert.Equal(3, results.Select(r => r.WorkerId).Distinct().Count());
        Assert.All(results, r => Assert.Equal("Succeeded", r.Status));
        var errors = outcomes.OfType<SleapRtcException>().ToList();
        Assert.Equal(17, errors.Count);
        Assert.All(errors, e => Assert.True(e is NoWorkersAvailableException or WorkerBusyException, e.GetType().Name + ": " + e.Message));
        Assert.Equal(3, jobs);
        Assert.Equal(0, overlap);
    }


    private sealed class ScriptedChooser : IWorkerChooser
    {
        public ConcurrentQueue<Func<string>> Answers { get; } = new();
        public ConcurrentQueue<string> Lines { get; } = new();
        public List<string> Prompts { get; } = new();

        public void WriteLine(string line) => Lines.Enqueue(line);

        public async Task<string?> ReadLineAsync(string prompt, TimeSpan timeout, CancellationToken cancellationToken)
        {
            Prompts.Add(prompt);
            if (Answers.TryDequeue(out var answer)) return answer();
            await Task.Delay(timeout < TimeSpan.FromSeconds(1) ? timeout : TimeSpan.FromSeconds(1), cancellationToken);
            return null;
        }
    }
}
