using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using SleapRtc.Protocol;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// Several instances of one deployment: server lists, failover to the next instance, draining. The instances here
/// share one SQLite file (rooms and the id-token key); peers re-register on whichever instance they reach.
/// </summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private readonly string _database = Path.Combine(Path.GetTempPath(), "failover-" + Guid.NewGuid().ToString("N") + ".db");

    private static SignalingClientOptions Fast() => new()
    {
        RequestTimeout = TimeSpan.FromSeconds(5),
        InitialReconnectDelay = TimeSpan.FromMilliseconds(200),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
    };

    private static JsonObject WorkerMetadata() => new()
    {
        ["tags"] = new JsonArray("sleap-rtc", "training-worker"),
        ["properties"] = new JsonObject { ["gpu_memory_mb"] = 24576, ["gpu_model"] = "RTX A5000", ["status"] = "available" },
    };

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        foreach (var file in new[] { _database, _database + "-wal", _database + "-shm" })
            try { File.Delete(file); } catch (IOException) { }
        return Task.CompletedTask;
    }

    private Task<TestServer> InstanceAsync() => TestServer.StartAsync(o => o.DatabasePath = _database);

    private static async Task<SignalingClient> JoinAsync(string servers, Room room, string role, JsonObject? metadata = null)
    {
        var client = new SignalingClient(servers, Fast());
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, role, metadata));
        return client;
    }

    /// <summary>A loopback port nobody listens on (bound, then released).</summary>
    private static string DeadUrl()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"ws://127.0.0.1:{port}";
    }

    [Fact]
    public void ServerListsParseTrimAndDeduplicate()
    {
        var list = SignalingEndpoints.ParseList(" a:8080, ws://b:9000/ ,a:8080,");
        Assert.Equal(new[] { "ws://a:8080/", "ws://b:9000/" }, list.Select(e => e.WebSocket.ToString()));
        Assert.Equal("ws://a:8080,ws://b:9000", SignalingEndpoints.FormatList(list));
        Assert.Throws<FormatException>(() => SignalingEndpoints.ParseList(" , "));
        var bad = Assert.Throws<FormatException>(() => SignalingEndpoints.ParseList("ws://a:8080,ftp://b"));
        Assert.Contains("ftp", bad.Message);
        // A session string carries the whole list in "s"; classic decoders ignore that key.
        var info = SessionString.Decode(SessionString.Encode("room", "tok", "peer", "ws://a:8080,ws://b:9000"));
        Assert.Equal(2, SignalingEndpoints.ParseList(info.Server!).Count);
    }

    [Fact]
    public async Task ConnectsToTheFirstReachableServerOfTheList()
    {
        await using var server = await InstanceAsync();
        Room room;
        var servers = DeadUrl() + "," + server.WsUrl;
        await using (var admin = new SignalingClient(servers, Fast())) room = await admin.CreateRoomAsync();
        Assert.Equal(servers, room.Server);
        await using var worker = await JoinAsync(servers, room, "worker", WorkerMetadata());
        Assert.Equal(server.Host.Port, worker.Endpoints.WebSocket.Port);
        Assert.True(worker.IsConnected);

        var none = new SignalingClient(DeadUrl() + "," + DeadUrl(), Fast());
        var error = await Assert.ThrowsAsync<SignalingException>(() => none.AnonymousSignInAsync());
        Assert.Contains("|", error.Message);
        await none.DisposeAsync();
    }

    [Fact]
    public async Task AStoppedInstancesPeersFailOverToTheNextKeepingTheirPeerIds()
    {
        var first = await InstanceAsync();
        await using var second = await InstanceAsync();
        var servers = first.WsUrl + "," + second.WsUrl;
        Room room;
        await using (var admin = new SignalingClient(servers, Fast())) room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(servers, room, "worker", WorkerMetadata());
        await worker.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["gpu_model"] = "H100" } });
        var peerId = worker.PeerId;
        var reconnected = new TaskCompletionSource<RegistrationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Reconnected += r => reconnected.TrySetResult(r);

        var clock = Stopwatch.StartNew();
        await first.DisposeAsync(); // a stop without draining: the connection just drops
        var result = await reconnected.Task.WaitAsync(TestServer.Wait);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"back after {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(peerId, result.PeerId);
        Assert.Equal(second.Host.Port, worker.Endpoints.WebSocket.Port);

        // The metadata update made before the failover travels with the re-registration.
        await using var client = await JoinAsync(second.WsUrl, room, "client");
        var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers()));
        Assert.Equal(peerId, found.PeerId);
        Assert.Equal("H100", (string?)found.Properties["gpu_model"]);
    }

    [Fact]
    public async Task DrainingMovesOurPeersBeforeTheInstanceStopsAndClosesClassicOnes()
    {
        var draining = await InstanceAsync();
        await using var other = await InstanceAsync();
        var servers = draining.WsUrl + "," + other.WsUrl;
        Room room;
        await using (var admin = new SignalingClient(servers, Fast())) room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(servers, room, "worker", WorkerMetadata());
        await using var client = await JoinAsync(servers, room, "client");
        var peerId = worker.PeerId;
        var dropped = 0;
        worker.Disconnected += _ => Interlocked.Increment(ref dropped);
        var moved = new TaskCompletionSource<RegistrationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Reconnected += r => moved.TrySetResult(r);

        // A classic peer (no client_extensions in its register) only sees its connection close.
        await using var classic = await RawPeer.ConnectAsync(draining.WsUrl);
        var (idToken, name) = await draining.SignInAsync();
        await classic.SendAsync(Wire.Register(name, room.RoomId, room.Token, idToken, "client"));
        await classic.ReceiveAsync("registered_auth");

        var clock = Stopwatch.StartNew();
        var drain = draining.Host.DrainAsync(TimeSpan.FromSeconds(20));
        // No new connection is accepted once the drain has started.
        await Wire.WaitUntilAsync(() => draining.Host.IsDraining);
        await Assert.ThrowsAnyAsync<Exception>(() => RawPeer.ConnectAsync(draining.WsUrl));
        Assert.Equal((WebSocketCloseStatus)1012, await classic.ReceiveCloseAsync());

        var result = await moved.Task.WaitAsync(TestServer.Wait);
        Assert.Equal(peerId, result.PeerId);
        // Make before break: the worker never went away, and the drain ended as soon as every peer had moved.
        await drain.WaitAsync(TestServer.Wait);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"drain took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(0, dropped);
        Assert.False(draining.Host.IsRunning);
        Assert.Equal(other.Host.Port, worker.Endpoints.WebSocket.Port);
        Assert.Equal(other.Host.Port, client.Endpoints.WebSocket.Port);
        var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers()));
        Assert.Equal(peerId, found.PeerId);
        await draining.DisposeAsync();
    }

    [Fact]
    public async Task DrainingTheOnlyInstanceLetsItsPeersGoAtOnceAndTheyReconnectWhenItIsBack()
    {
        var server = await TestServer.StartAsync(o => o.DatabasePath = _database);
        var port = server.Host.Port;
        Room room;
        await using (var admin = new SignalingClient(server.WsUrl, Fast())) room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        var reconnected = new TaskCompletionSource<RegistrationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Reconnected += r => reconnected.TrySetResult(r);

        // The worker has no other instance to go to: it leaves at once instead of holding the drain for its timeout.
        var clock = Stopwatch.StartNew();
        await server.Host.DrainAsync(TimeSpan.FromSeconds(20)).WaitAsync(TestServer.Wait);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"drain took {clock.Elapsed.TotalSeconds:F1} s");
        await server.DisposeAsync();
        await using var restarted = await TestServer.StartAsync(o => { o.DatabasePath = _database; o.Port = port; });
        Assert.Equal(worker.PeerId, (await reconnected.Task.WaitAsync(TestServer.Wait)).PeerId);
    }

    [Fact]
    public async Task ADrainWaitsNoLongerThanItsTimeoutForPeersThatDoNotMove()
    {
        await using var server = await InstanceAsync();
        var (roomId, token) = await server.NewRoomAsync();
        // A peer that asked to be told but never moves (as a stuck client would): the drain closes it at the timeout.
        await using var stuck = await RawPeer.ConnectAsync(server.WsUrl);
        var (idToken, name) = await server.SignInAsync();
        var register = JsonNode.Parse(Wire.Register(name, roomId, token, idToken))!.AsObject();
        register["client_extensions"] = new JsonArray("server_draining");
        await stuck.SendAsync(register);
        await stuck.ReceiveAsync("registered_auth");

        var clock = Stopwatch.StartNew();
        var drain = server.Host.DrainAsync(TimeSpan.FromMilliseconds(800));
        var notice = await stuck.ReceiveAsync("server_draining");
        Assert.Equal(800, (long)notice["timeout_ms"]!);
        await drain.WaitAsync(TestServer.Wait);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(700), TimeSpan.FromSeconds(5));
        await stuck.ReceiveCloseAsync();
        Assert.NotEqual(WebSocketState.Open, stuck.Socket.State);
    }
}
