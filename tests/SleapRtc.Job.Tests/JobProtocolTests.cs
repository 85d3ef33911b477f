using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>The training job over a data channel: our client and worker, and a classic client, end to end
/// with the stand-in trainer (over the test-only in-process channel pair).</summary>
public sealed class JobProtocolTests
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    static JobProtocolTests()
    {
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.02");
    }

    private static WorkerJobOptions WorkerOptions(string jobsDir, TimeSpan? idle = null) => new()
    {
        JobsDirectory = jobsDir,
        TrainerPath = Fixtures.SleapNn,
        IdleTimeout = idle ?? TimeSpan.FromSeconds(25),
        ResultsDrainTimeout = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task Our_client_and_worker_train_every_config_and_return_the_models()
    {
        var dir = Fixtures.NewTempDirectory("e2e");
        var package = Fixtures.BuildPackage(dir, "labels.v001", new Dictionary<string, string>
        {
            ["centroid.json"] = Fixtures.Config(3),
            ["centered_instance.json"] = Fixtures.Config(2),
        }, extraBytes: 1_000_000);
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        var started = 0;
        var workerProgress = new ConcurrentBag<(int Config, int Epoch, int Count)>();
        worker.JobStarted += () => Interlocked.Increment(ref started);
        var packageNames = new ConcurrentBag<string?>();
        worker.ProgressChanged += p => { workerProgress.Add((p.ConfigIndex, p.Epoch, p.EpochCount)); packageNames.Add(p.PackageName); };
        var client = new ClientJobSession(pair.Client, "worker-1", useExtensions: true);
        var clientProgress = new ConcurrentQueue<SubmissionProgress>();
        var logs = new ConcurrentQueue<string>();
        client.ProgressChanged += clientProgress.Enqueue;
        client.LogLine += logs.Enqueue;

        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var outcome = await client.RunAsync(package, Path.Combine(dir, "out"), cts.Token);
        await pair.Client.CloseAsync(CancellationToken.None);
        var workerOutcome = await workerRun;

        Assert.Equal(new[] { "centroid", "centered_instance" }, outcome.Configs);
        Assert.Empty(outcome.FailedConfigs);
        Assert.Equal(WorkerJobEnd.Succeeded, workerOutcome.End);
        Assert.Equal(1, started);
        Assert.True(worker.ExtensionsEnabled);
        Assert.Equal(worker.JobId, client.WorkerJobId);
        Assert.Equal("trained_labels.v001.zip", outcome.ResultArchiveName);
        // The models land in the job's own folder under the output path, named after the package, the time and the job.
        Assert.Equal(Path.Combine(dir, "out"), Path.GetDirectoryName(outcome.OutputPath));
        Assert.Matches(@"^labels\.v001-\d{8}-\d{6}-\w+$", Path.GetFileName(outcome.OutputPath));
        Assert.True(File.Exists(Path.Combine(outcome.OutputPath!, "centroid", "best.ckpt")));
        Assert.True(File.Exists(Path.Combine(outcome.OutputPath!, "centered_instance", "best.ckpt")));
        Assert.Equal(new FileInfo(package).Length, outcome.UploadedBytes);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "out"), "*.partial", SearchOption.AllDirectories));

        // The trainer got the classic overrides.
        using var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(outcome.OutputPath!, "centroid", "training_args.json")));
        var argv = args.RootElement.GetProperty("argv").EnumerateArray().Select(e => e.GetString()).ToArray();
        Assert.Contains("trainer_config.ckpt_dir=models", argv);
        Assert.Contains("trainer_config.run_name=centroid", argv);
        Assert.Contains("trainer_config.zmq.controller_port=9000", argv);

        // Structured progress: config i of n, epoch e of E, losses; and the job folder is gone.
        Assert.Contains(workerProgress, p => p == (1, 3, 3));
        Assert.Contains(workerProgress, p => p == (2, 2, 2));
        Assert.Contains("labels.v001.zip", packageNames);
        Assert.Contains(clientProgress, p => p.Phase == SubmissionPhase.Training && p.Job is { ConfigIndex: 2, ConfigCount: 2, Epoch: 2, EpochCount: 2, Loss: > 0 });
        Assert.Contains(clientProgress, p => p.Phase == SubmissionPhase.Uploading && p.BytesDone == p.BytesTotal);
        Assert.Contains(logs, l => l.Contains("Saved checkpoint"));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")));
    }

    /// <summary>Feature "release": our client confirms the results (SLEAPRTC_COLLECTED) and returns only once the worker has
    /// ended the job on its host (a host turns available there, acknowledged by the server) and said SLEAPRTC_RELEASED; the
    /// worker's session then ends without waiting for the client to close.</summary>
    [Fact]
    public async Task Our_client_returns_only_once_the_worker_has_released_itself()
    {
        var dir = Fixtures.NewTempDirectory("release");
        var package = Fixtures.BuildPackage(dir, "labels.v001", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) });
        await using var pair = new InProcessChannelPair();
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var worker = new WorkerJobSession(pair.Worker, new WorkerJobOptions
        {
            JobsDirectory = Path.Combine(dir, "jobs"), TrainerPath = Fixtures.SleapNn, ResultsDrainTimeout = TimeSpan.FromSeconds(5),
            ReleaseWorkerAsync = async () =>
            {
                await Task.Delay(300);
                released.TrySetResult();
            },
        });
        var fromClient = new ConcurrentQueue<string>();
        pair.Worker.MessageReceived += m => { if (m.IsText) fromClient.Enqueue(m.Text!); };
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);

        var outcome = await client.RunAsync(package, Path.Combine(dir, "out"), cts.Token);

        Assert.True(released.Task.IsCompleted, "the client returned before the worker had released itself");
        Assert.True(File.Exists(Path.Combine(outcome.OutputPath!, "centroid", "best.ckpt")));
        Assert.Contains(fromClient, t => t == $"SLEAPRTC_COLLECTED::{{\"job_id\":\"{worker.JobId}\"}}");
        var workerOutcome = await workerRun.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(WorkerJobEnd.Succeeded, workerOutcome.End);
        Assert.Equal(DataChannelState.Open, pair.Client.State); // the worker's session did not wait for the client to close
    }

    [Fact]
    public async Task A_failing_config_is_reported_and_the_rest_still_train()
    {
        var dir = Fixtures.NewTempDirectory("failcfg");
        var package = Fixtures.BuildPackage(dir, "pkg", new Dictionary<string, string>
        {
            ["broken.json"] = "{ this is not json",
            ["good.json"] = Fixtures.Config(1),
        }, scriptCommand: "sleap-nn-train");
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var outcome = await client.RunAsync(package, Path.Combine(dir, "out"), cts.Token);
        await pair.Client.CloseAsync(CancellationToken.None);
        var workerOutcome = await workerRun;

        Assert.Equal(new[] { "broken" }, outcome.FailedConfigs);
        Assert.Equal(WorkerJobEnd.Failed, workerOutcome.End);
        Assert.Equal(1, workerOutcome.FailedConfigs);
        Assert.True(File.Exists(Path.Combine(outcome.OutputPath!, "good", "best.ckpt")));
    }

    [Fact]
    public async Task A_classic_client_drives_our_worker_and_never_sees_an_extension()
    {
        var dir = Fixtures.NewTempDirectory("classic");
        var package = Fixtures.BuildPackage(dir, "labels.v002", new Dictionary<string, string> { ["single_instance.json"] = Fixtures.Config(2) }, scriptCommand: "sleap-train");
        await using var pair = new InProcessChannelPair();
        // Classic clients never close the channel after the results: the worker must end the job by itself.
        var options = WorkerOptions(Path.Combine(dir, "jobs"));
        var worker = new WorkerJobSession(pair.Worker, new WorkerJobOptions
        {
            JobsDirectory = options.JobsDirectory, TrainerPath = options.TrainerPath, ResultsDrainTimeout = TimeSpan.FromSeconds(1),
        });
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);

        var received = new ConcurrentQueue<string>();
        var resultBytes = new MemoryStream();
        var resultDone = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? resultMeta = null;
        pair.Client.MessageReceived += m =>
        {
            if (m.IsText)
            {
                received.Enqueue(m.Text!);
                if (m.Text!.StartsWith("FILE_META::")) resultMeta = m.Text;
                if (m.Text == "END_OF_FILE") resultDone.TrySetResult(resultMeta!);
            }
            else if (!JobMessages.IsKeepAlive(m.Binary.Span)) resultBytes.Write(m.Binary.Span);
        };

        // Exactly what classic client_class.py sends (§5.2).
        var bytes = await File.ReadAllBytesAsync(package);
        pair.Client.Send("PACKAGE_TYPE::train");
        pair.Client.Send("OUTPUT_DIR::models");
        pair.Client.Send($"FILE_META::labels.v002.zip:{bytes.Length}:False");
        for (var offset = 0; offset < bytes.Length; offset += 65536)
            pair.Client.Send(bytes.AsSpan(offset, Math.Min(65536, bytes.Length - offset)));
        pair.Client.Send("END_OF_FILE");

        var meta = await resultDone.Task.WaitAsync(TestTimeout);
        var workerOutcome = await workerRun.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(WorkerJobEnd.Succeeded, workerOutcome.End);
        Assert.False(worker.ExtensionsEnabled);
        Assert.DoesNotContain(received, t => t.StartsWith("SLEAPRTC_"));
        var texts = received.ToList();
        var start = texts.IndexOf("TRAIN_JOB_START::single_instance");
        var end = texts.IndexOf("TRAIN_JOB_END::single_instance");
        var done = texts.IndexOf("TRAINING_JOBS_DONE");
        Assert.True(start >= 0 && start < end && end < done, string.Join(" | ", texts.Take(20)));
        Assert.Contains(texts, t => t.StartsWith("\rEpoch 1:"));
        Assert.Contains(texts, t => t.EndsWith("\n") && t.Contains("Saved checkpoint"));
        Assert.Equal($"FILE_META::trained_labels.v002.zip:{resultBytes.Length}:models", meta);
        var resultZip = Path.Combine(dir, "result.zip");
        await File.WriteAllBytesAsync(resultZip, resultBytes.ToArray());
        PackageArchive.ExtractSafely(resultZip, Path.Combine(dir, "out"));
        Assert.True(File.Exists(Path.Combine(dir, "out", "single_instance", "best.ckpt")));
    }

    [Fact]
    public async Task A_corrupted_upload_is_caught_by_the_checksum()
    {
        var dir = Fixtures.NewTempDirectory("checksum");
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.Client.MessageReceived += m => { if (m.IsText && m.Text!.StartsWith("SLEAPRTC_ERROR::")) error.TrySetResult(m.Text); };

        pair.Client.Send(JobExtensions.HelloMessage());
        pair.Client.Send("PACKAGE_TYPE::train");
        pair.Client.Send("FILE_META::p.zip:4:False");
        pair.Client.Send("abcd"u8);
        pair.Client.Send("SLEAPRTC_SHA256::" + new string('0', 64));
        pair.Client.Send("END_OF_FILE");

        var message = await error.Task.WaitAsync(TestTimeout);
        Assert.StartsWith("SLEAPRTC_ERROR::checksum_mismatch::", message);
        await pair.Client.CloseAsync(CancellationToken.None);
        Assert.Equal(WorkerJobEnd.Failed, (await workerRun).End);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")));
    }

    [Fact]
    public async Task A_hostile_package_fails_with_a_clear_error_at_the_client()
    {
        var dir = Fixtures.NewTempDirectory("hostile-job");
        var zipPath = Path.Combine(dir, "evil.zip");
        using (var zip = System.IO.Compression.ZipFile.Open(zipPath, System.IO.Compression.ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("evil/../../../escape.sh").Open()) s.WriteByte(1);
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);

        var error = await Assert.ThrowsAsync<JobFailedException>(() => client.RunAsync(zipPath, Path.Combine(dir, "out"), cts.Token));
        Assert.Equal(JobErrorCodes.BadPackage, error.Code);
        Assert.Contains("zip-slip", error.Message);
        Assert.Equal("TrainingJobFailed", error.ErrorId);
        await pair.Client.CloseAsync(CancellationToken.None);
        Assert.Equal(WorkerJobEnd.Failed, (await workerRun).End);
        Assert.False(File.Exists(Path.Combine(dir, "escape.sh")));
    }

    [Fact]
    public async Task Cancel_kills_the_trainer_process_tree_and_cleans_up()
    {
        var dir = Fixtures.NewTempDirectory("cancel");
        var package = Fixtures.BuildPackage(dir, "slow", new Dictionary<string, string> { ["slow.json"] = Fixtures.Config(1000) });
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        var pid = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.LogLine += l => { if (l.StartsWith("INFO: pid=")) pid.TrySetResult(int.Parse(l.Substring("INFO: pid=".Length))); };
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);
        using var testTimeout = new CancellationTokenSource(TestTimeout);
        using var userCancel = CancellationTokenSource.CreateLinkedTokenSource(testTimeout.Token);
        var workerRun = worker.RunAsync(testTimeout.Token);
        var clientRun = client.RunAsync(package, Path.Combine(dir, "out"), userCancel.Token);

        var trainerPid = await pid.Task.WaitAsync(TestTimeout);
        userCancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => clientRun);
        var outcome = await workerRun.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WorkerJobEnd.Cancelled, outcome.End);
        Assert.True(ProcessIsGone(trainerPid), "the trainer process is still running");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")));
    }

    [Fact]
    public async Task The_worker_survives_a_client_vanishing_during_the_upload()
    {
        var dir = Fixtures.NewTempDirectory("vanish");
        var package = Fixtures.BuildPackage(dir, "v", new Dictionary<string, string> { ["v.json"] = Fixtures.Config(1000) }, extraBytes: 3_000_000);
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        var uploading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);
        client.ProgressChanged += p => { if (p.Phase == SubmissionPhase.Uploading && p.BytesDone > 0) uploading.TrySetResult(); };
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var clientRun = client.RunAsync(package, Path.Combine(dir, "out"), cts.Token);

        await uploading.Task.WaitAsync(TestTimeout);
        var clock = Stopwatch.StartNew();
        pair.Sever();
        var outcome = await workerRun.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(WorkerJobEnd.ClientGone, outcome.End);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
        // The upload may be severed before the worker saw its FILE_META (then no job folder was ever made).
        Assert.True(!Directory.Exists(Path.Combine(dir, "jobs")) || Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")).Length == 0);
        var lost = await Assert.ThrowsAsync<WorkerLostException>(() => clientRun);
        Assert.Equal("WorkerLost", lost.ErrorId);
    }

    /// <summary>Issue 12: once accepted, the job no longer needs its client; a cancel still ends it and cleans up.</summary>
    [Fact]
    public async Task An_accepted_job_trains_on_when_its_client_vanishes()
    {
        var dir = Fixtures.NewTempDirectory("vanish");
        var package = Fixtures.BuildPackage(dir, "v", new Dictionary<string, string> { ["v.json"] = Fixtures.Config(1000) });
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, WorkerOptions(Path.Combine(dir, "jobs")));
        var training = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.ProgressChanged += p => { if (p.Epoch >= 1) training.TrySetResult(); };
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);
        using var cts = new CancellationTokenSource(TestTimeout);
        var workerRun = worker.RunAsync(cts.Token);
        var clientRun = client.RunAsync(package, Path.Combine(dir, "out"), cts.Token);

        await training.Task.WaitAsync(TestTimeout);
        Assert.True(worker.Accepted);
        pair.Sever();
        await Assert.ThrowsAsync<WorkerLostException>(() => clientRun);
        await Task.Delay(1000);
        Assert.False(workerRun.IsCompleted, "the accepted job ended with its client");

        worker.Cancel(keepCheckpoint: false);
        Assert.Equal(WorkerJobEnd.Cancelled, (await workerRun.WaitAsync(TimeSpan.FromSeconds(30))).End);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")));
    }

    [Fact]
    public async Task A_silent_worker_is_declared_lost_by_the_client()
    {
        var dir = Fixtures.NewTempDirectory("silent");
        var package = Fixtures.BuildPackage(dir, "s", new Dictionary<string, string> { ["s.json"] = Fixtures.Config(1) });
        await using var pair = new InProcessChannelPair();
        // Nobody answers on the worker end: the upload completes, then nothing comes back.
        var client = new ClientJobSession(pair.Client, "mute-worker", useExtensions: false,
            new ClientJobOptions { IdleTimeout = TimeSpan.FromMilliseconds(600), KeepAliveInterval = TimeSpan.FromMilliseconds(200) });
        using var cts = new CancellationTokenSource(TestTimeout);
        var clock = Stopwatch.StartNew();
        var lost = await Assert.ThrowsAsync<WorkerLostException>(() => client.RunAsync(package, Path.Combine(dir, "out"), cts.Token));
        Assert.Contains("mute-worker", lost.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    private static bool ProcessIsGone(int pid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                if (p.HasExited) return true;
            }
            catch (ArgumentException) { return true; }
            Thread.Sleep(50);
        }
        return false;
    }
}
