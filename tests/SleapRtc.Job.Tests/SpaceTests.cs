using System.Diagnostics;
using System.Text.Json;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Inference spaces: a worker serving a named space keeps its models; requests from several clients send only
/// data, queue, and run one at a time in order, each within a timeout; names are unique in a room; a missing
/// holder fails requests at once and a returning one serves again. Real server, worker, stand-in and WebRTC.
/// </summary>
public sealed class SpaceTests
{
    private static readonly TimeSpan Wait = RoomFixture.Wait;

    private static async Task<WorkerHost> StartSpaceAsync(RoomFixture room, string space, string[] models, string? roomId = null, string? token = null,
        TimeSpan? timeout = null) =>
        await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = room.Url, RoomId = roomId, Token = token,
            NvidiaSmiPath = "/nonexistent/nvidia-smi", SleapNnPath = Fixtures.SleapNn,
            WorkingDirectory = Path.Combine(room.Root, "space-" + Guid.NewGuid().ToString("N").Substring(0, 6)),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, Log = RoomFixture.Log,
            Space = space, SpaceModelPaths = models, SpaceRequestTimeout = timeout ?? TimeSpan.FromMinutes(2),
        }, CancellationToken.None).WaitAsync(Wait);

    private static InferenceSubmission Request(RoomFixture room, WorkerHost holder, string space, string data, string output, string? frames = null) =>
        new(new SubmissionOptions
        {
            RoomId = holder.Session.RoomId, Token = holder.Session.Token, Server = room.Url, OutputPath = output,
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        }, new InferenceRequest { DataPath = data, Space = space, Frames = frames });

    [Fact]
    public async Task A_space_runs_requests_with_its_own_models_one_at_a_time_in_order()
    {
        await using var room = await RoomFixture.StartAsync();
        var (models, data) = InferenceTests.Inputs(room.Root);
        await using var holder = await StartSpaceAsync(room, "mice-topdown", models);
        Assert.Equal("mice-topdown", holder.Session.Space);

        var listed = Assert.Single(await SpaceDiscovery.ListAsync(room.Room(holder), null, null, CancellationToken.None));
        Assert.Equal(("mice-topdown", holder.Session.PeerId, "ready", 0), (listed.Name, listed.WorkerId, listed.State, listed.QueueLength));
        // A space is not a training worker: worker discovery does not offer it.
        Assert.Empty(await WorkerDiscovery.DiscoverAsync(room.Room(holder), null, null, CancellationToken.None));

        // Three clients at once; each request takes ~0.4 s of "inference" (200 frames).
        var requests = Enumerable.Range(0, 3).Select(async i =>
        {
            await Task.Delay(i * 150);
            return await Request(room, holder, "mice-topdown", data, Path.Combine(room.Root, "out" + i), "0-199").RunAsync(CancellationToken.None);
        }).ToList();
        var busySeen = false;
        while (!requests.All(r => r.IsCompleted))
        {
            var now = (await SpaceDiscovery.ListAsync(room.Room(holder), "mice-topdown", null, CancellationToken.None)).Single();
            busySeen |= now.State == "busy" && now.QueueLength >= 2;
            await Task.Delay(50);
        }
        var results = await Task.WhenAll(requests).WaitAsync(Wait);

        Assert.True(busySeen, "the space published a queue of two or more while busy");
        Assert.All(results, r => Assert.Equal(("Succeeded", "mice-topdown", 200), (r.Status, r.Space, r.Frames)));
        var runs = results.Select(r => JsonDocument.Parse(File.ReadAllText(r.PredictionsPath!)).RootElement).ToList();
        // The space's models ran, although the requests sent none; the uploads carried only the data.
        Assert.All(runs, p => Assert.Equal(new[] { "centroid", "centered_instance" }, p.GetProperty("models").EnumerateArray().Select(e => e.GetString())));
        Assert.All(results, r => Assert.True(r.UploadedBytes < new FileInfo(data).Length + 4096, $"uploaded {r.UploadedBytes} bytes"));
        // One at a time: no two tracker runs overlap. (Their order is the order the uploads completed, which a loaded
        // box may swap; SpaceQueue's order is checked on its own below.)
        var spans = runs.Select(p => (Start: p.GetProperty("started_at").GetDouble(), End: p.GetProperty("finished_at").GetDouble())).OrderBy(s => s.Start).ToList();
        for (var i = 1; i < spans.Count; i++) Assert.True(spans[i].Start >= spans[i - 1].End, $"run {i} started before run {i - 1} ended");
        await Fixtures.WaitUntilAsync(() => holder.SpaceQueueLength == 0);
    }

    [Fact]
    public async Task A_second_worker_claiming_a_held_name_is_refused_clearly()
    {
        await using var room = await RoomFixture.StartAsync();
        var (models, _) = InferenceTests.Inputs(room.Root);
        await using var holder = await StartSpaceAsync(room, "flies", models);
        var refused = await Assert.ThrowsAsync<SpaceTakenException>(() =>
            StartSpaceAsync(room, "flies", models, holder.Session.RoomId, holder.Session.Token));
        Assert.Equal("SpaceNameTaken", refused.ErrorId);
        Assert.Contains($"already served by worker {holder.Session.PeerId}", refused.Message);
        // Another name in the same room is fine, and the refused one left no trace.
        await using var other = await StartSpaceAsync(room, "flies-2", models, holder.Session.RoomId, holder.Session.Token);
        var names = (await SpaceDiscovery.ListAsync(room.Room(holder), null, null, CancellationToken.None)).Select(s => s.Name);
        Assert.Equal(new[] { "flies", "flies-2" }, names);
    }

    [Fact]
    public async Task Two_workers_starting_at_once_with_one_name_get_exactly_one_holder()
    {
        await using var room = await RoomFixture.StartAsync();
        var (models, _) = InferenceTests.Inputs(room.Root);
        await using var admin = new SleapRtc.Signaling.Client.SignalingClient(room.Url);
        var credentials = await admin.CreateRoomAsync("space-race");
        // Several pairs at once, each pair racing for its own name: with a check-then-register claim some pair ends
        // with two holders or none; the server's atomic claim gives each name exactly one.
        var names = Enumerable.Range(0, 4).Select(i => $"race-{i}").ToArray();
        var starts = names.SelectMany(name => new[] { name, name })
            .Select(name => Task.Run(() => StartSpaceAsync(room, name, models, credentials.RoomId, credentials.Token))).ToArray();
        try { await Task.WhenAll(starts).WaitAsync(Wait); } catch (SpaceTakenException) { }
        var winners = new List<WorkerHost>();
        foreach (var start in starts.Where(t => t.IsCompletedSuccessfully)) winners.Add(await start);
        room.Track(winners);
        for (var i = 0; i < names.Length; i++)
        {
            var pair = new[] { starts[2 * i], starts[2 * i + 1] };
            var winner = await Assert.Single(pair, t => t.IsCompletedSuccessfully);
            var refused = Assert.IsType<SpaceTakenException>(Assert.Single(pair, t => t.IsFaulted).Exception!.InnerException);
            Assert.Equal("SpaceNameTaken", refused.ErrorId);
            Assert.Equal(winner.Session.PeerId, refused.Holder);
            Assert.Contains($"The space '{names[i]}' is already served by worker {winner.Session.PeerId}", refused.Message);
        }
        var listed = await SpaceDiscovery.ListAsync(room.Room(winners[0]), null, null, CancellationToken.None);
        Assert.Equal(names, listed.Select(s => s.Name).Order());
        Assert.Equal(winners.Select(w => w.Session.PeerId).Order(), listed.Select(s => s.WorkerId).Order());
    }

    [Fact]
    public async Task Without_its_holder_a_space_fails_fast_and_serves_again_when_the_holder_returns()
    {
        await using var room = await RoomFixture.StartAsync();
        var (models, data) = InferenceTests.Inputs(room.Root);
        var holder = await StartSpaceAsync(room, "rats", models);
        var (roomId, token) = (holder.Session.RoomId, holder.Session.Token);
        Assert.Equal("Succeeded", (await Request(room, holder, "rats", data, Path.Combine(room.Root, "a")).RunAsync(CancellationToken.None).WaitAsync(Wait)).Status);
        await holder.StopAsync();

        var clock = Stopwatch.StartNew();
        var offline = await Assert.ThrowsAsync<SpaceOfflineException>(() => Request(room, holder, "rats", data, Path.Combine(room.Root, "b")).RunAsync(CancellationToken.None));
        clock.Stop();
        Assert.Equal("SpaceOffline", offline.ErrorId);
        Assert.Contains("space 'rats' is offline", offline.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"failed after {clock.Elapsed.TotalMilliseconds:F0} ms");

        await using var back = await StartSpaceAsync(room, "rats", models, roomId, token);
        var again = await Request(room, back, "rats", data, Path.Combine(room.Root, "c")).RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(("Succeeded", back.Session.PeerId), (again.Status, again.WorkerId));
    }

    [Fact]
    public async Task A_request_that_outlives_the_space_timeout_ends_with_a_clear_error_and_the_next_one_runs()
    {
        await using var room = await RoomFixture.StartAsync();
        var (models, data) = InferenceTests.Inputs(room.Root);
        await using var holder = await StartSpaceAsync(room, "slow", models, timeout: TimeSpan.FromSeconds(10));

        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<SleapRtcException>(() =>
            Request(room, holder, "slow", data, Path.Combine(room.Root, "t"), "0-49999").RunAsync(CancellationToken.None).WaitAsync(Wait));
        Assert.Equal("InferenceRequestTimeout", error.ErrorId);
        Assert.Contains("did not finish within 10 s", error.Message);
        // 50,000 frames take 100 s: the request was stopped, not run to its end.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), $"took {clock.Elapsed.TotalSeconds:F1} s");

        var next = await Request(room, holder, "slow", data, Path.Combine(room.Root, "n"), "0-9").RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal("Succeeded", next.Status);
    }

    [Fact]
    public async Task The_queue_hands_out_turns_first_come_first_served_and_skips_cancelled_waiters()
    {
        var queue = new SleapRtc.Worker.Spaces.SpaceQueue();
        var lengths = new System.Collections.Concurrent.ConcurrentQueue<int>();
        queue.LengthChanged += lengths.Enqueue;
        var first = await queue.EnterAsync(CancellationToken.None);
        using var cancelThird = new CancellationTokenSource();
        var second = queue.EnterAsync(CancellationToken.None);
        var third = queue.EnterAsync(cancelThird.Token);
        var fourth = queue.EnterAsync(CancellationToken.None);
        Assert.Equal(4, queue.Length);
        Assert.False(second.IsCompleted);

        cancelThird.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => third);
        Assert.Equal(3, queue.Length);
        first.Dispose();
        first.Dispose(); // a turn is released once
        var secondTurn = await second.WaitAsync(Wait);
        Assert.False(fourth.IsCompleted);
        secondTurn.Dispose();
        (await fourth.WaitAsync(Wait)).Dispose();
        Assert.Equal(0, queue.Length);
        Assert.Equal(0, lengths.Last());
    }
}
