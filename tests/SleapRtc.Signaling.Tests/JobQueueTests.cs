using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Jobs;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// A real server on loopback with a real SQLite file, and real <see cref="SignalingClient"/> submitters and workers.
/// The workers here are signaling-only stand-ins: they report what a worker reports and turn available again.
/// </summary>
internal sealed class QueueHarness : IAsyncDisposable
{
    private readonly List<SignalingClient> _peers = [];
    private readonly bool _ownsDatabase;

    private QueueHarness(TestServer server, string database, Room room, bool ownsDatabase)
    {
        Server = server;
        Database = database;
        Room = room;
        _ownsDatabase = ownsDatabase;
    }

    public TestServer Server { get; private set; }
    public string Database { get; }
    public Room Room { get; }
    public int Port => Server.Host.Port;

    public static SignalingClientOptions Fast() => new()
    {
        RequestTimeout = TimeSpan.FromSeconds(5),
        InitialReconnectDelay = TimeSpan.FromMilliseconds(100),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(300),
    };

    public static async Task<QueueHarness> StartAsync(Action<JobQueueOptions>? configure = null)
    {
        var database = Path.Combine(Path.GetTempPath(), "sleaprtc-queue-" + Guid.NewGuid().ToString("N") + ".db");
        var server = await TestServer.StartAsync(o => { o.DatabasePath = database; configure?.Invoke(o.Jobs); });
        Room room;
        await using (var admin = new SignalingClient(server.WsUrl, Fast())) room = await admin.CreateRoomAsync();
        return new QueueHarness(server, database, room, ownsDatabase: true);
    }

    /// <summary>Stops the server (pending job records are flushed) and starts it again on the same port and file.</summary>
    public async Task RestartAsync(Action<JobQueueOptions>? configure = null)
    {
        var port = Server.Host.Port;
        await Server.DisposeAsync();
        Server = await TestServer.StartAsync(o => { o.DatabasePath = Database; o.Port = port; configure?.Invoke(o.Jobs); });
    }

    public async Task<SignalingClient> ClientAsync(Room? room = null, string? username = null, Action<SignalingClient>? beforeConnect = null)
    {
        var client = new SignalingClient(Server.WsUrl, Fast());
        beforeConnect?.Invoke(client);
        var signIn = await client.AnonymousSignInAsync(username);
        var target = room ?? Room;
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, target.RoomId, target.Token, signIn.IdToken, "client"));
        lock (_peers) _peers.Add(client);
        return client;
    }

    public async Task<SignalingClient> WorkerAsync(long gpuMemoryMb = 24576, string[]? tags = null, string status = "available", Room? room = null)
    {
        var metadata = new JsonObject
        {
            ["tags"] = new JsonArray((tags ?? ["sleap-rtc"]).Select(t => (JsonNode)t).ToArray()),
            ["properties"] = new JsonObject
            {
                ["gpu_memory_mb"] = gpuMemoryMb, ["status"] = status, ["sleaprtc_ext"] = 1, ["machine_id"] = "host-a",
            },
        };
        var worker = new SignalingClient(Server.WsUrl, Fast());
        var signIn = await worker.AnonymousSignInAsync();
        var target = room ?? Room;
        await worker.ConnectAsync(new RegistrationRequest(signIn.Username, target.RoomId, target.Token, signIn.IdToken, "worker", metadata));
        lock (_peers) _peers.Add(worker);
        return worker;
    }

    /// <summary>A worker speaking raw JSON, whose socket a test can abort as a killed process leaves it.</summary>
    public Task<RawPeer> RawWorkerAsync(string status = "available")
        => Server.JoinAsync(Room.RoomId, Room.Token, "worker", $$$"""{"tags":["sleap-rtc"],"properties":{"status":"{{{status}}}","sleaprtc_ext":1,"gpu_memory_mb":8192}}""");

    /// <summary>Registers <paramref name="connection"/> as <paramref name="original"/> (same peer id and id_token), as a reconnecting worker does.</summary>
    public async Task ReRegisterAsync(RawPeer connection, RawPeer original)
    {
        connection.PeerId = original.PeerId;
        connection.IdToken = original.IdToken;
        await connection.SendAsync($$$$"""{"type":"register","peer_id":"{{{{original.PeerId}}}}","room_id":"{{{{Room.RoomId}}}}","token":"{{{{Room.Token}}}}","id_token":"{{{{original.IdToken}}}}","role":"worker","metadata":{"properties":{"status":"busy","sleaprtc_ext":1}}}""");
        await connection.ReceiveAsync("registered_auth");
    }

    public static Task RawReportAsync(RawPeer worker, string jobId, string state)
        => worker.SendAsync(new JsonObject { ["type"] = "job_update", ["record"] = new JobRecord { JobId = jobId, State = state }.ToJson() });

    /// <summary>
    /// Signaling-only stand-in workers, each on its own task: turn available, then for every job id that reaches its inbox
    /// (from the submitter's queue_assigned) report it Running and Succeeded at once and turn available again. Fails if a
    /// worker is ever handed a job while it holds one; returns once <paramref name="total"/> jobs are done.
    /// </summary>
    public static async Task RunStandInWorkersAsync(IReadOnlyList<SignalingClient> workers, IReadOnlyDictionary<string, Channel<string>> inbox, int total, TimeSpan within)
    {
        var holding = new ConcurrentDictionary<string, int>();
        var done = 0;
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task RunAsync(SignalingClient worker)
        {
            await SetStatusAsync(worker, "available");
            await foreach (var jobId in inbox[worker.PeerId!].Reader.ReadAllAsync())
            {
                Assert.Equal(1, holding.AddOrUpdate(worker.PeerId!, 1, (_, n) => n + 1));
                await ReportAsync(worker, jobId, JobStates.Running);
                await ReportAsync(worker, jobId, JobStates.Succeeded);
                holding.AddOrUpdate(worker.PeerId!, 0, (_, n) => n - 1);
                if (Interlocked.Increment(ref done) == total) allDone.TrySetResult();
                await SetStatusAsync(worker, "available");
            }
        }
        var loops = workers.Select(w => Task.Run(() => RunAsync(w))).ToList();
        try { await allDone.Task.WaitAsync(within); }
        finally
        {
            foreach (var channel in inbox.Values) channel.Writer.TryComplete();
        }
        await Task.WhenAll(loops).WaitAsync(TestServer.Wait);
    }

    public static Task SetStatusAsync(SignalingClient worker, string status)
        => worker.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["status"] = status } });

    public static Task ReportAsync(SignalingClient worker, string jobId, string state, string? error = null, JobRecordProgress? progress = null)
        => worker.ReportJobAsync(new JobRecord { JobId = jobId, State = state, Error = error, Progress = progress });

    private static int _nextJob;

    public static JobRecord Ticket(int priority = 0, long minGpuMemoryMb = 0, string[]? tags = null, string? workerId = null)
    {
        var number = Interlocked.Increment(ref _nextJob);
        return new JobRecord
        {
            JobId = $"job_{Guid.NewGuid():N}"[..16], PackageName = $"pkg{number}.zip", Priority = priority, PackageBytes = 1234,
            Requirements = minGpuMemoryMb == 0 && tags is null && workerId is null ? null
                : new TicketRequirements { MinGpuMemoryMb = minGpuMemoryMb, Tags = tags ?? [], WorkerId = workerId },
        };
    }

    public async Task<JobRecord> RecordAsync(SignalingClient asker, string jobId) => Assert.Single(await asker.ListJobsAsync(jobId));

    /// <summary>Polls the record until <paramref name="condition"/> holds (the server applies worker reports asynchronously).</summary>
    public async Task<JobRecord> WaitForRecordAsync(SignalingClient asker, string jobId, Func<JobRecord, bool> condition, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TestServer.Wait);
        while (true)
        {
            // The report may not have reached the server yet (it travels on the worker's connection): absent is "not yet".
            var record = (await asker.ListJobsAsync(jobId)).SingleOrDefault();
            if (record is not null && condition(record)) return record;
            if (DateTime.UtcNow > deadline) Assert.Fail($"Record {jobId} never met the condition; last: {record?.ToWire() ?? "none"}");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<SignalingClient> peers;
        lock (_peers) peers = _peers.ToList();
        foreach (var peer in peers) await peer.DisposeAsync();
        await Server.DisposeAsync();
        if (_ownsDatabase)
        {
            foreach (var file in new[] { Database, Database + "-wal", Database + "-shm" })
            {
                try { File.Delete(file); }
                catch (IOException) { }
            }
        }
    }
}

