using System.Net;
using System.Text.Json.Nodes;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>Several signaling instances sharing a real redis-server: what one server guarantees holds across them.</summary>
public sealed class ClusterTests(RedisTestServer redis) : IClassFixture<RedisTestServer>
{
    private const string Available = """{"tags": ["sleap-rtc"], "properties": {"status": "available", "gpu_memory_mb": 8192}}""";

    [Fact]
    public async Task TwentyClientsRacingForThreeWorkersOverThreeInstancesGetExactlyThreeReservations()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 3);
        var (roomId, token) = await cluster[0].NewRoomAsync();
        var workers = new List<RawPeer>();
        for (var i = 0; i < 3; i++) workers.Add(await cluster[i].JoinAsync(roomId, token, "worker", Available));
        var clients = new List<RawPeer>();
        for (var i = 0; i < 20; i++) clients.Add(await cluster[i % 3].JoinAsync(roomId, token, "client"));
        await WaitUntilAsync(() => cluster.Instances.All(s => s.Host.Peers.PeersInRoom(roomId).Count == 23),
            explain: () => string.Join("\n", cluster.Instances.Select(i => i.Host.Peers.PeersInRoom(roomId).Count + "").Concat(cluster.Instances.SelectMany(i => i.Log.Lines).Where(l => !l.StartsWith("Information")))));

        // Every client offers to every worker at once; each worker must be reserved by exactly one client.
        // (One send at a time per socket, as WebSocket requires; the clients race each other.)
        await Task.WhenAll(clients.Select(async c =>
        {
            foreach (var w in workers) await c.SendAsync($$"""{"type": "offer", "target": "{{w.PeerId}}", "sdp": "v=0 from {{c.PeerId}}"}""");
        }));

        // Every instance shows every worker reserved (the reservation is one script in Redis, not per instance).
        await WaitUntilAsync(() => cluster.Instances.All(instance =>
            workers.All(w => instance.Host.Peers.Get(w.PeerId)?.MetadataJson.Contains("\"reserved\"") == true)),
            explain: () => string.Join("\n", cluster.Instances.SelectMany(i => workers.Select(w => i.Host.Peers.Get(w.PeerId)?.MetadataJson ?? "missing"))
                .Concat(cluster.Instances.SelectMany(i => i.Log.Lines).Where(l => !l.StartsWith("Information") && !l.StartsWith("Debug")))));
        var winners = new List<string>();
        foreach (var worker in workers) winners.Add((string)(await worker.ReceiveAsync("offer"))["sender"]!);
        foreach (var client in clients)
        {
            for (var refused = winners.Count(w => w == client.PeerId); refused < 3; refused++)
            {
                var error = await client.ReceiveAsync("error");
                Assert.True((string?)error["code"] == "WORKER_BUSY", error.ToJsonString() + "\n" + string.Join("\n", cluster.Instances.SelectMany(i => i.Log.Lines).Where(l => l.StartsWith("Warning") || l.StartsWith("Error"))));
            }
        }
        // Nothing else: no worker got a second offer, no client a second answer.
        await Task.WhenAll(workers.Concat(clients).Select(p => p.ExpectSilenceAsync(500)));

        foreach (var peer in workers.Concat(clients)) await peer.DisposeAsync();
    }

    [Fact]
    public async Task OfferAnswerCandidatesAndPeerMessagesCrossInstancesInOrderAndRoomsStayApart()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 2);
        var (roomId, token) = await cluster[0].NewRoomAsync();
        var (otherRoom, otherToken) = await cluster[1].NewRoomAsync();
        await using var worker = await cluster[0].JoinAsync(roomId, token, "worker", Available);
        await using var client = await cluster[1].JoinAsync(roomId, token, "client");
        await using var stranger = await cluster[1].JoinAsync(otherRoom, otherToken, "client");
        await WaitUntilAsync(() => cluster[1].Host.Peers.Get(worker.PeerId) is not null);

        await client.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "o"}""");
        var offer = await worker.ReceiveAsync("offer");
        Assert.Equal(client.PeerId, (string?)offer["sender"]);
        await worker.SendAsync($$"""{"type": "answer", "target": "{{client.PeerId}}", "sdp": "a"}""");
        Assert.Equal(worker.PeerId, (string?)(await client.ReceiveAsync("answer"))["sender"]);
        for (var i = 0; i < 50; i++) await client.SendAsync($$"""{"type": "candidate", "target": "{{worker.PeerId}}", "candidate": {"n": {{i}} } }""");
        for (var i = 0; i < 50; i++) Assert.Equal(i, (int)(await worker.ReceiveAsync("candidate"))["candidate"]!["n"]!);
        await client.SendAsync($$"""{"type": "peer_message", "to_peer_id": "{{worker.PeerId}}", "payload": {"x": 1} }""");
        Assert.Equal(client.PeerId, (string?)(await worker.ReceiveAsync("peer_message"))["from_peer_id"]);

        // Another room's peer cannot reach the worker, whatever instance it is on.
        await stranger.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "o"}""");
        Assert.Equal("PEER_NOT_FOUND", (string?)(await stranger.ReceiveAsync("error"))["code"]);
        await stranger.SendAsync($$"""{"type": "peer_message", "to_peer_id": "{{worker.PeerId}}", "payload": {} }""");
        Assert.Equal("PEER_NOT_IN_ROOM", (string?)(await stranger.ReceiveAsync("error"))["code"]);
        await worker.ExpectSilenceAsync(300);

        // Discovery on either instance lists the room's peers wherever they are connected.
        await client.SendAsync($$"""{"type": "discover_peers", "filters": {"role": "worker"} }""");
        var list = await client.ReceiveAsync("peer_list");
        Assert.Equal([worker.PeerId], list["peers"]!.AsArray().Select(p => (string)p!["peer_id"]!).ToArray());

        // The worker leaving is seen everywhere, and the client learns it held the reservation.
        await worker.DisposeAsync();
        await WaitUntilAsync(() => cluster[1].Host.Peers.Get(worker.PeerId) is null);
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan? within = null, Func<string>? explain = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TestServer.Wait);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("The condition did not hold in time. " + explain?.Invoke());
            await Task.Delay(20);
        }
    }
}
