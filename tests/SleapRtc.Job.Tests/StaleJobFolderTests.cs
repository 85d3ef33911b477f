using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Worker.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>Job folders a killed worker left behind are removed when a worker starts in the same directory.</summary>
[Collection(nameof(ChildProcessCollection))]
public sealed class StaleJobFolderTests
{
    [Fact]
    public async Task A_worker_restarted_after_kill_9_mid_job_removes_the_stale_job_folder()
    {
        await using var room = await RoomFixture.StartAsync();
        var host = await room.StartWorkerAsync();
        var workingDirectory = Path.Combine(room.Root, "shared-workdir");
        Directory.CreateDirectory(workingDirectory);
        File.WriteAllText(Path.Combine(workingDirectory, "notes.txt"), "not ours"); // nothing but job folders is touched
        Directory.CreateDirectory(Path.Combine(workingDirectory, "my-data"));
        using var victim = PeerProcesses.StartWorker(room, host.Session.RoomId, host.Session.Token, workingDirectory);
        var package = PeerProcesses.LargePackage(room.Root, 100_000, 5);
        var training = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = package, OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = room.Transport,
            PeerConnection = RoomFixture.Loopback, RoomId = host.Session.RoomId, Token = host.Session.Token, Server = room.Url,
            WorkerId = victim.Ready,
        });
        submission.ProgressChanged += p => { if (p.Job is { Epoch: >= 1 }) training.TrySetResult(); };
        var run = submission.RunAsync(CancellationToken.None);
        await Task.WhenAny(training.Task, run).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(training.Task.IsCompleted, "the job never started training");

        victim.KillHard();
        var stale = Assert.Single(Directory.GetDirectories(workingDirectory, "job_*"));
        Assert.True(Directory.EnumerateFiles(stale, "*", SearchOption.AllDirectories).Any());
        await Assert.ThrowsAnyAsync<Exception>(() => run.WaitAsync(TimeSpan.FromSeconds(40)));

        var restarted = await room.StartWorkerAsync(workingDirectory: workingDirectory);
        Assert.False(Directory.Exists(stale), "the killed worker's job folder is still there");
        Assert.True(File.Exists(Path.Combine(workingDirectory, "notes.txt")));
        Assert.True(Directory.Exists(Path.Combine(workingDirectory, "my-data")));
        Assert.Equal(WorkerStatus.Available, restarted.Status);
    }

    [Fact]
    public void Folders_of_live_jobs_and_folders_the_retention_keeps_survive()
    {
        var jobs = Fixtures.NewTempDirectory("stale");
        using var live = FolderLock.Acquire(Path.Combine(jobs, "job_live"), FolderLock.JobMarker);
        StaleFolder(jobs, "job_dead");
        StaleFolder(jobs, "job_kept");
        var retention = new KeepNamed("job_kept");

        var removed = FolderLock.RemoveStaleJobFolders(jobs, retention, siblingWorkers: false, Log.Null);

        Assert.Equal(Path.Combine(jobs, "job_dead"), Assert.Single(removed));
        Assert.True(Directory.Exists(Path.Combine(jobs, "job_live")));
        Assert.True(Directory.Exists(Path.Combine(jobs, "job_kept")));
    }

    [Fact]
    public void Default_working_directories_of_dead_workers_are_removed_and_live_ones_kept()
    {
        var parent = Fixtures.NewTempDirectory("default-parent");
        var mine = Path.Combine(parent, "worker-me");
        using var myClaim = FolderLock.Acquire(mine, FolderLock.WorkerMarker, removeFolderWhenEmpty: true);
        var alive = Path.Combine(parent, "worker-alive");
        using var aliveClaim = FolderLock.Acquire(alive, FolderLock.WorkerMarker, removeFolderWhenEmpty: true);
        StaleFolder(alive, "job_running_elsewhere"); // its worker lives: not judged from outside
        var dead = Path.Combine(parent, "worker-dead");
        StaleFolder(dead, "job_orphan");
        File.WriteAllText(Path.Combine(dead, FolderLock.WorkerMarker), "12345\n"); // marker of a process that died

        FolderLock.RemoveStaleJobFolders(mine, JobFolderRetention.KeepNothing, siblingWorkers: true, Log.Null);

        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(Path.Combine(alive, "job_running_elsewhere")));
        aliveClaim.Dispose();
        myClaim.Dispose();
        Assert.False(Directory.Exists(mine), "a stopped worker's empty default folder is removed");
    }

    private static void StaleFolder(string parent, string name)
    {
        var folder = Path.Combine(parent, name);
        Directory.CreateDirectory(Path.Combine(folder, "package"));
        File.WriteAllText(Path.Combine(folder, "package", "labels.slp"), "x");
        File.WriteAllText(Path.Combine(folder, FolderLock.JobMarker), "999999\n");
    }

    private sealed class KeepNamed(string name) : IJobFolderRetention
    {
        public bool Keep(StaleJobFolder folder) => Path.GetFileName(folder.Path) == name;
    }
}

/// <summary>Tests that run peers in child processes and time what they notice: alone, so the bounds measure SleapRtc and not the other tests.</summary>
[CollectionDefinition(nameof(ChildProcessCollection), DisableParallelization = true)]
public sealed class ChildProcessCollection
{
}
