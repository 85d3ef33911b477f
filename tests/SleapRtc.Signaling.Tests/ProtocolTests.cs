using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>Wire behaviour with classic-shaped peers (raw JSON over ClientWebSocket, as the Python tool sends it).</summary>
public class ProtocolTests
{
    /// <summary>The server under test: one server here; an instance of a cluster sharing Redis in the derived
    /// Cluster* classes (ClusterConformanceTests.cs), whose peers join through every instance in turn.</summary>
    protected virtual Task<TestServer> StartServerAsync(Action<SleapRtc.Signaling.Server.SignalingServerOptions>? configure = null) => TestServer.StartAsync(configure);

    private const string Gpu24 = """{"tags": ["sleap-rtc", "training-worker"], "properties": {"gpu_memory_mb": 24576, "status": "available", "gpu_model": "A"}}""";
    private const string Gpu8 = """{"tags": ["inference-worker"], "properties": {"gpu_memory_mb": 8192, "status": "available", "gpu_model": "B"}}""";

    private static string Discover(RawPeer from, string filters) => $$"""{"type": "discover_peers", "from_peer_id": "{{from.PeerId}}", "filters": {{filters}} }""";

    private static async Task<List<string>> DiscoverIdsAsync(RawPeer from, string filters)
    {
        await from.SendAsync(Discover(from, filters));
        var list = await from.ReceiveAsync("peer_list");
        Assert.Equal(from.PeerId, (string?)list["to_peer_id"]);
        var ids = list["peers"]!.AsArray().Select(p => (string)p!["peer_id"]!).ToList();
        Assert.Equal(ids.Count, (int)list["count"]!);
        return ids;
    }

