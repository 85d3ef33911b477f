using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>A cluster sharing a real redis-server when things go wrong: an instance dies, Redis goes away, Redis comes back
/// empty; and the monitor of any instance showing the whole room.</summary>
public sealed class ClusterResilienceTests(RedisTestServer redis) : IClassFixture<RedisTestServer>, IAsyncLifetime
{
    private const string Available = """{"tags": ["sleap-rtc"], "properties": {"status": "available"}}""";

    // A test that stops Redis must leave it running for the next one.
    public Task InitializeAsync() => redis.CommandAsync("PING").ContinueWith(t => t.Result is null ? redis.StartAsync() : Task.CompletedTask).Unwrap();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task TheMonitorOfAnyInstanceShowsTheWholeRoomAndItsEvents()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 3);
        var (roomId, token) = await cluster[0].NewRoomAsync();
        await using var worker = await cluster[0].JoinAsync(roomId, token, "worker", Available);

        await ClusterTests.WaitUntilAsync(() => cluster[1].Host.Peers.Get(worker.PeerId) is not null);
        using var state = new HttpRequestMessage(HttpMethod.Get, $"api/rooms/{roomId}/state");
        state.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var stateResponse = await cluster[1].Http.SendAsync(state);
        var document = JsonNode.Parse(await stateResponse.Content.ReadAsStringAsync())!;
        Assert.Equal([worker.PeerId], document["workers"]!.AsArray().Select(w => (string)w!["peer_id"]!).ToArray());

        using var events = new HttpRequestMessage(HttpMethod.Get, $"api/rooms/{roomId}/events");
        events.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var eventsResponse = await cluster[2].Http.SendAsync(events, HttpCompletionOption.ResponseHeadersRead);
        using var stream = new StreamReader(await eventsResponse.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", await NextEventAsync(stream));

        // A change made through instance 0 reaches a viewer of instance 2; so does a join through instance 1.
        await worker.SendAsync($$"""{"type": "update_metadata", "peer_id": "{{worker.PeerId}}", "metadata": {"properties": {"status": "busy"} } }""");
        Assert.Equal("status_changed", await NextEventAsync(stream));
        await using var second = await cluster[1].JoinAsync(roomId, token, "worker", Available);
        Assert.Equal("worker_joined", await NextEventAsync(stream));
        await second.DisposeAsync();
        Assert.Equal("worker_left", await NextEventAsync(stream));
    }

    private static async Task<string> NextEventAsync(StreamReader stream)
    {
        using var timeout = new CancellationTokenSource(TestServer.Wait);
        while (true)
        {
            var line = await stream.ReadLineAsync(timeout.Token) ?? throw new EndOfStreamException();
            if (line.StartsWith("event: ", StringComparison.Ordinal)) return line["event: ".Length..];
        }
    }

    [Fact]
    public async Task PeersOfAnInstanceThatDiedExpireAndTheirOwnersTakeTheirIdsOverThroughAnotherInstance()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 3);
        var (roomId, token) = await cluster[0].NewRoomAsync();
        var worker = await cluster[2].JoinAsync(roomId, token, "worker", Available);
        var lost = await cluster[2].JoinAsync(roomId, token, "worker", Available);
        await using var client = await cluster[0].JoinAsync(roomId, token, "client");
        await ClusterTests.WaitUntilAsync(() => cluster[0].Host.Peers.Get(lost.PeerId) is not null && cluster[1].Host.Peers.Get(worker.PeerId) is not null);

        await cluster[2].Host.CrashForTestsAsync();
        var crashedAt = DateTime.UtcNow;

        // Nobody else may take the worker's id meanwhile...
        var (otherIdToken, _) = await cluster[1].SignInAsync(worker.PeerId);
        await using (var thief = await RawPeer.ConnectAsync(cluster[1].WsUrl))
        {
            await thief.SendAsync($$"""{"type": "register", "peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{otherIdToken}}", "role": "worker"}""");
            Assert.Equal("PEER_ID_IN_USE", (string?)(await thief.ReceiveAsync("error"))["code"]);
        }
        // ...but its owner re-registers it through another instance at once, keeping its peer id.
        await using var back = await RawPeer.ConnectAsync(cluster[1].WsUrl);
        await back.SendAsync($$"""{"type": "register", "peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{worker.IdToken}}", "role": "worker", "metadata": {{Available}} }""");
        Assert.Equal(worker.PeerId, (string?)(await back.ReceiveAsync("registered_auth"))["peer_id"]);

        // The peer that did not come back expires after the presence TTL (5 s here), on every live instance.
        await ClusterTests.WaitUntilAsync(() => cluster[0].Host.Peers.Get(lost.PeerId) is null && cluster[1].Host.Peers.Get(lost.PeerId) is null, TimeSpan.FromSeconds(15));
        Assert.True(DateTime.UtcNow - crashedAt > TimeSpan.FromSeconds(4), "peers must not expire before the presence TTL");
        // The one that came back is intact and reachable from the other instance.
        Assert.Equal(worker.PeerId, cluster[0].Host.Peers.Get(worker.PeerId)?.PeerId);
        await client.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "o"}""");
        Assert.Equal(client.PeerId, (string?)(await back.ReceiveAsync("offer"))["sender"]);
        worker.Socket.Abort();
        lost.Socket.Abort();
    }

    [Fact]
    public async Task WithoutRedisCallersGetClearErrorsAndHealthIsDegradedAndARedisBackEmptyIsRefilledByTheInstances()
    {
        await using var cluster = await TestCluster.StartAsync(redis, 2);
        var (roomId, token) = await cluster[0].NewRoomAsync();
        await using var worker = await cluster[0].JoinAsync(roomId, token, "worker", Available);
        await using var client = await cluster[1].JoinAsync(roomId, token, "client");
        var (idToken, peerId) = await cluster[1].SignInAsync();
        await ClusterTests.WaitUntilAsync(() => cluster[1].Host.Peers.Get(worker.PeerId) is not null);

        await redis.StopAsync();
        foreach (var instance in cluster.Instances)
        {
            await ClusterTests.WaitUntilAsync(() => HealthAsync(instance).Result.Status == HttpStatusCode.ServiceUnavailable);
            Assert.Equal("degraded", (string?)(await HealthAsync(instance)).Body["status"]);
        }
        // A registration and a discovery answer an error, quickly, instead of hanging.
        await using (var late = await RawPeer.ConnectAsync(cluster[1].WsUrl))
        {
            var asked = DateTime.UtcNow;
            await late.SendAsync($$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{idToken}}", "role": "client"}""");
            var refused = await late.ReceiveAsync("error");
            Assert.Equal("SERVER_UNAVAILABLE", (string?)refused["code"]);
            Assert.True(DateTime.UtcNow - asked < TimeSpan.FromSeconds(5));
        }
        await client.SendAsync("""{"type": "discover_peers", "filters": {"role": "worker"} }""");
        Assert.Equal("SERVER_UNAVAILABLE", (string?)(await client.ReceiveAsync("error"))["code"]);

        // Redis comes back with nothing in it: the instances write their rooms and peers again by themselves.
        await redis.StartAsync();
        foreach (var instance in cluster.Instances)
            await ClusterTests.WaitUntilAsync(() => HealthAsync(instance).Result.Status == HttpStatusCode.OK, TimeSpan.FromSeconds(20));
        await ClusterTests.WaitUntilAsync(() => cluster[1].Host.Peers.Get(worker.PeerId) is not null);
        await client.SendAsync("""{"type": "discover_peers", "filters": {"role": "worker"} }""");
        Assert.Equal([worker.PeerId], (await client.ReceiveAsync("peer_list"))["peers"]!.AsArray().Select(p => (string)p!["peer_id"]!).ToArray());
        await client.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "o"}""");
        Assert.Equal(client.PeerId, (string?)(await worker.ReceiveAsync("offer"))["sender"]);
        // The room itself was written back: a new peer joins it through either instance.
        await using var newcomer = await cluster[1].JoinAsync(roomId, token, "client");
    }

    private static async Task<(HttpStatusCode Status, JsonObject Body)> HealthAsync(TestServer instance)
    {
        using var response = await instance.Http.GetAsync("health");
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }
}
