using System.Text.Json.Nodes;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class SignalingClientTests
{
    private static SignalingClientOptions Fast() => new()
    {
        RequestTimeout = TimeSpan.FromSeconds(5),
        InitialReconnectDelay = TimeSpan.FromMilliseconds(100),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(400),
    };

    private static JsonObject WorkerMetadata(long gpuMb = 24576, string status = "available") => new()
    {
        ["tags"] = new JsonArray("sleap-rtc", "training-worker"),
        ["properties"] = new JsonObject { ["gpu_memory_mb"] = gpuMb, ["gpu_model"] = "RTX A5000", ["status"] = status },
    };

    private static async Task<SignalingClient> JoinAsync(string url, Room room, string role, JsonObject? metadata = null, SignalingClientOptions? options = null)
    {
        var client = new SignalingClient(url, options ?? Fast());
        var signIn = await client.AnonymousSignInAsync();
        await client.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, role, metadata));
        return client;
    }

    [Fact]
    public async Task CreatesRoomRegistersDiscoversAndRelaysOfferAnswer()
    {
        await using var server = await TestServer.StartAsync();
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync("lab", TimeSpan.FromDays(2));
        Assert.Equal(32, room.Token.Length);
        Assert.True(room.ExpiresAt > DateTimeOffset.UtcNow.AddDays(1.9));

        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        await using var client = await JoinAsync(server.WsUrl, room, "client");
        Assert.Contains(worker.PeerId!, client.Registration!.PeerIds);
        Assert.Equal($"stun:127.0.0.1:{server.Host.StunPort}", (string?)client.Registration.IceServers[0]!["urls"]![0]);

        var workers = await client.DiscoverAsync(PeerFilters.Workers("available", 8192, ["sleap-rtc"]));
        var found = Assert.Single(workers);
        Assert.Equal(worker.PeerId, found.PeerId);
        Assert.Equal(24576, (long)found.Properties["gpu_memory_mb"]!);
        Assert.Empty(await client.DiscoverAsync(PeerFilters.Workers("available", 32768)));

        var offerSeen = new TaskCompletionSource<SdpMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.OfferReceived += offer => offerSeen.TrySetResult(offer);
        var answerSeen = new TaskCompletionSource<SdpMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.AnswerReceived += answer => answerSeen.TrySetResult(answer);

        await client.SendOfferAsync(worker.PeerId!, "offer-sdp");
        var offer = await offerSeen.Task.WaitAsync(TestServer.Wait);
        Assert.Equal(client.PeerId, offer.Sender);
        await worker.SendAnswerAsync(offer.Sender, "answer-sdp");
        var answer = await answerSeen.Task.WaitAsync(TestServer.Wait);
        Assert.Equal("answer-sdp", answer.Sdp);
        Assert.Equal(worker.PeerId, answer.Sender);
    }

    [Fact]
    public async Task SecondClientGetsWorkerBusyUntilWorkerIsAvailableAgain()
    {
        await using var server = await TestServer.StartAsync();
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        await using var first = await JoinAsync(server.WsUrl, room, "client");
        await using var second = await JoinAsync(server.WsUrl, room, "client");

        var offers = new List<string>();
        var firstOffer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.OfferReceived += offer => { lock (offers) offers.Add(offer.Sender); firstOffer.TrySetResult(); };
        var busy = new TaskCompletionSource<SignalingError>(TaskCreationOptions.RunContinuationsAsynchronously);
        second.ErrorReceived += error => busy.TrySetResult(error);

        await first.SendOfferAsync(worker.PeerId!, "sdp-1");
        await firstOffer.Task.WaitAsync(TestServer.Wait);
        await second.SendOfferAsync(worker.PeerId!, "sdp-2");
        var error = await busy.Task.WaitAsync(TestServer.Wait);
        Assert.True(error.IsWorkerBusy);
        Assert.Equal("reserved", error.CurrentStatus);
        Assert.Equal(worker.PeerId, error.Sender);
        Assert.Empty(await second.DiscoverAsync(PeerFilters.Workers()));

        await worker.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["status"] = "available" } });
        Assert.Single(await second.DiscoverAsync(PeerFilters.Workers()));
        lock (offers) Assert.Equal([first.PeerId!], offers);
    }

    [Fact]
    public async Task ReconnectsAndReregistersAfterServerRestart()
    {
        var database = Path.Combine(Path.GetTempPath(), "sleaprtc-client-" + Guid.NewGuid().ToString("N") + ".db");
        try
        {
            var server = await TestServer.StartAsync(o => o.DatabasePath = database);
            var port = server.Host.Port;
            var url = server.WsUrl;
            Room room;
            await using (var admin = new SignalingClient(url, Fast())) room = await admin.CreateRoomAsync();
            await using var worker = await JoinAsync(url, room, "worker", WorkerMetadata());
            await worker.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["gpu_model"] = "H100" } });

            var reconnected = new TaskCompletionSource<RegistrationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            worker.Reconnected += r => reconnected.TrySetResult(r);
            var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            worker.Disconnected += _ => disconnected.TrySetResult();

            await server.DisposeAsync();
            await disconnected.Task.WaitAsync(TestServer.Wait);
            await using var restarted = await TestServer.StartAsync(o => { o.DatabasePath = database; o.Port = port; });
            var result = await reconnected.Task.WaitAsync(TestServer.Wait);
            Assert.Equal(worker.PeerId, result.PeerId);

            await using var client = await JoinAsync(url, room, "client");
            var found = Assert.Single(await client.DiscoverAsync(PeerFilters.Workers()));
            Assert.Equal("H100", (string?)found.Properties["gpu_model"]);
        }
        finally
        {
            foreach (var file in new[] { database, database + "-wal", database + "-shm" }) File.Delete(file);
        }
    }

    [Fact]
    public async Task ConnectFailsWithTheServersReason()
    {
        await using var server = await TestServer.StartAsync();
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync();

        await using var wrongToken = new SignalingClient(server.WsUrl, Fast());
        var signIn = await wrongToken.AnonymousSignInAsync();
        var refused = await Assert.ThrowsAsync<SignalingException>(() =>
            wrongToken.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, "guess", signIn.IdToken, "client")));
        Assert.Equal("Invalid token", refused.Reason);
        Assert.DoesNotContain(signIn.IdToken, refused.ToString());

        await using var noRoom = new SignalingClient(server.WsUrl, Fast());
        signIn = await noRoom.AnonymousSignInAsync();
        refused = await Assert.ThrowsAsync<SignalingException>(() =>
            noRoom.ConnectAsync(new RegistrationRequest(signIn.Username, "deadbeef", room.Token, signIn.IdToken, "client")));
        // Our server answers an unknown room like a wrong token (issue 11): nobody learns which rooms exist.
        Assert.Equal("Invalid token", refused.Reason);
        await Assert.ThrowsAsync<InvalidOperationException>(() => noRoom.DiscoverAsync());

        await using var nobody = new SignalingClient("127.0.0.1:1", Fast());
        await Assert.ThrowsAsync<SignalingException>(() => nobody.ConnectAsync(new RegistrationRequest("p", "r", "t", "i")));
    }

    [Fact]
    public async Task PushedMessagesRaiseTypedEvents()
    {
        await using var server = await TestServer.StartAsync(o => o.PingInterval = TimeSpan.FromMilliseconds(200));
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        await using var client = await JoinAsync(server.WsUrl, room, "client");

        var ping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.PingReceived += () => ping.TrySetResult();
        var message = new TaskCompletionSource<PeerMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.PeerMessageReceived += m => message.TrySetResult(m);
        var candidate = new TaskCompletionSource<CandidateMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.CandidateReceived += c => candidate.TrySetResult(c);
        var refusal = new TaskCompletionSource<SignalingError>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ErrorReceived += e => refusal.TrySetResult(e);
        // A handler that throws must not break the reader loop.
        worker.PeerMessageReceived += _ => throw new InvalidOperationException("handler bug");

        await client.SendPeerMessageAsync(worker.PeerId!, new JsonObject { ["app_message_type"] = "hello" });
        var received = await message.Task.WaitAsync(TestServer.Wait);
        Assert.Equal(client.PeerId, received.FromPeerId);
        Assert.Equal("hello", (string?)received.Payload!["app_message_type"]);

        await client.SendCandidateAsync(worker.PeerId!, new JsonObject { ["candidate"] = "candidate:1", ["sdpMid"] = "0" });
        Assert.Equal("candidate:1", (string?)(await candidate.Task.WaitAsync(TestServer.Wait)).Candidate!["candidate"]);

        await worker.SendBusyRejectionAsync(client.PeerId!, "busy");
        var error = await refusal.Task.WaitAsync(TestServer.Wait);
        Assert.True(error.IsWorkerBusy);
        Assert.Equal(worker.PeerId, error.Sender);
        Assert.Equal("busy", error.CurrentStatus);

        await ping.Task.WaitAsync(TestServer.Wait);
        Assert.Single(await client.DiscoverAsync(PeerFilters.Workers()));
    }

    [Fact]
    public async Task ConcurrentRequestsGetTheirOwnAnswers()
    {
        await using var server = await TestServer.StartAsync();
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync();
        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        await using var client = await JoinAsync(server.WsUrl, room, "client");

        var discoveries = Enumerable.Range(0, 20).Select(i => client.DiscoverAsync(PeerFilters.Workers(null, i % 2 == 0 ? 1 : 999_999))).ToList();
        var update = client.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["n"] = 1 } });
        var failing = client.UpdateMetadataAsync(new JsonObject { ["properties"] = new JsonObject { ["n"] = 2 } });
        var results = await Task.WhenAll(discoveries);
        for (var i = 0; i < results.Length; i++) Assert.Equal(i % 2 == 0 ? 1 : 0, results[i].Count);
        Assert.Equal(1, (int)(await update)["properties"]!["n"]!);
        Assert.Equal(2, (int)(await failing)["properties"]!["n"]!);
    }

    [Fact]
    public async Task DeletingTheRoomDisconnectsItsPeers()
    {
        await using var server = await TestServer.StartAsync();
        await using var admin = new SignalingClient(server.WsUrl, Fast());
        var room = await admin.CreateRoomAsync("temp");
        await using var worker = await JoinAsync(server.WsUrl, room, "worker", WorkerMetadata());
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Disconnected += _ => disconnected.TrySetResult();

        var refused = await Assert.ThrowsAsync<SignalingException>(() => admin.DeleteRoomAsync(room.RoomId, "guess"));
        Assert.Contains("403", refused.Message);
        await admin.DeleteRoomAsync(room.RoomId, room.Token);
        await disconnected.Task.WaitAsync(TestServer.Wait);
        Assert.False(worker.IsConnected);
        Assert.Null(await server.Host.GetRoomAsync(room.RoomId));
        var health = await admin.GetHealthAsync();
        Assert.Equal("healthy", (string?)health["status"]);
    }
}