    [Fact]
    public async Task RegisteredAuthListsOtherPeersTheirMetadataAndIceServers()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);

        var (idToken, peerId) = await server.SignInAsync();
        await using var client = await RawPeer.ConnectAsync(server.WsUrl);
        await client.SendAsync($$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{idToken}}"}""");
        var auth = await client.ReceiveAsync("registered_auth");
        Assert.Equal(roomId, (string?)auth["room_id"]);
        Assert.Equal(token, (string?)auth["token"]);
        Assert.Equal([worker.PeerId], auth["peer_list"]!.AsArray().Select(p => (string)p!).ToArray());
        Assert.Equal(24576, (int)auth["peer_metadata"]![worker.PeerId]!["properties"]!["gpu_memory_mb"]!);
        Assert.Null(auth["admin_peer_id"]);
        Assert.Equal($"stun:127.0.0.1:{server.Host.StunPort}", (string?)auth["ice_servers"]![0]!["urls"]![0]);
        Assert.NotNull(auth["mesh_ice_servers"]);

        // Default role is "peer": it is not listed as a worker.
        await using var other = await server.JoinAsync(roomId, token, "client");
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(other, """{"role": "worker"}"""));
        Assert.Equal([peerId], await DiscoverIdsAsync(other, """{"role": "peer"}"""));
    }

    [Fact]
    public async Task DiscoveryFiltersFollowClassicSemantics()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var big = await server.JoinAsync(roomId, token, "worker", Gpu24);
        await using var small = await server.JoinAsync(roomId, token, "worker", Gpu8);
        await using var client = await server.JoinAsync(roomId, token, "client", """{"tags": ["sleap-rtc"]}""");

        Assert.Equal([big.PeerId], await DiscoverIdsAsync(client, """{"properties": {"gpu_memory_mb": {"$gte": 10000} } }"""));
        Assert.Equal([small.PeerId], await DiscoverIdsAsync(client, """{"properties": {"gpu_memory_mb": {"$lte": 10000} } }"""));
        Assert.Equal([small.PeerId], await DiscoverIdsAsync(client, """{"properties": {"gpu_memory_mb": {"$eq": 8192.0} } }"""));
        Assert.Equal([small.PeerId], await DiscoverIdsAsync(client, """{"properties": {"gpu_memory_mb": {"$gte": 8192, "$lte": 8192} } }"""));
        Assert.Equal([big.PeerId], await DiscoverIdsAsync(client, """{"properties": {"gpu_model": "A"} }"""));
        Assert.Empty(await DiscoverIdsAsync(client, """{"properties": {"cuda_version": {"$gte": "11"} } }"""));
        // Tags match any; the requester (also tagged sleap-rtc) is excluded.
        Assert.Equal(new[] { big.PeerId, small.PeerId }.Order(), (await DiscoverIdsAsync(client, """{"tags": ["inference-worker", "sleap-rtc"]}""")).Order());
        Assert.Equal([small.PeerId], await DiscoverIdsAsync(client, """{"tags": ["inference-worker", "nothing"]}"""));
        Assert.Equal(new[] { big.PeerId, small.PeerId }.Order(), (await DiscoverIdsAsync(client, """{"role": "worker", "tags": []}""")).Order());
        Assert.Empty(await DiscoverIdsAsync(client, """{"role": "Worker"}"""));
        // No filters at all: everyone else.
        await client.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{client.PeerId}}"}""");
        Assert.Equal(2, (int)(await client.ReceiveAsync("peer_list"))["count"]!);
    }

    [Fact]
    public async Task UpdateMetadataMergesTagsAndPropertiesAndReplacesOtherKeys()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", """{"tags": ["a", "b"], "properties": {"status": "available", "gpu_memory_mb": 100}, "note": "old"}""");
        await worker.SendAsync($$"""{"type": "update_metadata", "peer_id": "{{worker.PeerId}}", "metadata": {"tags": ["b", "c"], "properties": {"status": "busy", "hostname": "h"}, "note": "new"} }""");
        var updated = await worker.ReceiveAsync("metadata_updated");
        Assert.Equal(worker.PeerId, (string?)updated["peer_id"]);
        var merged = updated["metadata"]!;
        Assert.Equal(["a", "b", "c"], merged["tags"]!.AsArray().Select(t => (string)t!).ToArray());
        Assert.Equal("busy", (string?)merged["properties"]!["status"]);
        Assert.Equal(100, (int)merged["properties"]!["gpu_memory_mb"]!);
        Assert.Equal("h", (string?)merged["properties"]!["hostname"]);
        Assert.Equal("new", (string?)merged["note"]);

        await using var client = await server.JoinAsync(roomId, token, "client");
        Assert.Empty(await DiscoverIdsAsync(client, """{"properties": {"status": "available"} }"""));
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(client, """{"properties": {"status": "busy"} }"""));
    }

    [Fact]
    public async Task PeerMessageCandidateAndMeshMessagesAreRelayedWithTheRegisteredSender()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var a = await server.JoinAsync(roomId, token, "worker", Gpu24);
        await using var b = await server.JoinAsync(roomId, token, "client");

        await b.SendAsync($$"""{"type": "peer_message", "from_peer_id": "spoofed", "to_peer_id": "{{a.PeerId}}", "payload": {"app_message_type": "job_request", "n": 1} }""");
        var relayed = await a.ReceiveAsync("peer_message");
        Assert.Equal(b.PeerId, (string?)relayed["from_peer_id"]);
        Assert.Equal(a.PeerId, (string?)relayed["to_peer_id"]);
        Assert.Equal("job_request", (string?)relayed["payload"]!["app_message_type"]);

        await b.SendAsync($$"""{"type": "candidate", "sender": "{{b.PeerId}}", "target": "{{a.PeerId}}", "candidate": {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0"} }""");
        var candidate = await a.ReceiveAsync("candidate");
        Assert.Equal(b.PeerId, (string?)candidate["sender"]);
        Assert.Equal("0", (string?)candidate["candidate"]!["sdpMid"]);

        await a.SendAsync($$"""{"type": "mesh_connect", "from_peer_id": "{{a.PeerId}}", "target_peer_id": "{{b.PeerId}}", "offer": {"sdp": "m", "type": "offer"} }""");
        var meshOffer = await b.ReceiveAsync("mesh_offer");
        Assert.Equal(a.PeerId, (string?)meshOffer["from_peer_id"]);
        Assert.Equal("m", (string?)meshOffer["offer"]!["sdp"]);
        await b.SendAsync($$"""{"type": "mesh_answer", "from_peer_id": "{{b.PeerId}}", "target_peer_id": "{{a.PeerId}}", "answer": {"sdp": "n", "type": "answer"} }""");
        Assert.Equal("n", (string?)(await a.ReceiveAsync("mesh_answer"))["answer"]!["sdp"]);
        await b.SendAsync($$"""{"type": "ice_candidate", "from_peer_id": "{{b.PeerId}}", "target_peer_id": "{{a.PeerId}}", "candidate": {"candidate": "c", "sdpMLineIndex": 0, "sdpMid": "0"} }""");
        Assert.Equal("c", (string?)(await a.ReceiveAsync("ice_candidate"))["candidate"]!["candidate"]);
        await a.SendAsync($$"""{"type": "mesh_connect", "from_peer_id": "{{a.PeerId}}", "target_peer_id": "ghost", "offer": {} }""");
        var missing = await a.ReceiveAsync("error");
        Assert.Equal("PEER_NOT_FOUND", (string?)missing["code"]);
        Assert.Equal("peer_not_found", (string?)missing["reason"]);
        Assert.Equal("ghost", (string?)missing["target_peer_id"]);
    }

    [Fact]
    public async Task WorkerRefusalCarryingTargetIsDeliveredToTheClient()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);
        await using var client = await server.JoinAsync(roomId, token, "client");
        await worker.SendAsync($$"""{"type": "error", "target": "{{client.PeerId}}", "reason": "worker_busy", "message": "Worker is currently busy. Please use --room-id and --token to discover available workers.", "current_status": "busy"}""");
        var refusal = await client.ReceiveAsync("error");
        Assert.Equal("worker_busy", (string?)refusal["reason"]);
        Assert.Equal("busy", (string?)refusal["current_status"]);
        Assert.Equal(worker.PeerId, (string?)refusal["sender"]);
        // An error without target goes nowhere and does not upset the server.
        await worker.SendAsync("""{"type": "error", "reason": "oops"}""");
        await worker.ExpectSilenceAsync(200);
    }

    [Fact]
    public async Task AdminConflictIsReportedToTheSecondAdmin()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var (t1, id1) = await server.SignInAsync();
        await using var first = await RawPeer.ConnectAsync(server.WsUrl);
        await first.SendAsync($$"""{"type": "register", "peer_id": "{{id1}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{t1}}", "role": "worker", "is_admin": true}""");
        Assert.Equal(id1, (string?)(await first.ReceiveAsync("registered_auth"))["admin_peer_id"]);

        var (t2, id2) = await server.SignInAsync();
        await using var second = await RawPeer.ConnectAsync(server.WsUrl);
        await second.SendAsync($$"""{"type": "register", "peer_id": "{{id2}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{t2}}", "role": "worker", "is_admin": true}""");
        Assert.Equal(id1, (string?)(await second.ReceiveAsync("registered_auth"))["admin_peer_id"]);
        var conflict = await second.ReceiveAsync("admin_conflict");
        Assert.Equal(id1, (string?)conflict["current_admin"]);
        Assert.Equal(roomId, (string?)conflict["room_id"]);
    }

    [Fact]
    public async Task ServerSendsJsonPingsAtTheConfiguredInterval()
    {
        await using var server = await StartServerAsync(o => o.PingInterval = TimeSpan.FromMilliseconds(100));
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        var ping = await peer.ReceiveAsync("ping", TimeSpan.FromSeconds(5));
        Assert.Equal("""{"type":"ping"}""", ping.ToJsonString());
        await peer.SendAsync("""{"type": "pong"}""");
        await peer.SendAsync("""{"type": "discover_peers"}""");
        Assert.Equal("NOT_IN_ROOM", (string?)(await peer.ReceiveAsync("error"))["code"]);
    }

    [Fact]
    public async Task DisconnectRemovesThePeerFromDiscoveryAndRegistry()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);
        await using var client = await server.JoinAsync(roomId, token, "client");
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(client, """{"role": "worker"}"""));

        worker.Socket.Abort();
        await worker.DisposeAsync();
        var deadline = DateTime.UtcNow + TestServer.Wait;
        while (server.Host.Peers.Get(worker.PeerId) is not null && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Null(server.Host.Peers.Get(worker.PeerId));
        Assert.Empty(await DiscoverIdsAsync(client, """{"role": "worker"}"""));
        Assert.Equal(1, server.Host.Peers.Count);
    }

    [Fact]
    public async Task ReservationIsReleasedWhenTheReservingClientDisconnects()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);
        var first = await server.JoinAsync(roomId, token, "client");
        await using var second = await server.JoinAsync(roomId, token, "client");

        await first.SendAsync($$"""{"type": "offer", "sender": "{{first.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "x"}""");
        await worker.ReceiveAsync("offer");
        Assert.Empty(await DiscoverIdsAsync(second, """{"properties": {"status": "available"} }"""));
        // The reserving client may offer again (renegotiation); others may not.
        await first.SendAsync($$"""{"type": "offer", "sender": "{{first.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "y"}""");
        Assert.Equal("y", (string?)(await worker.ReceiveAsync("offer"))["sdp"]);
        await second.SendAsync($$"""{"type": "offer", "sender": "{{second.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "z"}""");
        var busy = await second.ReceiveAsync("error");
        Assert.Equal("WORKER_BUSY", (string?)busy["code"]);
        Assert.Equal(second.PeerId, (string?)busy["target"]);

        await first.DisposeAsync();
        // The worker hears that the client holding it left (PEER_LEFT), then is free for the next offer.
        var left = await worker.ReceiveAsync("error");
        Assert.Equal(("PEER_LEFT", first.PeerId), ((string?)left["code"], (string?)left["sender"]));
        var deadline = DateTime.UtcNow + TestServer.Wait;
        List<string> available;
        do available = await DiscoverIdsAsync(second, """{"properties": {"status": "available"} }""");
        while (available.Count == 0 && DateTime.UtcNow < deadline);
        Assert.Equal([worker.PeerId], available);
        await second.SendAsync($$"""{"type": "offer", "sender": "{{second.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "w"}""");
        Assert.Equal(second.PeerId, (string?)(await worker.ReceiveAsync("offer"))["sender"]);
    }

    [Fact]
    public async Task OffersToAWorkerThatPublishedBusyAreRefusedByTheServer()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", """{"properties": {"status": "busy"}}""");
        await using var client = await server.JoinAsync(roomId, token, "client");
        await client.SendAsync($$"""{"type": "offer", "sender": "{{client.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "x"}""");
        var busy = await client.ReceiveAsync("error");
        Assert.Equal("worker_busy", (string?)busy["reason"]);
        Assert.Equal("busy", (string?)busy["current_status"]);
        await worker.ExpectSilenceAsync(200);
    }

    [Fact]
    public async Task ConcurrentOffersFromManyClientsReserveTheWorkerExactlyOnce()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);
        var clients = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => server.JoinAsync(roomId, token, "client")));
        try
        {
            await Task.WhenAll(clients.Select(c => c.SendAsync($$"""{"type": "offer", "sender": "{{c.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "x"}""")));
            var offer = await worker.ReceiveAsync("offer");
            await worker.ExpectSilenceAsync(300);
            var refused = 0;
            foreach (var c in clients.Where(c => c.PeerId != (string?)offer["sender"]))
            {
                Assert.Equal("WORKER_BUSY", (string?)(await c.ReceiveAsync("error"))["code"]);
                refused++;
            }
            Assert.Equal(7, refused);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task ReregistrationOfTheSamePeerReplacesTheOldConnection()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var old = await server.JoinAsync(roomId, token, "worker", Gpu24);
        await using var again = await RawPeer.ConnectAsync(server.WsUrl);
        await again.SendAsync($$"""{"type": "register", "peer_id": "{{old.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{old.IdToken}}", "role": "worker", "metadata": {"properties": {"status": "available", "gpu_memory_mb": 1} } }""");
        await again.ReceiveAsync("registered_auth");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await old.ReceiveCloseAsync());
        await old.DisposeAsync();
        await using var client = await server.JoinAsync(roomId, token, "client");
        await client.SendAsync(Discover(client, """{"role": "worker"}"""));
        var list = await client.ReceiveAsync("peer_list");
        Assert.Equal(1, (int)list["peers"]![0]!["metadata"]!["properties"]!["gpu_memory_mb"]!);
    }

    [Fact]
    public async Task RepeatedDiscoveryFollowsEveryChangeInTheRoom()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var client = await server.JoinAsync(roomId, token, "client");
        const string filter = """{"role": "worker", "properties": {"status": "available"} }""";
        Assert.Empty(await DiscoverIdsAsync(client, filter));

        var worker = await server.JoinAsync(roomId, token, "worker", Gpu24);
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(client, filter));
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(client, filter));

        await worker.SendAsync($$"""{"type": "update_metadata", "peer_id": "{{worker.PeerId}}", "metadata": {"properties": {"status": "busy"} } }""");
        await worker.ReceiveAsync("metadata_updated");
        Assert.Empty(await DiscoverIdsAsync(client, filter));

        await worker.SendAsync($$"""{"type": "update_metadata", "peer_id": "{{worker.PeerId}}", "metadata": {"properties": {"status": "available"} } }""");
        await worker.ReceiveAsync("metadata_updated");
        Assert.Equal([worker.PeerId], await DiscoverIdsAsync(client, filter));

        // The server's own reservation changes what discovery shows, too.
        await using var other = await server.JoinAsync(roomId, token, "client");
        await other.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "x"}""");
        await worker.ReceiveAsync("offer");
        Assert.Empty(await DiscoverIdsAsync(client, filter));

        await worker.DisposeAsync();
        var deadline = DateTime.UtcNow + TestServer.Wait;
        while (server.Host.Peers.Get(worker.PeerId) is not null && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Empty(await DiscoverIdsAsync(client, """{"role": "worker"}"""));
        await using var second = await server.JoinAsync(roomId, token, "worker", Gpu8);
        Assert.Equal([second.PeerId], await DiscoverIdsAsync(client, filter));
    }
}
