using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;
using SleapRtc.Worker.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Jobs that outlive their client (issue 12), with a real worker, real server, our WebRTC stack and the stand-in trainer:
/// the job runs on after its client left, its results are kept (age and size retention) and collected from a new
/// connection, even while the worker trains another job.
/// </summary>
public sealed class DetachedJobTests
{
    internal static Task<WorkerJobOutcome> OutcomeOf(WorkerHost worker, Func<string> jobId)
    {
        var ended = new TaskCompletionSource<WorkerJobOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.JobCompleted += o => { if (o.JobId == jobId()) ended.TrySetResult(o); };
        return ended.Task;
    }

    internal static string Package(RoomFixture room, string name, int epochs) =>
        Fixtures.BuildPackage(room.Root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) });

    internal static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    internal static string KeptFile(WorkerHost worker, string jobId, string name)
    {
        Assert.True(worker.Results.TryOpen(jobId, out _, out var folder, out var lease));
        lease!.Dispose();
        return Path.Combine(folder!, name);
    }

    internal static string EntryText(string zip, string entry)
    {
        using var archive = ZipFile.OpenRead(zip);
        using var reader = new StreamReader((archive.GetEntry(entry) ?? throw new Xunit.Sdk.XunitException($"{entry} not in {zip}: " +
            string.Join(", ", archive.Entries.Select(e => e.FullName)))).Open());
        return reader.ReadToEnd();
    }

    [Fact]
    public async Task A_job_whose_client_left_after_ACCEPTED_succeeds_and_a_new_connection_collects_its_models()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        const string clientJobId = "job_0123456789ab";
        var outcome = OutcomeOf(worker, () => clientJobId);

        var accepted = await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "labels.v001", 20), clientJobId);
        Assert.Equal(clientJobId, accepted); // the worker adopted the client's job id

        Assert.Equal(WorkerJobEnd.Succeeded, (await outcome.WaitAsync(RoomFixture.Wait)).End);
        var kept = KeptFile(worker, clientJobId, "trained_labels.v001.zip");
        var keptSha = Sha256(kept);

        var collected = await JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId, clientJobId,
            Path.Combine(room.Root, "collected"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);

        Assert.Equal("Succeeded", collected.State);
        Assert.Equal(new[] { "trained_labels.v001.zip", WorkerJobSession.JobLogName }, collected.Files.Select(Path.GetFileName));
        Assert.Equal(keptSha, Sha256(collected.Files[0])); // byte-identical (and SHA-256 checked on the way)
        Assert.StartsWith("STANDIN-CHECKPOINT", EntryText(collected.Files[0], "centroid/best.ckpt"));
        Assert.Contains("Training config 1 of 1", File.ReadAllText(collected.Files[1]));
        // Collected: the worker's copy is gone.
        await Fixtures.WaitUntilAsync(() => !worker.Results.Contains(clientJobId) && !Directory.Exists(Path.GetDirectoryName(kept)));
        await Assert.ThrowsAsync<JobResultsNotFoundException>(() => JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId, clientJobId,
            Path.Combine(room.Root, "again"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait));
    }

    [Fact]
    public async Task Collecting_a_job_the_worker_does_not_hold_is_job_not_found()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var error = await Assert.ThrowsAsync<JobResultsNotFoundException>(() => JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId,
            "job_ffffffffffff", Path.Combine(room.Root, "none"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait));
        Assert.Equal("JobNotFound", error.ErrorId);
        Assert.Contains("job_ffffffffffff", error.Message);
        Assert.Equal(WorkerStatus.Available, worker.Status); // a collection never reserves the worker
    }

    [Fact]
    public async Task A_finished_job_is_collected_while_the_worker_trains_another()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var first = "job_00000000000a";
        var firstDone = OutcomeOf(worker, () => first);
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "first", 5), first);
        await firstDone.WaitAsync(RoomFixture.Wait);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);

        var training = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.ProgressChanged += p => { if (p.JobId == "job_00000000000b" && p.Epoch >= 1) training.TrySetResult(); };
        var second = await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "second", 100_000), "job_00000000000b");
        await training.Task.WaitAsync(RoomFixture.Wait);
        Assert.Equal(WorkerStatus.Busy, worker.Status);

        var collected = await JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId, first,
            Path.Combine(room.Root, "collected"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);

        Assert.Equal("Succeeded", collected.State);
        Assert.StartsWith("STANDIN-CHECKPOINT", EntryText(collected.Files[0], "centroid/best.ckpt"));
        Assert.Equal(WorkerStatus.Busy, worker.Status); // the other job trains on
        Assert.True(worker.CancelJob(second, keepCheckpoint: false));
    }

    [Fact]
    public async Task Kept_results_expire_by_age()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync(configure: o => o with { ResultRetention = TimeSpan.FromSeconds(3), ResultSweepInterval = TimeSpan.FromMilliseconds(200) });
        var jobId = "job_a9e000000001";
        var done = OutcomeOf(worker, () => jobId);
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "aged", 3), jobId);
        await done.WaitAsync(RoomFixture.Wait);
        var folder = Path.GetDirectoryName(KeptFile(worker, jobId, WorkerJobSession.JobLogName))!;

        await Fixtures.WaitUntilAsync(() => !worker.Results.Contains(jobId) && !Directory.Exists(folder));
    }

    [Fact]
    public async Task Over_the_quota_the_oldest_results_go_first()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync(configure: o => o with { ResultQuotaBytes = 1 });
        var (older, newer) = ("job_01d000000001", "job_0e0000000002");
        var olderDone = OutcomeOf(worker, () => older);
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "older", 3), older);
        await olderDone.WaitAsync(RoomFixture.Wait);
        Assert.True(worker.Results.Contains(older)); // alone, the newest results stay even over the quota
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);

        var newerDone = OutcomeOf(worker, () => newer);
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "newer", 3), newer);
        await newerDone.WaitAsync(RoomFixture.Wait);

        Assert.False(worker.Results.Contains(older));
        Assert.True(worker.Results.Contains(newer));
        Assert.False(Directory.Exists(Path.Combine(worker.Session.WorkingDirectory!, older)));
    }

    [Fact]
    public async Task A_worker_restarted_in_the_same_working_directory_still_serves_kept_results()
    {
        await using var room = await RoomFixture.StartAsync();
        var directory = Path.Combine(room.Root, "shared-work");
        var worker = await room.StartWorkerAsync(workingDirectory: directory);
        var jobId = "job_4e57a4700001";
        var done = OutcomeOf(worker, () => jobId);
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "restart", 3), jobId);
        await done.WaitAsync(RoomFixture.Wait);
        await worker.StopAsync();

        var restarted = await room.StartWorkerAsync(worker.Session.RoomId, worker.Session.Token, workingDirectory: directory);
        Assert.True(restarted.Results.Contains(jobId));
        var collected = await JobCollection.CollectAsync(room.Room(restarted), restarted.Session.PeerId, jobId,
            Path.Combine(room.Root, "collected"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal("Succeeded", collected.State);
    }

    [Fact]
    public async Task Cancel_with_keep_checkpoint_stops_early_and_keeps_the_best_checkpoint_as_the_result()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var jobId = "job_5709000000c1";
        var done = OutcomeOf(worker, () => jobId);
        var epochs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.ProgressChanged += p => { if (p.JobId == jobId && p.Epoch >= 3) epochs.TrySetResult(); };
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "stopme", 100_000), jobId);
        await epochs.Task.WaitAsync(RoomFixture.Wait);

        Assert.True(worker.CancelJob(jobId, keepCheckpoint: true));
        var outcome = await done.WaitAsync(RoomFixture.Wait);

        Assert.Equal(WorkerJobEnd.Cancelled, outcome.End);
        Assert.True(worker.Results.Contains(jobId));
        var collected = await JobCollection.CollectAsync(room.Room(worker), worker.Session.PeerId, jobId,
            Path.Combine(room.Root, "collected"), RunClient.CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal("Cancelled", collected.State);
        Assert.StartsWith("STANDIN-CHECKPOINT epoch=", EntryText(collected.Files[0], "centroid/best.ckpt"));
        var args = JsonDocument.Parse(EntryText(collected.Files[0], "centroid/training_args.json")).RootElement;
        Assert.True(args.GetProperty("stopped_early").GetBoolean()); // SIGINT reached the trainer: a graceful stop, not a kill
        Assert.InRange(args.GetProperty("epochs_completed").GetInt32(), 2, 99_999); // stopped mid-way, after the epochs seen
    }

    [Fact]
    public async Task Cancel_without_keep_checkpoint_kills_the_trainer_and_keeps_nothing()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var jobId = "job_5709000000c2";
        var done = OutcomeOf(worker, () => jobId);
        var training = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.ProgressChanged += p => { if (p.JobId == jobId && p.Epoch >= 1) training.TrySetResult(); };
        await RunClient.SubmitAndLeaveAsync(room, worker, Package(room, "killme", 100_000), jobId);
        await training.Task.WaitAsync(RoomFixture.Wait);

        Assert.True(worker.CancelJob(jobId, keepCheckpoint: false));
        Assert.Equal(WorkerJobEnd.Cancelled, (await done.WaitAsync(RoomFixture.Wait)).End);
        Assert.False(worker.Results.Contains(jobId));
        Assert.False(Directory.Exists(Path.Combine(worker.Session.WorkingDirectory!, jobId)));
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        Assert.False(worker.CancelJob(jobId, keepCheckpoint: false));
    }
}
