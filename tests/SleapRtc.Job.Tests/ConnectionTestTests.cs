using SleapRtc.Client.Diagnostics;
using SleapRtc.Client.Jobs;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>Test-SleapConnection's library over the real stack: a busy worker answers it untouched; no path is explained.</summary>
public sealed class ConnectionTestTests
{
    private static ConnectionTestOptions Options(RoomFixture room, TimeSpan? connectTimeout = null) => new()
    {
        PeerConnectionFactory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(), PeerConnection = RoomFixture.Loopback,
        ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(20),
    };

    [Fact]
    public async Task A_busy_worker_answers_the_test_and_its_job_goes_on()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var training = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Fixtures.BuildPackage(room.Root, "busy", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(150) }),
            OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString,
        }).RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Busy);

        var result = await ConnectionTest.RunAsync(room.Room(worker), worker.Session.PeerId, Options(room), CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal(new[] { "Passed", "NotConfigured", "NotConfigured", "Passed" }, result.Steps.Select(s => s.Status));
        Assert.True(result.Succeeded);
        Assert.Equal("host", result.Path);
        Assert.Equal("Verified", result.ChannelAuth);
        Assert.NotNull(result.RoundTrip);
        Assert.Equal(WorkerStatus.Busy, worker.Status); // the test reserved nothing and took nothing from the job
        Assert.Equal("Succeeded", (await training.WaitAsync(TimeSpan.FromSeconds(60))).Status);
    }

    [Fact]
    public async Task A_worker_out_of_reach_fails_its_step_and_the_result_says_why()
    {
        // Neither side learns a single address of the other: no candidate pair can form.
        await using var room = await RoomFixture.StartAsync(new SdpTampering(new WebRtc.PeerConnection.RtcPeerConnectionFactory(),
            SdpTampering.WithoutCandidates, SdpTampering.WithoutCandidates));
        var worker = await room.StartWorkerAsync();
        var result = await ConnectionTest.RunAsync(room.Room(worker), worker.Session.PeerId, Options(room, TimeSpan.FromSeconds(3)), CancellationToken.None)
            .WaitAsync(RoomFixture.Wait);
        Assert.False(result.Succeeded);
        Assert.Equal("Passed", result.Steps[0].Status);
        var step = result.Steps.Single(s => s.Name == ConnectionTest.WorkerStep);
        Assert.Equal("Failed", step.Status);
        Assert.Contains("the worker answered; the peer-to-peer path failed", step.Detail);
        Assert.Contains("No candidate pair formed", step.Detail);
        Assert.Null(result.Path);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }
}
