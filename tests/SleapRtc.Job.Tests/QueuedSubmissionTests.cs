using System.Collections.Concurrent;
using SleapRtc.Client.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Submit-SleapTraining -Queue as the library runs it, over the real server, workers and WebRTC: the ticket carries
/// the submission's requirements (-Tag, -MinGpuMemoryMB, -WorkerId), so the server hands it to the worker that
/// matches; and while it waits the submission reports its position (what the progress bar shows).
/// </summary>
public sealed class QueuedSubmissionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_queued_submission_goes_to_the_worker_its_requirements_name_and_shows_its_position_while_it_waits()
    {
        await using var room = await RoomFixture.StartAsync();
        // Registered first, so without requirements the server would pick it: it has neither the tag nor the memory.
        var plain = await room.StartWorkerAsync(gpuId: 2, nvidiaSmi: Fixtures.NvidiaSmi);                                   // 11,264 MB
        var (roomId, token) = (plain.Session.RoomId, plain.Session.Token);
        var tagged = await room.StartWorkerAsync(roomId, token, gpuId: 1, nvidiaSmi: Fixtures.NvidiaSmi,
            configure: o => o with { Tags = new[] { "a100" } });                                                                // 49,140 MB
        TrainingSubmission Queued(string name, int epochs, QueueOptions queue, long minGpu = 0, string? workerId = null) => new(new SubmissionOptions
        {
            PackagePath = Fixtures.BuildPackage(room.Root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) }),
            OutputPath = Path.Combine(room.Root, name), RoomId = roomId, Token = token, Server = room.Url, Queue = queue, MinGpuMemoryMB = minGpu,
            WorkerId = workerId, PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        });

        // A long job holds the tagged worker; a second ticket for that tag waits behind it although the plain worker is free.
        var first = Queued("first", 150, new QueueOptions { Tags = new[] { "a100" } });
        var firstRun = first.RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => tagged.Status == SleapRtc.WorkerStatus.Busy);
        var waiting = Queued("waiting", 1, new QueueOptions { Tags = new[] { "a100" } });
        var progress = new ConcurrentQueue<SubmissionProgress>();
        waiting.ProgressChanged += progress.Enqueue;
        var waitingRun = waiting.RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => progress.Any(p => p.Phase == SubmissionPhase.Queued && p.QueuePosition == 1));
        Assert.Equal("queued, position 1", progress.First(p => p.Phase == SubmissionPhase.Queued && p.QueuePosition == 1).Describe());
        Assert.Equal(SleapRtc.WorkerStatus.Available, plain.Status);

        // By memory and by pin: the big worker is busy, so these two wait for it or go to the plain one as they say.
        var pinned = await Queued("pinned", 1, new QueueOptions(), workerId: plain.Session.PeerId).RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(plain.Session.PeerId, pinned.WorkerId);
        var bigRun = Queued("big", 1, new QueueOptions(), minGpu: 40_000).RunAsync(CancellationToken.None);

        var results = await Task.WhenAll(firstRun, waitingRun, bigRun).WaitAsync(Wait);
        Assert.All(results, r => Assert.Equal(("Succeeded", tagged.Session.PeerId), (r.Status, r.WorkerId)));
    }
}