/// <summary>Collects a client's pushes in arrival order.</summary>
internal sealed class Pushes
{
    public Channel<TicketAssignment> Assigned { get; } = Channel.CreateUnbounded<TicketAssignment>();
    public ConcurrentQueue<TicketPosition> Positions { get; } = new();

    public Pushes(SignalingClient client)
    {
        client.TicketAssigned += a => Assigned.Writer.TryWrite(a);
        client.TicketPositionChanged += p => Positions.Enqueue(p);
    }

    public async Task<TicketAssignment> NextAssignmentAsync(TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? TestServer.Wait);
        return await Assigned.Reader.ReadAsync(timeout.Token);
    }

    public bool HasAssignment => Assigned.Reader.TryPeek(out _);
}

public class JobQueueTests
{
    [Fact]
    public async Task RegisteredAuthAnnouncesTheJobQueue()
    {
        await using var harness = await QueueHarness.StartAsync();
        var client = await harness.ClientAsync();
        Assert.True(client.ServerSupportsJobQueue);
    }

    [Fact]
    public async Task TenTicketsFromThreeSubmittersOnTwoWorkersRunExactlyOnceInPriorityFifoOrder()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitters = new[] { await harness.ClientAsync(), await harness.ClientAsync(), await harness.ClientAsync() };
        // Busy at first, so every ticket is queued before any hand-out and the whole order is the queue's.
        var workers = new[] { await harness.WorkerAsync(status: "busy"), await harness.WorkerAsync(status: "busy") };
        var inbox = workers.ToDictionary(w => w.PeerId!, _ => Channel.CreateUnbounded<string>());
        var handedOut = new ConcurrentDictionary<string, int>();
        var perSubmitterOrder = submitters.ToDictionary(s => s.PeerId!, _ => new ConcurrentQueue<string>());
        foreach (var submitter in submitters)
        {
            submitter.TicketAssigned += a =>
            {
                handedOut.AddOrUpdate(a.JobId, 1, (_, n) => n + 1);
                perSubmitterOrder[submitter.PeerId!].Enqueue(a.JobId);
                // What a real submitter does next: offer to the worker (which ends the assignment timeout), whose hello names the job.
                _ = submitter.SendOfferAsync(a.WorkerId, "offer-sdp");
                inbox[a.WorkerId].Writer.TryWrite(a.JobId);
            };
        }

        var priorities = new[] { 0, 5, 0, -3, 5, 0, 10, 0, -3, 5 };
        var expected = new List<(string JobId, int Priority, int Index, string Submitter)>();
        for (var i = 0; i < priorities.Length; i++)
        {
            var submitter = submitters[i % 3];
            var ticket = QueueHarness.Ticket(priorities[i]);
            var answer = await submitter.SubmitTicketAsync(ticket);
            Assert.Equal(JobStates.Queued, answer.State);
            Assert.Equal(submitter.PeerId, answer.Submitter);
            Assert.NotNull(answer.Position);
            expected.Add((ticket.JobId, priorities[i], i, submitter.PeerId!));
        }
        var order = expected.OrderByDescending(e => e.Priority).ThenBy(e => e.Index).ToList();

        await QueueHarness.RunStandInWorkersAsync(workers, inbox, priorities.Length, TimeSpan.FromSeconds(20));

