using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using SleapRtc.Soak;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Jobs across several signaling instances sharing one database: a drain or a killed instance moves the peers to
/// another instance under the same peer ids, and a training job running over P2P is not affected.
/// </summary>
[Collection(nameof(ChildProcessCollection))]
public sealed class FailoverJobTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static string Package(string root, string name, int epochs) =>
        Fixtures.BuildPackage(root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) }, extraBytes: 200_000);

    [Fact]
    public async Task A_training_job_spanning_a_drain_of_its_instance_completes_and_the_worker_moves_under_its_peer_id()
    {
        var database = Path.Combine(Fixtures.NewTempDirectory("failover-drain"), "rooms.db");
        await using var room = await RoomFixture.StartAsync(databasePath: database);
        await using var other = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = 0, ListenAddress = "127.0.0.1", DatabasePath = database, EnableStun = false,
        }).WaitAsync(Wait);
        var servers = room.Url + "," + $"ws://127.0.0.1:{other.Port}";
        var worker = await room.StartWorkerAsync(configure: o => o with { Server = servers });
        Assert.Equal(servers, worker.Session.Server);
        Assert.Equal(servers, SessionString.Decode(worker.Session.SessionString).Server);
        var moved = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.LogLine += l => { if (l.StartsWith("Reconnected", StringComparison.Ordinal)) moved.TrySetResult(); };

        // 0.02 s per epoch (the fixture's stand-in setting): about 4 s of training, long enough to span the drain.
        var run = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room.Root, "drain", 200), OutputPath = Path.Combine(room.Root, "out"),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, SessionString = worker.Session.SessionString,
        }).RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Busy);

        var clock = Stopwatch.StartNew();
        await room.Server.DrainAsync(TimeSpan.FromSeconds(20)).WaitAsync(Wait);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the drain took {clock.Elapsed.TotalSeconds:F1} s");
        await moved.Task.WaitAsync(Wait);
        Assert.False(run.IsCompleted, "the job should still be training after the drain");

        var result = await run.WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
        await using var client = new SignalingClient($"ws://127.0.0.1:{other.Port}");
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, worker.Session.Token, signIn.IdToken, "client"));
        var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers(null)));
        Assert.Equal(worker.Session.PeerId, found.PeerId);
    }

    [Fact]
    public async Task The_peers_of_a_killed_instance_are_back_on_another_within_10_s_and_a_running_job_completes()
    {
        var root = Fixtures.NewTempDirectory("failover-kill");
        var database = Path.Combine(root, "rooms.db");
        var (roomId, token) = ("failover" + Guid.NewGuid().ToString("N")[..8], "tok" + Guid.NewGuid().ToString("N"));
        using var doomed = ChildProcess.Start("instance A", null, "server", "0", database, roomId, token);
        using var survivor = ChildProcess.Start("instance B", null, "server", "0", database, roomId, token);
        var servers = $"ws://127.0.0.1:{doomed.Ready},ws://127.0.0.1:{survivor.Ready}";
        using var worker = ChildProcess.Start("worker", new Dictionary<string, string> { ["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = "0.05" },
            "worker", servers, roomId, token, Path.Combine(root, "worker"), Fixtures.SleapNn);
        var peerId = worker.Ready;

        var run = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(root, "kill", 160), OutputPath = Path.Combine(root, "out"),
            PeerConnectionFactory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(), PeerConnection = RoomFixture.Loopback,
            SessionString = SessionString.Encode(roomId, token, peerId, servers),
        }).RunAsync(CancellationToken.None);
        worker.WaitFor("EPOCH", Wait);

        var clock = Stopwatch.StartNew();
        doomed.KillHard();
        worker.WaitFor("RECONNECTED", TimeSpan.FromSeconds(10));
        var back = clock.Elapsed;

        // Back under the same peer id on the survivor (what session strings handed out name), still busy with its job.
        await using var client = new SignalingClient($"ws://127.0.0.1:{survivor.Ready}");
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "client"));
        var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers(null)));
        Assert.Equal(peerId, found.PeerId);
        Assert.True(back < TimeSpan.FromSeconds(10), $"back after {back.TotalSeconds:F1} s");

        var result = await run.WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
        survivor.Stop(TimeSpan.FromSeconds(10));
        worker.Stop(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task SIGTERM_drains_an_instance_run_as_a_service_and_its_peers_move()
    {
        var root = Fixtures.NewTempDirectory("failover-sigterm");
        var database = Path.Combine(root, "rooms.db");
        var (roomId, token) = ("failover" + Guid.NewGuid().ToString("N")[..8], "tok" + Guid.NewGuid().ToString("N"));
        using var stopped = ChildProcess.Start("instance A", null, "server", "0", database, roomId, token);
        using var survivor = ChildProcess.Start("instance B", null, "server", "0", database, roomId, token);
        var servers = $"ws://127.0.0.1:{stopped.Ready},ws://127.0.0.1:{survivor.Ready}";
        using var worker = ChildProcess.Start("worker", null, "worker", servers, roomId, token, Path.Combine(root, "worker"), Fixtures.SleapNn);

        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Kill(stopped.Process.Id, "TERM"));
        stopped.WaitFor("DRAINED", TimeSpan.FromSeconds(15));
        worker.WaitFor("RECONNECTED", TimeSpan.FromSeconds(10));
        Assert.True(stopped.Process.WaitForExit(10_000), "the drained instance should exit");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"drained after {clock.Elapsed.TotalSeconds:F1} s");
        await Task.CompletedTask;
        survivor.Stop(TimeSpan.FromSeconds(10));
        worker.Stop(TimeSpan.FromSeconds(10));
    }

    private static int Kill(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid.ToString(CultureInfo.InvariantCulture)}") { UseShellExecute = false })!;
        kill.WaitForExit();
        return kill.ExitCode;
    }
}
