using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SleapRtc.Bench.Common;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using SleapRtc.Signaling.Tests;
using SleapRtc.Soak;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Jobs across signaling instances sharing a real redis-server: a drain or a killed instance moves the peers to another
/// instance under the same peer ids, a training job running over P2P is not affected, and the job queue moves to another
/// instance when the one running it is killed.
/// </summary>
[Collection(nameof(ChildProcessCollection))]
public sealed class FailoverJobTests(RedisTestServer redis) : IClassFixture<RedisTestServer>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static string Package(string root, string name, int epochs) =>
        Fixtures.BuildPackage(root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) }, extraBytes: 200_000);

    private static (string RoomId, string Token) NewRoom() => ("failover" + Guid.NewGuid().ToString("N")[..8], "tok" + Guid.NewGuid().ToString("N"));

    private ChildProcess Instance(string name, string roomId, string token) =>
        SoakChildProcess.Start(name, null, "server", "0", "-", roomId, token, redis.Url);

    private static async Task<SignalingClient> JoinAsync(string server, string roomId, string token, string role, JsonObject? metadata = null)
    {
        var client = new SignalingClient(server);
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, role, metadata));
        return client;
    }

    [Fact]
    public async Task A_training_job_spanning_a_drain_of_its_instance_completes_and_the_worker_moves_under_its_peer_id()
    {
        await using var room = await RoomFixture.StartAsync(redis: redis.Url);
        await using var other = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = 0, ListenAddress = "127.0.0.1", EnableStun = false, Redis = redis.Url,
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
        await using var client = await JoinAsync($"ws://127.0.0.1:{other.Port}", worker.Session.RoomId, worker.Session.Token, "client");
        var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers(null)));
        Assert.Equal(worker.Session.PeerId, found.PeerId);
    }

    [Fact]
    public async Task The_peers_of_a_killed_instance_are_back_on_another_within_10_s_and_a_running_job_completes()
    {
        var root = Fixtures.NewTempDirectory("failover-kill");
        var (roomId, token) = NewRoom();
        using var doomed = Instance("instance A", roomId, token);
        using var survivor = Instance("instance B", roomId, token);
        var (a, b) = ($"ws://127.0.0.1:{doomed.Ready}", $"ws://127.0.0.1:{survivor.Ready}");
        using var worker = SoakChildProcess.Start("worker", new Dictionary<string, string> { ["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = "0.05" },
            "worker", a + "," + b, roomId, token, Path.Combine(root, "worker"), Fixtures.SleapNn);
        var peerId = worker.Ready;
        // A peer of the doomed instance that never comes back: its presence must expire.
        var stray = new SignalingClient(a, new SignalingClientOptions { AutoReconnect = false });
        var strayIn = await stray.AnonymousSignInAsync();
        await stray.ConnectAsync(new RegistrationRequest(strayIn.Username, roomId, token, strayIn.IdToken, "client"));

        var run = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(root, "kill", 160), OutputPath = Path.Combine(root, "out"),
            PeerConnectionFactory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(), PeerConnection = RoomFixture.Loopback,
            SessionString = SessionString.Encode(roomId, token, peerId, a + "," + b),
        }).RunAsync(CancellationToken.None);
        worker.WaitFor("EPOCH", Wait);

        var clock = Stopwatch.StartNew();
        doomed.KillHard();
        worker.WaitFor("RECONNECTED", TimeSpan.FromSeconds(10));
        var back = clock.Elapsed;
        Assert.True(back < TimeSpan.FromSeconds(10), $"back after {back.TotalSeconds:F1} s");

        // Back under the same peer id (what session strings handed out name), still busy with its job: not offered to
        // anyone else; the stray peer's presence on the dead instance expires; the room is intact.
        await using var client = await JoinAsync(b, roomId, token, "client");
        await Fixtures.WaitUntilAsync(() => client.DiscoverAsync().Result.All(p => p.PeerId != strayIn.Username));
        var peers = await client.DiscoverAsync();
        var found = Assert.Single(peers, p => p.Role == "worker");
        Assert.Equal(peerId, found.PeerId);
        Assert.Empty(await client.DiscoverAsync(PeerFilters.Workers()));

        var result = await run.WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
        await stray.DisposeAsync();
        survivor.Stop(TimeSpan.FromSeconds(10));
        worker.Stop(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task The_job_queue_moves_to_another_instance_when_the_one_running_it_is_killed_and_each_ticket_runs_once()
    {
        var (roomId, token) = NewRoom();
        using var first = Instance("instance A", roomId, token);
        using var second = Instance("instance B", roomId, token);
        // Which instance runs the queue: the first to print QUEUE (the other does only once it has taken over).
        var firstRuns = Task.Run(() => first.WaitFor("QUEUE", TimeSpan.FromSeconds(90)));
        var secondRuns = Task.Run(() => second.WaitFor("QUEUE", TimeSpan.FromSeconds(90)));
        var leaderRuns = await Task.WhenAny(firstRuns, secondRuns).WaitAsync(Wait);
        var (leader, follower, followerRuns) = leaderRuns == firstRuns ? (first, second, secondRuns) : (second, first, firstRuns);
        var followerUrl = $"ws://127.0.0.1:{follower.Ready}";

        await using var submitter = await JoinAsync(followerUrl, roomId, token, "client");
        var assignments = new List<TicketAssignment>();
        submitter.TicketAssigned += a => { lock (assignments) assignments.Add(a); };
        var ticket = await submitter.SubmitTicketAsync(new JobRecord { JobId = JobIds.New(), PackageName = "p.zip", PackageBytes = 1 });
        Assert.Equal(1, ticket.Position);

        var clock = Stopwatch.StartNew();
        leader.KillHard();
        await followerRuns.WaitAsync(TimeSpan.FromSeconds(15));
        var takeover = clock.Elapsed;
        var record = Assert.Single(await submitter.ListJobsAsync(ticket.JobId));
        Assert.Equal(JobStates.Queued, record.State);

        await using var worker = await JoinAsync(followerUrl, roomId, token, "worker", new JsonObject
        {
            ["tags"] = new JsonArray("sleap-rtc"),
            ["properties"] = new JsonObject { ["status"] = "available", ["sleaprtc_ext"] = 1, ["gpu_memory_mb"] = 8192 },
        });
        await Fixtures.WaitUntilAsync(() => { lock (assignments) return assignments.Count > 0; });
        await Task.Delay(500);
        lock (assignments) Assert.Equal((ticket.JobId, worker.PeerId), (Assert.Single(assignments).JobId, Assert.Single(assignments).WorkerId));
        Assert.True(takeover < TimeSpan.FromSeconds(10), $"the queue was back after {takeover.TotalSeconds:F1} s");
        follower.Stop(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task SIGTERM_drains_an_instance_run_as_a_service_and_its_peers_move()
    {
        var root = Fixtures.NewTempDirectory("failover-sigterm");
        var (roomId, token) = NewRoom();
        using var stopped = Instance("instance A", roomId, token);
        using var survivor = Instance("instance B", roomId, token);
        var servers = $"ws://127.0.0.1:{stopped.Ready},ws://127.0.0.1:{survivor.Ready}";
        using var worker = SoakChildProcess.Start("worker", null, "worker", servers, roomId, token, Path.Combine(root, "worker"), Fixtures.SleapNn);

        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Kill(stopped.Process.Id, "TERM"));
        stopped.WaitFor("DRAINED", TimeSpan.FromSeconds(15));
        worker.WaitFor("RECONNECTED", TimeSpan.FromSeconds(10));
        Assert.True(stopped.Process.WaitForExit(10_000), "the drained instance should exit");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"drained after {clock.Elapsed.TotalSeconds:F1} s");
        await using var client = await JoinAsync($"ws://127.0.0.1:{survivor.Ready}", roomId, token, "client");
        Assert.Equal(worker.Ready, Assert.Single(await client.DiscoverAsync(PeerFilters.Workers())).PeerId);
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