        Assert.Equal(priorities.Length, handedOut.Count);
        Assert.All(handedOut.Values, n => Assert.Equal(1, n));
        // Each submitter heard its tickets in the queue's order.
        foreach (var submitter in submitters)
            Assert.Equal(order.Where(o => o.Submitter == submitter.PeerId).Select(o => o.JobId), perSubmitterOrder[submitter.PeerId!]);
        // And across submitters, the server handed them out in that order (assignment times never go backwards).
        var records = (await submitters[0].ListJobsAsync()).ToDictionary(r => r.JobId);
        for (var i = 1; i < order.Count; i++)
            Assert.True(records[order[i - 1].JobId].AssignedAt <= records[order[i].JobId].AssignedAt, $"ticket {i} was handed out before ticket {i - 1}");
        Assert.All(records.Values, r => Assert.Equal(JobStates.Succeeded, r.State));
        Assert.All(records.Values, r => Assert.Contains(r.WorkerId, inbox.Keys));
    }

    [Fact]
    public async Task ManyWorkersTurningAvailableAtOnceNeverShareATicketOrHoldTwo()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var workers = new List<SignalingClient>();
        for (var i = 0; i < 4; i++) workers.Add(await harness.WorkerAsync(status: "busy"));
        var tickets = new List<string>();
        // 30 jobs per worker: far more reports than the job_update burst allows, none of which may be dropped.
        for (var i = 0; i < 120; i++) tickets.Add((await submitter.SubmitTicketAsync(QueueHarness.Ticket(i % 3))).JobId);

        var inbox = workers.ToDictionary(w => w.PeerId!, _ => Channel.CreateUnbounded<string>());
        var counts = new ConcurrentDictionary<string, int>();
        submitter.TicketAssigned += a =>
        {
            counts.AddOrUpdate(a.JobId, 1, (_, n) => n + 1);
            inbox[a.WorkerId].Writer.TryWrite(a.JobId);
        };
        await QueueHarness.RunStandInWorkersAsync(workers, inbox, tickets.Count, TimeSpan.FromSeconds(30));

        Assert.Equal(tickets.Order(), counts.Keys.Order());
        Assert.All(counts.Values, n => Assert.Equal(1, n));
        Assert.All(await submitter.ListJobsAsync(), r => Assert.Equal(JobStates.Succeeded, r.State));
    }

    [Fact]
    public async Task TicketsGoOnlyToWorkersThatMatchTheirPinGpuMemoryAndTags()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var small = await harness.WorkerAsync(gpuMemoryMb: 8192, tags: ["sleap-rtc", "lab-a"], status: "busy");
        var large = await harness.WorkerAsync(gpuMemoryMb: 49152, tags: ["sleap-rtc", "lab-b"], status: "busy");

        var needsMemory = await submitter.SubmitTicketAsync(QueueHarness.Ticket(minGpuMemoryMb: 16384));
        var needsTag = await submitter.SubmitTicketAsync(QueueHarness.Ticket(tags: ["lab-a"]));
        var pinned = await submitter.SubmitTicketAsync(QueueHarness.Ticket(workerId: small.PeerId));
        var impossible = await submitter.SubmitTicketAsync(QueueHarness.Ticket(minGpuMemoryMb: 1_000_000));
        Assert.Equal([1, 2, 3, 4], new[] { needsMemory, needsTag, pinned, impossible }.Select(t => t.Position!.Value));

        // The small worker cannot take the first ticket (memory), so it takes the second (its tag).
        await QueueHarness.SetStatusAsync(small, "available");
        var first = await pushes.NextAssignmentAsync();
        Assert.Equal((needsTag.JobId, small.PeerId), (first.JobId, first.WorkerId));

        // The large worker takes the memory ticket; the pinned one waits for the small worker although the large one is free again.
        await QueueHarness.SetStatusAsync(large, "available");
        var second = await pushes.NextAssignmentAsync();
        Assert.Equal((needsMemory.JobId, large.PeerId), (second.JobId, second.WorkerId));
        await QueueHarness.ReportAsync(large, needsMemory.JobId, JobStates.Succeeded);
        await QueueHarness.SetStatusAsync(large, "available");
        await Task.Delay(300);
        Assert.False(pushes.HasAssignment);
        Assert.Equal(1, (await harness.RecordAsync(submitter, pinned.JobId)).Position);

        await QueueHarness.ReportAsync(small, needsTag.JobId, JobStates.Succeeded);
        await QueueHarness.SetStatusAsync(small, "available");
        var third = await pushes.NextAssignmentAsync();
        Assert.Equal((pinned.JobId, small.PeerId), (third.JobId, third.WorkerId));

        var waiting = await harness.RecordAsync(submitter, impossible.JobId);
        Assert.Equal((JobStates.Queued, (int?)1, (string?)null), (waiting.State, waiting.Position, waiting.WorkerId));
        // Queued-only listing and position pushes reached the submitter.
        // Assigned tickets are still Queued (with their worker) until the worker reports them.
        Assert.Equal(new[] { impossible.JobId, pinned.JobId }.Order(), (await submitter.ListJobsAsync(state: "queued")).Select(r => r.JobId).Order());
        await WaitUntilAsync(() => pushes.Positions.Any(p => p.JobId == impossible.JobId && p.Position == 1));
    }

    [Fact]
    public async Task AnAssignedWorkerIsReservedForTheSubmitterAndHiddenFromDiscovery()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var other = await harness.ClientAsync();
        var worker = await harness.WorkerAsync();
        var ticket = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        Assert.Equal(worker.PeerId, (await pushes.NextAssignmentAsync()).WorkerId);

        Assert.Empty(await other.DiscoverAsync(PeerFilters.Workers("available")));
        var refused = new TaskCompletionSource<SignalingError>(TaskCreationOptions.RunContinuationsAsynchronously);
        other.ErrorReceived += e => refused.TrySetResult(e);
        await other.SendOfferAsync(worker.PeerId!, "sdp");
        Assert.Equal(ErrorCodes.WorkerBusy, (await refused.Task.WaitAsync(TestServer.Wait)).Code);

        // The submitter's own offer goes through.
        var offered = new TaskCompletionSource<SdpMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.OfferReceived += o => offered.TrySetResult(o);
        await submitter.SendOfferAsync(worker.PeerId!, "sdp");
        Assert.Equal(submitter.PeerId, (await offered.Task.WaitAsync(TestServer.Wait)).Sender);
        Assert.Equal(worker.PeerId, (await harness.RecordAsync(submitter, ticket.JobId)).WorkerId);
    }

    [Fact]
    public async Task ACollectOfferReachesABusyWorkerWithoutReservingIt()
    {
        await using var harness = await QueueHarness.StartAsync();
        var collector = await harness.ClientAsync();
        var worker = await harness.WorkerAsync(status: "busy");
        var offered = new TaskCompletionSource<SdpMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.OfferReceived += o => offered.TrySetResult(o);
        await collector.SendAsync(new JsonObject
        {
            ["type"] = "offer", ["sender"] = collector.PeerId, ["target"] = worker.PeerId, ["sdp"] = "sdp", ["purpose"] = "collect",
        });
        Assert.Equal(collector.PeerId, (await offered.Task.WaitAsync(TestServer.Wait)).Sender);

        // Nothing was reserved: once available, the worker takes the next ticket of anyone.
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        await QueueHarness.SetStatusAsync(worker, "available");
        Assert.Equal(worker.PeerId, (await pushes.NextAssignmentAsync()).WorkerId);
    }

    [Fact]
    public async Task CancellingAQueuedTicketEndsItAndARunningJobGoesToItsWorker()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var worker = await harness.WorkerAsync(status: "busy");
        var running = await submitter.SubmitTicketAsync(QueueHarness.Ticket(priority: 1));
        var queued = await submitter.SubmitTicketAsync(QueueHarness.Ticket());

        var cancelled = await submitter.CancelJobAsync(queued.JobId);
        Assert.Equal(JobStates.Cancelled, cancelled.State);
        Assert.Equal(0, harness.Server.Host.JobQueue.WaitingCount(harness.Room.RoomId) - 1);

        await QueueHarness.SetStatusAsync(worker, "available");
        Assert.Equal(running.JobId, (await pushes.NextAssignmentAsync()).JobId);
        await QueueHarness.ReportAsync(worker, running.JobId, JobStates.Running);
        await harness.WaitForRecordAsync(submitter, running.JobId, r => r.State == JobStates.Running);

        var request = new TaskCompletionSource<JobCancelRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.JobCancelRequested += r => request.TrySetResult(r);
        var accepted = await submitter.CancelJobAsync(running.JobId, keepCheckpoint: true);
        Assert.Equal(JobStates.Running, accepted.State);
        var forwarded = await request.Task.WaitAsync(TestServer.Wait);
        Assert.Equal((running.JobId, true, submitter.PeerId), (forwarded.JobId, forwarded.KeepCheckpoint, forwarded.RequestedBy));

        await worker.ReportJobAsync(new JobRecord { JobId = running.JobId, State = JobStates.Cancelled, ResultsAvailable = true });
        var final = await harness.WaitForRecordAsync(submitter, running.JobId, r => r.State == JobStates.Cancelled);
        Assert.True(final.ResultsAvailable);
        // Cancelling a finished job changes nothing.
        Assert.Equal(JobStates.Cancelled, (await submitter.CancelJobAsync(running.JobId)).State);
    }

    [Fact]
    public async Task UnknownAndOtherRoomsJobIdsAreNotFound()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var ticket = await submitter.SubmitTicketAsync(QueueHarness.Ticket());

        Room otherRoom;
        await using (var admin = new SignalingClient(harness.Server.WsUrl, QueueHarness.Fast())) otherRoom = await admin.CreateRoomAsync();
        var stranger = await harness.ClientAsync(otherRoom);

        var unknown = await Assert.ThrowsAsync<SignalingException>(() => submitter.CancelJobAsync("job_0123456789ab"));
        Assert.Equal(JobQueueMessages.JobNotFound, unknown.Code);
        var foreign = await Assert.ThrowsAsync<SignalingException>(() => stranger.CancelJobAsync(ticket.JobId));
        Assert.Equal(JobQueueMessages.JobNotFound, foreign.Code);
        var malformed = await Assert.ThrowsAsync<SignalingException>(() => stranger.CancelJobAsync("../../etc"));
        Assert.Equal(JobQueueMessages.JobNotFound, malformed.Code);
        Assert.Empty(await stranger.ListJobsAsync(ticket.JobId));
        Assert.Empty(await stranger.ListJobsAsync());
        // The ticket is untouched.
        Assert.Equal(JobStates.Queued, (await harness.RecordAsync(submitter, ticket.JobId)).State);
    }

    [Fact]
    public async Task OnlyTheJobsOwnWorkerCanRewriteItsRecord()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var worker = await harness.WorkerAsync();
        var intruder = await harness.WorkerAsync(status: "busy");
        var ticket = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        await pushes.NextAssignmentAsync();
        await QueueHarness.ReportAsync(worker, ticket.JobId, JobStates.Running);
        await harness.WaitForRecordAsync(submitter, ticket.JobId, r => r.State == JobStates.Running);

        // A client may not report at all; another worker's report of this job is ignored.
        var refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var errors = new TaskCompletionSource<SignalingError>(TaskCreationOptions.RunContinuationsAsynchronously);
            submitter.ErrorReceived += e => errors.TrySetResult(e);
            await QueueHarness.ReportAsync(submitter, ticket.JobId, JobStates.Succeeded);
            throw new SignalingException("refused", await errors.Task.WaitAsync(TestServer.Wait));
        });
        Assert.Equal(ErrorCodes.InvalidMessage, Assert.IsType<SignalingException>(refused).Code);
        await QueueHarness.ReportAsync(intruder, ticket.JobId, JobStates.Failed, "forged");
        // A queued ticket of nobody cannot be claimed by a worker either.
        var waiting = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        await QueueHarness.ReportAsync(intruder, waiting.JobId, JobStates.Running);
        await Task.Delay(300);

        var record = await harness.RecordAsync(submitter, ticket.JobId);
        Assert.Equal((JobStates.Running, worker.PeerId, (string?)null), (record.State, record.WorkerId, record.Error));
        Assert.Equal(JobStates.Queued, (await harness.RecordAsync(submitter, waiting.JobId)).State);

        // Its own worker's reports apply, progress included, and a finished job does not run again.
        await QueueHarness.ReportAsync(worker, ticket.JobId, JobStates.Running, progress: new JobRecordProgress { Epoch = 3, EpochCount = 10, Loss = 0.5, LossHistory = [0.9, 0.7, 0.5] });
        await harness.WaitForRecordAsync(submitter, ticket.JobId, r => r.Progress?.Epoch == 3);
        await QueueHarness.ReportAsync(worker, ticket.JobId, JobStates.Succeeded);
        await QueueHarness.ReportAsync(worker, ticket.JobId, JobStates.Running);
        await Task.Delay(300);
        var done = await harness.RecordAsync(submitter, ticket.JobId);
        Assert.Equal(JobStates.Succeeded, done.State);
        Assert.Equal([0.9, 0.7, 0.5], done.Progress!.LossHistory);
        Assert.NotNull(done.FinishedAt);
    }

    [Fact]
    public async Task AFloodOfProgressIsCutOffButTheJobsStateChangesStillApply()
    {
        await using var harness = await QueueHarness.StartAsync(o => { o.UpdateBurst = 5; o.UpdatesPerSecond = 1; });
        var client = await harness.ClientAsync();
        var worker = await harness.WorkerAsync(status: "busy");
        const string JobId = "job_f10000000001";
        await QueueHarness.ReportAsync(worker, JobId, JobStates.Running);
        for (var epoch = 1; epoch <= 200; epoch++)
            await QueueHarness.ReportAsync(worker, JobId, JobStates.Running, progress: new JobRecordProgress { Epoch = epoch, EpochCount = 200 });
        await QueueHarness.ReportAsync(worker, JobId, JobStates.Succeeded);
        var record = await harness.WaitForRecordAsync(client, JobId, r => r.State == JobStates.Succeeded);
        // The new direct job took one token; four progress updates got through, the rest were dropped.
        Assert.InRange(record.Progress!.Epoch, 1, 10);
    }

    [Fact]
    public async Task AWorkerReportsADirectJobAndTheRoomSeesIt()
    {
        await using var harness = await QueueHarness.StartAsync();
        var client = await harness.ClientAsync();
        var worker = await harness.WorkerAsync(status: "busy");
        await worker.ReportJobAsync(new JobRecord { JobId = "job_00aa11bb22cc", State = JobStates.Uploading, PackageName = "direct.zip", MachineId = "host-a" });
        var record = await harness.WaitForRecordAsync(client, "job_00aa11bb22cc", r => r.State == JobStates.Uploading);
        Assert.Equal((worker.PeerId, "direct.zip", "host-a", (string?)null), (record.WorkerId, record.PackageName, record.MachineId, record.Submitter));
    }

    [Fact]
    public async Task AKilledWorkersJobFailsWithinThirtySecondsAndTheQueueMovesToTheOtherWorker()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        await using var doomed = await harness.RawWorkerAsync();
        var first = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        Assert.Equal(doomed.PeerId, (await pushes.NextAssignmentAsync()).WorkerId);
        await QueueHarness.RawReportAsync(doomed, first.JobId, JobStates.Running);
        await harness.WaitForRecordAsync(submitter, first.JobId, r => r.State == JobStates.Running);
        var next = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        var survivor = await harness.WorkerAsync(status: "busy");

        // Gone without a goodbye, as kill -9 leaves it (the socket aborted, no close frame, no reconnect).
        var started = DateTime.UtcNow;
        doomed.Socket.Abort();
        var failed = await harness.WaitForRecordAsync(submitter, first.JobId, r => r.State == JobStates.Failed, TimeSpan.FromSeconds(30));
        Assert.Equal(JobQueue.WorkerDisconnectedReason, failed.Error);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30));

        await QueueHarness.SetStatusAsync(survivor, "available");
        Assert.Equal((next.JobId, survivor.PeerId), ((await pushes.NextAssignmentAsync()).JobId, (await harness.RecordAsync(submitter, next.JobId)).WorkerId));
    }

    [Fact]
    public async Task AWorkerDeletedThroughTheHttpApiLosesItsRunningJob()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.WorkerLostGrace = TimeSpan.FromSeconds(1));
        var client = await harness.ClientAsync();
        var worker = await harness.WorkerAsync(status: "busy");
        await QueueHarness.ReportAsync(worker, "job_de1e7e000001", JobStates.Running);
        await harness.WaitForRecordAsync(client, "job_de1e7e000001", r => r.State == JobStates.Running);
        var (status, _) = await harness.Server.PostAsync("delete-peer", new JsonObject
        {
            ["peer_id"] = worker.PeerId, ["room_id"] = harness.Room.RoomId, ["token"] = harness.Room.Token,
        }.ToJsonString());
        Assert.Equal(200, status);
        await worker.DisposeAsync();
        var failed = await harness.WaitForRecordAsync(client, "job_de1e7e000001", r => r.State == JobStates.Failed);
        Assert.Equal(JobQueue.WorkerDisconnectedReason, failed.Error);
    }

    [Fact]
    public async Task AWorkerThatReconnectsInTheGraceAndReReportsKeepsItsJobRunning()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.WorkerLostGrace = TimeSpan.FromSeconds(3));
        var client = await harness.ClientAsync();
        await using var worker = await harness.RawWorkerAsync(status: "busy");
        await using var other = await harness.RawWorkerAsync(status: "busy");
        await QueueHarness.RawReportAsync(worker, "job_0000aaaa1111", JobStates.Running);
        await QueueHarness.RawReportAsync(other, "job_0000bbbb2222", JobStates.Running);
        await harness.WaitForRecordAsync(client, "job_0000bbbb2222", r => r.State == JobStates.Running);

        worker.Socket.Abort();
        other.Socket.Abort();
        await WaitUntilAsync(() => harness.Server.Host.Peers.Get(worker.PeerId) is null);
        // The same peer on a new connection (its id_token), re-reporting its job; the other never comes back.
        await using var resumed = await RawPeer.ConnectAsync(harness.Server.WsUrl);
        await harness.ReRegisterAsync(resumed, worker);
        await QueueHarness.RawReportAsync(resumed, "job_0000aaaa1111", JobStates.Running);
        var lost = await harness.WaitForRecordAsync(client, "job_0000bbbb2222", r => r.State == JobStates.Failed);
        Assert.Equal(JobQueue.WorkerDisconnectedReason, lost.Error);
        Assert.Equal(JobStates.Running, (await harness.RecordAsync(client, "job_0000aaaa1111")).State);

        // Reconnecting after the grace, the worker's re-report revives the record the server had failed.
        await using var late = await RawPeer.ConnectAsync(harness.Server.WsUrl);
        await harness.ReRegisterAsync(late, other);
        await QueueHarness.RawReportAsync(late, "job_0000bbbb2222", JobStates.Running);
        var revived = await harness.WaitForRecordAsync(client, "job_0000bbbb2222", r => r.State == JobStates.Running);
        Assert.Null(revived.Error);
    }

    [Fact]
    public async Task RecordsAndTicketsSurviveARestartAndNothingIsHandedOutTwice()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var assignments = new ConcurrentQueue<TicketAssignment>();
        submitter.TicketAssigned += a => assignments.Enqueue(a);
        var pushes = new Pushes(submitter);
        var faithful = await harness.WorkerAsync();
        var silent = await harness.WorkerAsync();
        var running = new List<string>();
        for (var i = 0; i < 2; i++) running.Add((await submitter.SubmitTicketAsync(QueueHarness.Ticket(priority: 5))).JobId);
        var byWorker = new Dictionary<string, string>();
        for (var i = 0; i < 2; i++)
        {
            var a = await pushes.NextAssignmentAsync();
            byWorker[a.WorkerId] = a.JobId;
        }
        foreach (var each in new[] { faithful, silent })
        {
            await QueueHarness.ReportAsync(each, byWorker[each.PeerId!], JobStates.Running);
            await QueueHarness.SetStatusAsync(each, "busy");
        }
        var queued = new List<string>();
        for (var i = 0; i < 3; i++) queued.Add((await submitter.SubmitTicketAsync(QueueHarness.Ticket(priority: i))).JobId);
        foreach (var jobId in running) await harness.WaitForRecordAsync(submitter, jobId, r => r.State == JobStates.Running);

        var back = new[] { submitter, faithful, silent }.Select(peer =>
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            peer.Reconnected += _ => tcs.TrySetResult();
            return tcs.Task;
        }).ToList();
        await harness.RestartAsync(o => o.RecoveryGrace = TimeSpan.FromSeconds(3));
        await Task.WhenAll(back).WaitAsync(TestServer.Wait);

        // The faithful worker re-reports its job at once; the silent one never does.
        await QueueHarness.ReportAsync(faithful, byWorker[faithful.PeerId!], JobStates.Running);
        var all = (await submitter.ListJobsAsync()).ToDictionary(r => r.JobId);
        Assert.Equal(5, all.Count);
        Assert.All(queued, id => Assert.Equal(JobStates.Queued, all[id].State));
        Assert.Equal([1, 2, 3], queued.AsEnumerable().Reverse().Select(id => all[id].Position!.Value));

        var lost = await harness.WaitForRecordAsync(submitter, byWorker[silent.PeerId!], r => r.State == JobStates.Failed, TimeSpan.FromSeconds(10));
        Assert.Equal(JobQueue.WorkerLostReason, lost.Error);
        Assert.Equal(JobStates.Running, (await harness.RecordAsync(submitter, byWorker[faithful.PeerId!])).State);

        // The queue goes on where it stopped: three tickets, each handed out once, highest priority first.
        var before = assignments.Count;
        var worker = faithful;
        await QueueHarness.ReportAsync(worker, byWorker[worker.PeerId!], JobStates.Succeeded);
        var handed = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            await QueueHarness.SetStatusAsync(worker, "available");
            var a = await pushes.NextAssignmentAsync();
            handed.Add(a.JobId);
            await QueueHarness.ReportAsync(worker, a.JobId, JobStates.Running);
            await QueueHarness.ReportAsync(worker, a.JobId, JobStates.Succeeded);
        }
        Assert.Equal(queued.AsEnumerable().Reverse(), handed);
        Assert.Equal(before + 3, assignments.Count);
        Assert.Equal(assignments.Count, assignments.Select(a => a.JobId).Distinct().Count());
    }

    [Fact]
    public async Task AnAssignmentCutByARestartFollowsTheWorkerItsSubmitterReachedAndNothingRunsTwice()
    {
        await using var harness = await QueueHarness.StartAsync();
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var first = await harness.WorkerAsync();
        var ticket = (await submitter.SubmitTicketAsync(QueueHarness.Ticket())).JobId;
        Assert.Equal(first.PeerId, (await pushes.NextAssignmentAsync()).WorkerId);
        // The submitter reached the worker peer to peer and the upload began; the server restarts before the worker reports it.
        await QueueHarness.SetStatusAsync(first, "busy");
        var back = new[] { submitter, first }.Select(peer =>
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            peer.Reconnected += _ => tcs.TrySetResult();
            return tcs.Task;
        }).ToList();
        await harness.RestartAsync();
        await Task.WhenAll(back).WaitAsync(TestServer.Wait);

        // The assignment did not survive: the ticket waits again and, its submitter back, goes to a free worker.
        var second = await harness.WorkerAsync();
        Assert.Equal((ticket, second.PeerId), await pushes.NextAssignmentAsync() is var again ? (again.JobId, again.WorkerId) : default);
        // The first worker reports the upload it is running: the record follows it, and the second worker is let go unused.
        await QueueHarness.ReportAsync(first, ticket, JobStates.Running);
        var running = await harness.WaitForRecordAsync(submitter, ticket, r => r.State == JobStates.Running);
        Assert.Equal(first.PeerId, running.WorkerId);
        var next = (await submitter.SubmitTicketAsync(QueueHarness.Ticket())).JobId;
        Assert.Equal((next, second.PeerId), await pushes.NextAssignmentAsync() is var freed ? (freed.JobId, freed.WorkerId) : default);
        await QueueHarness.ReportAsync(first, ticket, JobStates.Succeeded);
        var done = await harness.WaitForRecordAsync(submitter, ticket, r => r.State == JobStates.Succeeded);
        Assert.Equal(first.PeerId, done.WorkerId);
        // Only the worker it was assigned to before the restart may take it over: another worker's report is still refused.
        var stray = (await submitter.SubmitTicketAsync(QueueHarness.Ticket(workerId: "nobody"))).JobId;
        await QueueHarness.ReportAsync(second, stray, JobStates.Running);
        await Task.Delay(300);
        Assert.Equal((JobStates.Queued, (string?)null), await harness.RecordAsync(submitter, stray) is var r ? (r.State, r.WorkerId) : default);
    }

    [Fact]
    public async Task DeletingOrExpiringARoomPurgesItsRecordsAndTicketsFromMemoryAndTheStore()
    {
        await using var harness = await QueueHarness.StartAsync();
        Room shortLived, other;
        await using (var admin = new SignalingClient(harness.Server.WsUrl, QueueHarness.Fast()))
        {
            shortLived = await admin.CreateRoomAsync(expiresIn: TimeSpan.FromSeconds(2));
            other = await admin.CreateRoomAsync();
        }
        var kept = (await (await harness.ClientAsync(other)).SubmitTicketAsync(QueueHarness.Ticket())).JobId;
        var queue = () => harness.Server.Host.JobQueue;

        // In each doomed room: a finished record, an assigned ticket (its worker reserved) and a waiting one.
        async Task<(SignalingClient Worker, string[] Jobs)> FillAsync(Room room)
        {
            var submitter = await harness.ClientAsync(room);
            var pushes = new Pushes(submitter);
            var worker = await harness.WorkerAsync(room: room);
            var done = (await submitter.SubmitTicketAsync(QueueHarness.Ticket())).JobId;
            await pushes.NextAssignmentAsync();
            await QueueHarness.ReportAsync(worker, done, JobStates.Running);
            await QueueHarness.ReportAsync(worker, done, JobStates.Succeeded);
            await harness.WaitForRecordAsync(submitter, done, r => r.State == JobStates.Succeeded);
            await QueueHarness.SetStatusAsync(worker, "available");
            var assigned = (await submitter.SubmitTicketAsync(QueueHarness.Ticket())).JobId;
            Assert.Equal(assigned, (await pushes.NextAssignmentAsync()).JobId);
            var waiting = (await submitter.SubmitTicketAsync(QueueHarness.Ticket())).JobId;
            Assert.Equal(3, queue().List(room.RoomId, null, null).Count);
            return (worker, [done, assigned, waiting]);
        }
        await FillAsync(harness.Room);
        await FillAsync(shortLived);

        await using (var admin = new SignalingClient(harness.Server.WsUrl, QueueHarness.Fast())) await admin.DeleteRoomAsync(harness.Room.RoomId, harness.Room.Token);
        Assert.Empty(queue().List(harness.Room.RoomId, null, null));
        Assert.Equal(0, queue().WaitingCount(harness.Room.RoomId));
        await Task.Delay(TimeSpan.FromSeconds(2.2));
        await harness.Server.Host.PurgeExpiredRoomsAsync();
        Assert.Empty(queue().List(shortLived.RoomId, null, null));
        Assert.Equal(0, queue().WaitingCount(shortLived.RoomId));

        // Nothing comes back from the store after a restart: the purge reached the database, not only memory.
        await harness.RestartAsync();
        Assert.Empty(queue().List(harness.Room.RoomId, null, null));
        Assert.Empty(queue().List(shortLived.RoomId, null, null));
        // Another room's ticket is untouched.
        Assert.Equal(kept, Assert.Single(queue().List(other.RoomId, null, null)).JobId);
    }

    [Fact]
    public async Task AGoneSubmittersTicketsWaitForItsReturnAndAreCancelledAfterTheGrace()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.SubmitterGrace = TimeSpan.FromSeconds(2));
        var observer = await harness.ClientAsync();
        var leaving = await harness.ClientAsync();
        var kept = await leaving.SubmitTicketAsync(QueueHarness.Ticket());
        var returning = await harness.ClientAsync();
        var resumed = await returning.SubmitTicketAsync(QueueHarness.Ticket());
        var returningId = returning.PeerId!;

        await leaving.DisposeAsync();
        await returning.DisposeAsync();
        // A worker that turns up while the submitters are away does not take their tickets (nobody would connect to it).
        var worker = await harness.WorkerAsync();
        Pushes pushes = null!;
        var back = await harness.ClientAsync(username: returningId, beforeConnect: c => pushes = new Pushes(c));
        Assert.Equal(returningId, back.PeerId);
        Assert.Equal(resumed.JobId, (await pushes.NextAssignmentAsync()).JobId);

        var gone = await harness.WaitForRecordAsync(observer, kept.JobId, r => r.State == JobStates.Cancelled, TimeSpan.FromSeconds(8));
        Assert.Equal(JobQueue.SubmitterGoneReason, gone.Error);
        Assert.Equal(worker.PeerId, (await harness.RecordAsync(observer, resumed.JobId)).WorkerId);
    }

    [Fact]
    public async Task ALapsedAssignmentGoesBackToTheHeadTwiceThenFails()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.AssignmentTimeout = TimeSpan.FromMilliseconds(400));
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        var worker = await harness.WorkerAsync();
        var ticket = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        // Never offered: handed out three times in all, then failed, and the worker is free again.
        for (var i = 0; i < 3; i++) Assert.Equal(ticket.JobId, (await pushes.NextAssignmentAsync()).JobId);
        var failed = await harness.WaitForRecordAsync(submitter, ticket.JobId, r => r.State == JobStates.Failed);
        Assert.Equal(JobQueue.SubmitterDidNotConnectReason, failed.Error);
        var next = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        Assert.Equal((next.JobId, worker.PeerId), ((await pushes.NextAssignmentAsync()).JobId, (await harness.RecordAsync(submitter, next.JobId)).WorkerId));
    }

    [Fact]
    public async Task BadTicketsAndTooManyTicketsAreRejected()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.MaxQueuedPerSubmitter = 3);
        var submitter = await harness.ClientAsync();
        async Task RejectedAsync(JsonObject message, string expected)
        {
            var errors = new TaskCompletionSource<SignalingError>(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnError(SignalingError e) => errors.TrySetResult(e);
            submitter.ErrorReceived += OnError;
            await submitter.SendAsync(message);
            var error = await errors.Task.WaitAsync(TestServer.Wait);
            submitter.ErrorReceived -= OnError;
            Assert.Equal(JobQueueMessages.TicketRejected, error.Code);
            Assert.Contains(expected, error.Message);
        }
        await RejectedAsync(new JsonObject { ["type"] = "queue_submit", ["job_id"] = "job_XYZ" }, "job_id");
        await RejectedAsync(new JsonObject { ["type"] = "queue_submit", ["job_id"] = "job_0123456789ab", ["priority"] = 101 }, "priority");
        await RejectedAsync(new JsonObject
        {
            ["type"] = "queue_submit", ["job_id"] = "job_0123456789ab",
            ["requirements"] = new JsonObject { ["tags"] = new JsonArray(Enumerable.Range(0, 17).Select(i => (JsonNode)$"t{i}").ToArray()) },
        }, "tags");
        await RejectedAsync(new JsonObject { ["type"] = "queue_submit", ["job_id"] = "job_0123456789ab", ["package_name"] = new string('x', 300) }, "package_name");
        await RejectedAsync(new JsonObject { ["type"] = "queue_submit", ["job_id"] = "job_0123456789ab", ["overrides"] = new JsonObject { ["run_name"] = "../x" } }, "run_name");

        var first = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        var duplicate = await Assert.ThrowsAsync<SignalingException>(() => submitter.SubmitTicketAsync(new JobRecord { JobId = first.JobId }));
        Assert.Equal(JobQueueMessages.TicketRejected, duplicate.Code);
        await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        var full = await Assert.ThrowsAsync<SignalingException>(() => submitter.SubmitTicketAsync(QueueHarness.Ticket()));
        Assert.Equal(JobQueueMessages.TicketRejected, full.Code);
        // Cancelling one makes room again.
        await submitter.CancelJobAsync(first.JobId);
        await submitter.SubmitTicketAsync(QueueHarness.Ticket());
    }

    [Fact]
    public async Task AClassicClientWithoutTheExtensionRegistersDiscoversAndOffersAsBefore()
    {
        await using var harness = await QueueHarness.StartAsync();
        var worker = await harness.WorkerAsync();
        await using var classic = await harness.Server.JoinAsync(harness.Room.RoomId, harness.Room.Token, "client");
        await classic.SendAsync($$$$"""{"type":"discover_peers","from_peer_id":"{{{{classic.PeerId}}}}","filters":{"role":"worker","properties":{"status":"available"}}}""");
        var list = await classic.ReceiveAsync("peer_list");
        Assert.Equal(worker.PeerId, (string?)list["peers"]![0]!["peer_id"]);
        var offered = new TaskCompletionSource<SdpMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.OfferReceived += o => offered.TrySetResult(o);
        await classic.SendAsync($$"""{"type":"offer","sender":"{{classic.PeerId}}","target":"{{worker.PeerId}}","sdp":"v=0"}""");
        Assert.Equal(classic.PeerId, (await offered.Task.WaitAsync(TestServer.Wait)).Sender);
        // The classic client's reservation holds against the queue as it does against other offers.
        var submitter = await harness.ClientAsync();
        var pushes = new Pushes(submitter);
        await submitter.SubmitTicketAsync(QueueHarness.Ticket());
        await Task.Delay(300);
        Assert.False(pushes.HasAssignment);
    }

    [Fact]
    public async Task FinishedRecordsBeyondTheRetentionCountAreDropped()
    {
        await using var harness = await QueueHarness.StartAsync(o => o.MaxFinishedPerRoom = 3);
        var client = await harness.ClientAsync();
        var worker = await harness.WorkerAsync(status: "busy");
        for (var i = 0; i < 6; i++) await QueueHarness.ReportAsync(worker, $"job_00000000000{i}", JobStates.Succeeded);
        await harness.WaitForRecordAsync(client, "job_000000000005", r => r.State == JobStates.Succeeded);
        harness.Server.Host.JobQueue.Sweep();
        var left = (await client.ListJobsAsync()).Select(r => r.JobId).Order().ToList();
        Assert.Equal(["job_000000000003", "job_000000000004", "job_000000000005"], left);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TestServer.Wait;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("condition never held");
            await Task.Delay(50);
        }
    }
}
