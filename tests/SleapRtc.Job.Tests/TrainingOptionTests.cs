using System.IO.Compression;
using System.Text.Json;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Worker;
using SleapRtc.Worker.Gpu;
using SleapRtc.Worker.Jobs;
using Xunit;
using static SleapRtc.Job.Tests.DetachedJobTests;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Training overrides and resume from the hello, packages named on the worker's data root, and one worker per GPU
/// (issue 12): real worker, real server, our WebRTC stack, the stand-in trainer (which writes what reached it).
/// </summary>
public sealed class TrainingOptionTests
{
    private static async Task<JsonElement> TrainingArgsAsync(RoomFixture room, WorkerHost worker, string jobId, string entry)
    {
        var collected = await JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId, jobId,
            Path.Combine(room.Root, "collected-" + jobId), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);
        return JsonDocument.Parse(EntryText(collected.Files[0], entry)).RootElement;
    }

    /// <summary>The trainer runs at nice 10 (BelowNormal) unless the worker is told Normal: the stand-in records its niceness.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData(System.Diagnostics.ProcessPriorityClass.Normal)]
    public async Task The_trainer_runs_below_the_worker_unless_told_otherwise(System.Diagnostics.ProcessPriorityClass? priority)
    {
        if (!OperatingSystem.IsLinux()) return; // the niceness is read from /proc
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync(configure: o => priority is { } p ? o with { TrainerPriority = p } : o);
        var jobId = priority is null ? "job_0e440de00011" : "job_0e440de00012";
        var done = OutcomeOf(worker, () => jobId);

        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "nice", 1), jobId, null);
        Assert.Equal(WorkerJobEnd.Succeeded, (await done.WaitAsync(RoomFixture.Wait)).End);

        var args = await TrainingArgsAsync(room, worker, jobId, "centroid/training_args.json");
        // The worker (this test process) runs at its own niceness; BelowNormal is nice 10 whatever that is (up to 10).
        var own = int.Parse(File.ReadAllText("/proc/self/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[16]);
        Assert.Equal(priority is null ? Math.Max(10, own) : own, args.GetProperty("niceness").GetInt32());
    }

    [Fact]
    public async Task Overrides_from_the_hello_reach_every_trainer_command()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var jobId = "job_0e440de00001";
        var done = OutcomeOf(worker, () => jobId);
        var overrides = new TrainingOverrides { MaxEpochs = 2, BatchSize = 8, LearningRate = 0.005, RunName = "night" };

        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "ovr", 50), jobId, overrides);
        Assert.Equal(WorkerJobEnd.Succeeded, (await done.WaitAsync(RoomFixture.Wait)).End);

        var args = await TrainingArgsAsync(room, worker, jobId, "night/training_args.json");
        Assert.Equal(2, args.GetProperty("epochs").GetInt32()); // the override beat the config's 50
        Assert.Equal("8", args.GetProperty("batch_size").GetString());
        Assert.Equal("0.005", args.GetProperty("learning_rate").GetString());
        Assert.Equal("night", args.GetProperty("run_name").GetString());
        var argv = args.GetProperty("argv").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Contains("trainer_config.train_data_loader.batch_size=8", argv);
        Assert.Single(argv, a => a!.StartsWith("trainer_config.run_name=", StringComparison.Ordinal)); // replaced, not repeated
    }

    [Theory]
    [InlineData("{\"batch_size\":0}")]
    [InlineData("{\"max_epochs\":100001}")]
    [InlineData("{\"learning_rate\":0}")]
    [InlineData("{\"learning_rate\":10.5}")]
    [InlineData("{\"run_name\":\"../x\"}")]
    [InlineData("{\"resume_from\":\"..\"}")]
    public async Task An_override_out_of_range_is_refused_and_nothing_runs(string overridesJson)
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var ended = new TaskCompletionSource<WorkerJobOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.JobCompleted += o => ended.TrySetResult(o);
        var overrides = JsonSerializer.Deserialize<TrainingOverrides>(overridesJson, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;
        var logs = new List<string>();
        worker.LogLine += l => { lock (logs) logs.Add(l); };

        await using (var client = await RunClient.ConnectAsync(room, worker))
        {
            client.Begin("job_bad0000000001", overrides);
            var error = await client.WaitForAsync(JobMessages.Error);
            Assert.StartsWith(JobErrorCodes.BadOverride + "::", error);
        }

        Assert.Equal(WorkerJobEnd.Failed, (await ended.Task.WaitAsync(RoomFixture.Wait)).End);
        Assert.Empty(Directory.GetDirectories(worker.Session.WorkingDirectory!, "job_*"));
        lock (logs) Assert.DoesNotContain(logs, l => l.StartsWith("Training config", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Resume_from_a_checkpoint_sent_before_the_package()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var checkpoint = Path.Combine(room.Root, "resume-run1.zip");
        using (var zip = ZipFile.Open(checkpoint, ZipArchiveMode.Create))
        using (var writer = new StreamWriter(zip.CreateEntry("best.ckpt").Open()))
            writer.Write("RESUME-ME");
        var jobId = "job_4e5a3e000001";
        var done = OutcomeOf(worker, () => jobId);

        await using (var client = await RunClient.ConnectAsync(room, worker))
        {
            client.Begin(jobId, new TrainingOverrides { ResumeFrom = "run1" });
            await client.UploadAsync(checkpoint);
            await client.UploadAsync(Package(room, "resumed", 2));
            Assert.Equal(jobId, await client.WaitForAcceptedAsync());
        }
        Assert.Equal(WorkerJobEnd.Succeeded, (await done.WaitAsync(RoomFixture.Wait)).End);

        var args = await TrainingArgsAsync(room, worker, jobId, "centroid/training_args.json");
        Assert.Equal("RESUME-ME", args.GetProperty("resume_content").GetString());
        Assert.EndsWith(Path.Combine("resume", "run1", "best.ckpt"), args.GetProperty("resume_ckpt_path").GetString());
    }

    [Fact]
    public async Task A_package_named_under_the_data_root_trains_without_an_upload_and_its_results_stay_there()
    {
        await using var room = await RoomFixture.StartAsync();
        var dataRoot = Directory.CreateDirectory(Path.Combine(room.Root, "data")).FullName;
        Directory.CreateDirectory(Path.Combine(dataRoot, "pkgs"));
        var package = Package(room, "shared", 2);
        File.Copy(package, Path.Combine(dataRoot, "pkgs", "shared.zip"));
        var before = Sha256(Path.Combine(dataRoot, "pkgs", "shared.zip"));
        var worker = await room.StartWorkerAsync(configure: o => o with { DataRoot = dataRoot });
        var jobId = "job_da7a000000001";
        var done = OutcomeOf(worker, () => jobId);

        await using (var client = await RunClient.ConnectAsync(room, worker))
        {
            client.Begin(jobId, workerPackagePath: "pkgs/shared.zip");
            Assert.Equal(jobId, await client.WaitForAcceptedAsync());
        }

        Assert.Equal(WorkerJobEnd.Succeeded, (await done.WaitAsync(RoomFixture.Wait)).End);
        Assert.Equal(before, Sha256(Path.Combine(dataRoot, "pkgs", "shared.zip"))); // the user's package is never moved or deleted
        Assert.StartsWith("STANDIN-CHECKPOINT", EntryText(Path.Combine(dataRoot, "jobs", jobId, "trained_shared.zip"), "centroid/best.ckpt"));
        Assert.True(worker.Results.Contains(jobId)); // and downloadable as well
    }

    [Fact]
    public async Task A_worker_package_path_leading_out_of_the_data_root_is_refused_and_nothing_is_touched()
    {
        await using var room = await RoomFixture.StartAsync();
        var dataRoot = Directory.CreateDirectory(Path.Combine(room.Root, "data")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(room.Root, "outside")).FullName;
        var secret = Package(room, "secret", 2);
        File.Copy(secret, Path.Combine(outside, "secret.zip"));
        File.CreateSymbolicLink(Path.Combine(dataRoot, "link.zip"), Path.Combine(outside, "secret.zip"));
        Directory.CreateSymbolicLink(Path.Combine(dataRoot, "linkdir"), outside);
        var worker = await room.StartWorkerAsync(configure: o => o with { DataRoot = dataRoot });
        string Snapshot() => string.Join("\n", new[] { dataRoot, outside }.SelectMany(d => Directory.EnumerateFileSystemEntries(d, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            .OrderBy(p => p, StringComparer.Ordinal).Select(p => $"{p} {File.GetLastWriteTimeUtc(p).Ticks} {(File.Exists(p) ? new FileInfo(p).Length : -1)}"));
        var before = Snapshot();

        foreach (var path in new[] { "../outside/secret.zip", Path.Combine(outside, "secret.zip"), "link.zip", "linkdir/secret.zip", "missing.zip", "pkgs/../../outside/secret.zip" })
        {
            await using var client = await RunClient.ConnectAsync(room, worker);
            client.Begin(workerPackagePath: path);
            var error = await client.WaitForAsync(JobMessages.Error);
            Assert.StartsWith(JobErrorCodes.BadWorkerPath + "::", error);
            await client.DisposeAsync();
            await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        }

        Assert.Equal(before, Snapshot());
        Assert.Empty(Directory.GetDirectories(worker.Session.WorkingDirectory!, "job_*"));
    }

    [Fact]
    public async Task Without_a_data_root_a_worker_package_path_is_refused()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        await using var client = await RunClient.ConnectAsync(room, worker);
        client.Begin(workerPackagePath: "pkgs/x.zip");
        Assert.Contains("no data root", await client.WaitForAsync(JobMessages.Error));
    }

    [Fact]
    public async Task GpuId_all_starts_one_worker_per_gpu_on_one_machine()
    {
        await using var room = await RoomFixture.StartAsync();
        var plan = WorkerMachine.Plan(new[] { "all" }, Fixtures.NvidiaSmi, TimeSpan.FromSeconds(10));
        Assert.Equal(new[] { 0, 1, 2 }, plan.GpuIds);
        Assert.Null(plan.Warning);

        var hosts = await WorkerMachine.StartAsync(room.Options(nvidiaSmi: Fixtures.NvidiaSmi), plan.GpuIds, CancellationToken.None).WaitAsync(RoomFixture.Wait);
        room.Track(hosts);

        Assert.Equal(3, hosts.Select(h => h.Session.PeerId).Distinct().Count());
        Assert.Single(hosts.Select(h => h.Session.RoomId).Distinct());
        Assert.Equal(new[] { 0, 1, 2 }, hosts.Select(h => h.Session.GpuId ?? -1));
        var discovered = await WorkerDiscovery.DiscoverAsync(room.Room(hosts[0]), new WorkerFilter { Status = null }, null, CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal(3, discovered.Count); // still one WorkerInfo per worker
        Assert.All(discovered, w => Assert.Equal(Environment.MachineName, w.Properties[PeerMetadataKeys.MachineId]?.ToString()));
    }

    [Fact]
    public void GpuId_plans_without_nvidia_smi_and_with_a_list()
    {
        var cpu = WorkerMachine.Plan(new[] { "all" }, "/nonexistent/nvidia-smi", TimeSpan.FromSeconds(5));
        Assert.Equal(new[] { 0 }, cpu.GpuIds); // no GPU: one CPU worker, with a warning that says why
        Assert.Contains("nvidia-smi was not found", cpu.Warning);

        Assert.Equal(new[] { 0, 2 }, WorkerMachine.Plan(new[] { "0", "2" }, Fixtures.NvidiaSmi, TimeSpan.FromSeconds(10)).GpuIds);
        Assert.Equal(new[] { 0 }, WorkerMachine.Plan(new[] { "0" }, "/nonexistent/nvidia-smi", TimeSpan.FromSeconds(5)).GpuIds); // as before: a CPU worker
        var none = Assert.Throws<GpuNotFoundException>(() => WorkerMachine.Plan(new[] { "0", "1" }, "/nonexistent/nvidia-smi", TimeSpan.FromSeconds(5)));
        Assert.Equal("GpuNotFound", none.ErrorId);
        var missing = Assert.Throws<GpuNotFoundException>(() => WorkerMachine.Plan(new[] { "0", "7" }, Fixtures.NvidiaSmi, TimeSpan.FromSeconds(10)));
        Assert.Equal(7, missing.GpuId);
        Assert.Throws<ArgumentException>(() => WorkerMachine.Plan(new[] { "two" }, Fixtures.NvidiaSmi, TimeSpan.FromSeconds(10)));
    }
}
