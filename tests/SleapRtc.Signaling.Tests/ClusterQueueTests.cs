using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// The job queue of several instances sharing a real redis-server: one instance runs it (the lease holder), the others
/// forward to it; tickets from any instance run exactly once, and the queue moves when its instance stops.
/// </summary>
public sealed class ClusterQueueTests(RedisTestServer redis) : IClassFixture<RedisTestServer>
{
    private static async Task<SignalingClient> JoinAsync(TestServer instance, Room room, string role, JsonObject? metadata = null)
    {
        var client = new SignalingClient(instance.WsUrl, QueueHarness.Fast());
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, role, metadata));
        return client;
    }

    private static Task<SignalingClient> WorkerAsync(TestServer instance, Room room) => JoinAsync(instance, room, "worker", new JsonObject
    {
        ["tags"] = new JsonArray("sleap-rtc"),
        ["properties"] = new JsonObject { ["gpu_memory_mb"] = 24576, ["status"] = "busy", ["sleaprtc_ext"] = 1 },
    });

    private static async Task<TestServer> QueueInstanceAsync(TestCluster cluster)
    {
        await ClusterTests.WaitUntilAsync(() => cluster.Instances.Count(i => i.Host.RunsJobQueue) == 1);
        return cluster.Instances.Single(i => i.Host.RunsJobQueue);
    }

    [Fact]
    public async Task TicketsSubmittedOnDifferentInstancesEachRunExactlyOnce()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 3);
        var leader = await QueueInstanceAsync(cluster);
        Room room;
        await using (var admin = new SignalingClient(cluster[0].WsUrl, QueueHarness.Fast())) room = await admin.CreateRoomAsync();
        var peers = new List<SignalingClient>();
        try
        {
            var submitters = new List<SignalingClient>();
            for (var i = 0; i < 3; i++) submitters.Add(await JoinAsync(cluster[i], room, "client"));
            var workers = new List<SignalingClient>();
            for (var i = 0; i < 4; i++) workers.Add(await WorkerAsync(cluster[i % 3], room));
            peers.AddRange(submitters.Concat(workers));
            await ClusterTests.WaitUntilAsync(() => leader.Host.Peers.PeersInRoom(room.RoomId).Count == 7);

            var inbox = workers.ToDictionary(w => w.PeerId!, _ => Channel.CreateUnbounded<string>());
            var counts = new ConcurrentDictionary<string, int>();
            foreach (var submitter in submitters)
            {
                submitter.TicketAssigned += a =>
                {
                    counts.AddOrUpdate(a.JobId, 1, (_, n) => n + 1);
                    inbox[a.WorkerId].Writer.TryWrite(a.JobId);
                };
            }
            var tickets = new List<string>();
            for (var i = 0; i < 60; i++) tickets.Add((await submitters[i % 3].SubmitTicketAsync(QueueHarness.Ticket(i % 2))).JobId);
            await QueueHarness.RunStandInWorkersAsync(workers, inbox, tickets.Count, TimeSpan.FromSeconds(60));

            Assert.Equal(tickets.Order(), counts.Keys.Order());
            Assert.All(counts.Values, n => Assert.Equal(1, n));
            // Any instance answers for the whole room: the listing is forwarded to the queue's instance.
            var follower = cluster.Instances.ToList().FindIndex(i => i != leader);
            var records = await submitters[follower].ListJobsAsync();
            Assert.Equal(60, records.Count);
            Assert.All(records, r => Assert.Equal(JobStates.Succeeded, r.State));
        }
        finally
        {
            foreach (var peer in peers) await peer.DisposeAsync();
        }
    }

    [Fact]
    public async Task TheQueueMovesWithItsTicketsWhenItsInstanceStops()
    {
        var cluster = await TestCluster.StartAsync(redis, 2);
        SignalingClient? submitter = null, worker = null;
        try
        {
            var leader = await QueueInstanceAsync(cluster);
            var other = cluster.Instances.Single(i => i != leader);
            Room room;
            await using (var admin = new SignalingClient(other.WsUrl, QueueHarness.Fast())) room = await admin.CreateRoomAsync();
            submitter = await JoinAsync(other, room, "client");
            var queued = await submitter.SubmitTicketAsync(QueueHarness.Ticket());
            Assert.Equal(1, queued.Position);

            // A graceful stop writes the queue out and gives the lease up: the other instance takes over at once.
            await leader.DisposeAsync();
            await ClusterTests.WaitUntilAsync(() => other.Host.RunsJobQueue, TimeSpan.FromSeconds(5));
            var record = Assert.Single(await submitter.ListJobsAsync(queued.JobId));
            Assert.Equal(JobStates.Queued, record.State);

            var pushes = new Pushes(submitter);
            worker = await WorkerAsync(other, room);
            await QueueHarness.SetStatusAsync(worker, "available");
            var assigned = await pushes.NextAssignmentAsync();
            Assert.Equal((queued.JobId, worker.PeerId), (assigned.JobId, assigned.WorkerId));
            await Task.Delay(300);
            Assert.False(pushes.HasAssignment);
        }
        finally
        {
            if (submitter is not null) await submitter.DisposeAsync();
            if (worker is not null) await worker.DisposeAsync();
            foreach (var instance in cluster.Instances.Where(i => i.Host.IsRunning)) await instance.DisposeAsync();
        }
    }
}
