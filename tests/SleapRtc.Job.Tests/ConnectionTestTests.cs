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
    [Fact]
    public async Task The_turn_step_allocates_with_the_servers_credentials_and_says_why_an_allocation_failed()
    {
        await using var coturn = await SleapRtc.Interop.CoturnServer.StartAsync(new[] { System.Net.IPAddress.Loopback }, System.Net.IPAddress.Loopback, null,
            TimeSpan.FromSeconds(15));
        var urls = new[] { $"turn:127.0.0.1:{coturn.Port}", $"turns:127.0.0.1:{coturn.TlsPort}" };
        async Task<ConnectionTestResult> RunAgainst(string secret)
        {
            await using var server = await Signaling.Server.SignalingServerHost.StartAsync(new Signaling.Server.SignalingServerOptions
            {
                Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", TurnUrls = urls, TurnSecret = secret,
            }, CancellationToken.None).WaitAsync(RoomFixture.Wait);
            var record = await server.CreateRoomAsync("turn", null);
            var room = new Client.Credentials.ResolvedRoom { RoomId = record.RoomId, Token = record.Token, Server = $"ws://127.0.0.1:{server.Port}" };
            return await ConnectionTest.RunAsync(room, null, new ConnectionTestOptions
            {
                PeerConnectionFactory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(),
                PeerConnection = new WebRtc.PeerConnectionOptions
                {
                    IncludeLoopback = true, LocalAddresses = RoomFixture.Loopback.LocalAddresses,
                    TurnTrustedCertificates = WebRtc.IceServer.LoadTrustedCertificates(coturn.CaCertificatePath),
                },
            }, CancellationToken.None).WaitAsync(RoomFixture.Wait);
        }

        var good = await RunAgainst(coturn.Secret);
        var turn = good.Steps.Single(s => s.Name == ConnectionTest.TurnStep);
        Assert.Equal("Passed", turn.Status);
        Assert.Equal(2, good.RelayedAddresses.Length);
        Assert.All(good.RelayedAddresses, a => Assert.StartsWith("127.0.0.1:", a));
        Assert.Contains($"{urls[0]} relays at 127.0.0.1:", turn.Detail);
        Assert.Contains($"{urls[1]} relays at 127.0.0.1:", turn.Detail);
        Assert.True(good.Succeeded);

        // A signaling server whose secret is not coturn's hands out credentials coturn refuses: the step says so.
        var bad = await RunAgainst("not-coturns-secret");
        turn = bad.Steps.Single(s => s.Name == ConnectionTest.TurnStep);
        Assert.Equal("Failed", turn.Status);
        Assert.Empty(bad.RelayedAddresses);
        Assert.Contains($"{urls[0]} failed: refused the allocation (401", turn.Detail);
        Assert.Contains("-TurnSecret must equal coturn's static-auth-secret", turn.Detail);
        Assert.DoesNotContain("not-coturns-secret", turn.Detail);
        Assert.False(bad.Succeeded);
    }
}

