using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Signaling.Server;
using SleapRtc.Signaling.Store;
using SleapRtc.WebRtc.Stun;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class HttpAndStoreTests
{
    [Fact]
    public async Task HealthAndMetricsHaveTheClassicShape()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker");
        await using var client = await server.JoinAsync(roomId, token, "client");

        var health = JsonNode.Parse(await server.Http.GetStringAsync("health"))!;
        Assert.Equal("healthy", (string?)health["status"]);
        Assert.Equal("2.0.0", (string?)health["version"]);
        Assert.True(DateTimeOffset.TryParse((string?)health["timestamp"], out _));

        var metrics = JsonNode.Parse(await server.Http.GetStringAsync("metrics"))!;
        Assert.Equal(1, (int)metrics["active_rooms"]!);
        Assert.Equal(2, (int)metrics["active_connections"]!);
        Assert.Equal(1, (int)metrics["peers_by_role"]!["worker"]!);
        Assert.Equal(1, (int)metrics["peers_by_role"]!["client"]!);
        Assert.Equal(2, (int)metrics["total_connections"]!);
        Assert.Equal(2, (int)metrics["total_messages"]!);
        Assert.Equal(1, (int)metrics["rooms_created"]!);
    }

    [Fact]
    public async Task CreateRoomNeedsAValidBearerAndHonoursExpiry()
    {
        await using var server = await TestServer.StartAsync();
        Assert.Equal(401, (await server.PostAsync("create-room", "")).Status);
        Assert.Equal(401, (await server.PostAsync("create-room", "", "not.a.jwt")).Status);

        var (idToken, username) = await server.SignInAsync();
        Assert.True(Guid.TryParse(username, out _));
        var (status, body) = await server.PostAsync("create-room", """{"name": "lab", "expires_in_days": 3}""", idToken);
        Assert.Equal(200, status);
        var token = (string)body!["token"]!;
        Assert.Matches("^[0-9a-f]{32}$", token);
        Assert.Matches("^[0-9a-f]{8}$", (string)body["room_id"]!);
        Assert.Equal("lab", (string?)body["name"]);
        var expires = DateTimeOffset.FromUnixTimeSeconds((long)body["expires_at"]!);
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromDays(2.99), TimeSpan.FromDays(3.01));

        var (_, never) = await server.PostAsync("create-room", """{"expires_in_days": null}""", idToken);
        Assert.Null(never!["expires_at"]);
        var (_, byDefault) = await server.PostAsync("create-room", "", idToken);
        Assert.InRange(DateTimeOffset.FromUnixTimeSeconds((long)byDefault!["expires_at"]!) - DateTimeOffset.UtcNow, TimeSpan.FromDays(29.99), TimeSpan.FromDays(30.01));
        Assert.Equal(400, (await server.PostAsync("create-room", """{"expires_in_days": 0}""", idToken)).Status);
        Assert.Equal(400, (await server.PostAsync("create-room", "[1]", idToken)).Status);

        var (named, _) = await server.PostAsync("anonymous-signin", """{"username": "gpu-box-1"}""");
        Assert.Equal(200, named);
        Assert.Equal(400, (await server.PostAsync("anonymous-signin", """{"username": "bad name!"}""")).Status);
    }

    [Fact]
    public async Task DeleteEndpointsRequireTheRoomToken()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker");
        await using var client = await server.JoinAsync(roomId, token, "client");

        Assert.Equal(401, (await server.PostAsync("delete-peer", $$"""{"peer_id": "{{worker.PeerId}}"}""")).Status);
        Assert.Equal(403, (await server.PostAsync("delete-peer", $$"""{"peer_id": "{{worker.PeerId}}", "token": "guess"}""")).Status);
        Assert.Equal(401, (await server.PostAsync("delete-peers-and-room", $$"""{"room_id": "{{roomId}}"}""")).Status);
        Assert.Equal(403, (await server.PostAsync("delete-peers-and-room", $$"""{"room_id": "{{roomId}}", "token": "guess"}""")).Status);
        Assert.Equal(400, (await server.PostAsync("delete-peer", "{")).Status);
        Assert.NotNull(server.Host.Peers.Get(worker.PeerId));

        var (status, body) = await server.PostAsync("delete-peer", $$"""{"peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}"}""");
        Assert.Equal(200, status);
        Assert.NotNull((string?)body!["status"]);
        Assert.Null(server.Host.Peers.Get(worker.PeerId));
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, await worker.ReceiveCloseAsync());
        Assert.NotNull(await server.Host.GetRoomAsync(roomId));

        // Classic track clients send only peer_id: the room is found through the peer, the token is still required.
        (status, _) = await server.PostAsync("delete-peers-and-room", $$"""{"peer_id": "{{client.PeerId}}", "token": "{{token}}"}""");
        Assert.Equal(200, status);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, await client.ReceiveCloseAsync());
        Assert.Null(await server.Host.GetRoomAsync(roomId));
        Assert.Equal(0, server.Host.Peers.Count);
        Assert.Equal(404, (await server.PostAsync("delete-peers-and-room", $$"""{"room_id": "{{roomId}}", "token": "{{token}}"}""")).Status);
    }

    [Fact]
    public async Task RoomsTokensAndIdTokensSurviveARestartWithAFileDatabase()
    {
        var database = Path.Combine(Path.GetTempPath(), "sleaprtc-restart-" + Guid.NewGuid().ToString("N") + ".db");
        try
        {
            string roomId, token, idToken, peerId;
            await using (var first = await TestServer.StartAsync(o => o.DatabasePath = database))
            {
                (idToken, peerId) = await first.SignInAsync();
                (roomId, token) = await first.CreateRoomAsync(idToken);
                await using var worker = await first.JoinAsync(roomId, token, "worker");
            }
            Assert.True(File.Exists(database));

            await using var second = await TestServer.StartAsync(o => o.DatabasePath = database);
            Assert.Equal(database, second.Host.DatabasePath);
            await using var again = await RawPeer.ConnectAsync(second.WsUrl);
            await again.SendAsync($$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}", "token": "{{token}}", "id_token": "{{idToken}}", "role": "worker"}""");
            await again.ReceiveAsync("registered_auth");
        }
        finally
        {
            foreach (var file in new[] { database, database + "-wal", database + "-shm" }) File.Delete(file);
        }
    }

    [Fact]
    public async Task ExpiredRoomsArePurgedFromTheStore()
    {
        await using var store = SqliteRoomStore.Open(":memory:");
        var now = DateTimeOffset.UtcNow;
        Assert.True(await store.TryCreateRoomAsync(new RoomRecord("old", "t1", null, null, now.AddDays(-2), now.AddSeconds(-1)), default));
        Assert.True(await store.TryCreateRoomAsync(new RoomRecord("new", "t2", "n", "me", now, now.AddDays(1)), default));
        Assert.True(await store.TryCreateRoomAsync(new RoomRecord("forever", "t3", null, null, now, null), default));
        Assert.False(await store.TryCreateRoomAsync(new RoomRecord("new", "other", null, null, now, null), default));

        Assert.Equal(["old"], await store.PurgeExpiredAsync(now, default));
        Assert.Null(await store.GetRoomAsync("old", default));
        var kept = await store.GetRoomAsync("new", default);
        Assert.Equal("t2", kept!.Token);
        Assert.Equal("n", kept.Name);
        Assert.Equal(now.AddDays(1).ToUnixTimeMilliseconds(), kept.ExpiresAt!.Value.ToUnixTimeMilliseconds());
        Assert.Null((await store.GetRoomAsync("forever", default))!.ExpiresAt);
        Assert.DoesNotContain("t2", kept.ToString());
        Assert.Equal(2, await store.CountRoomsAsync(default));

        var key = await store.GetOrCreateKeyAsync("k", () => [1, 2, 3], default);
        Assert.Equal([1, 2, 3], await store.GetOrCreateKeyAsync("k", () => [9], default));
        Assert.Equal([1, 2, 3], key);
    }

    [Fact]
    public async Task ServerPurgesExpiredRoomsPeriodically()
    {
        await using var server = await TestServer.StartAsync(o => o.PurgeInterval = TimeSpan.FromMilliseconds(100));
        var room = await server.Host.CreateRoomAsync("brief", TimeSpan.FromMilliseconds(50));
        var deadline = DateTime.UtcNow + TestServer.Wait;
        while (await server.Host.GetRoomAsync(room.RoomId) is not null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Null(await server.Host.GetRoomAsync(room.RoomId));
    }

    [Fact]
    public async Task StopFreesThePortAndClosesPeers()
    {
        var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var peer = await server.JoinAsync(roomId, token, "worker");
        var port = server.Host.Port;
        Assert.True(server.Host.IsRunning);
        await server.DisposeAsync();
        Assert.False(server.Host.IsRunning);
        Assert.True(server.Host.Completion.IsCompleted);
        Assert.Equal("Stopped", server.Host.ToModel().State);
        await peer.ReceiveCloseAsync();

        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        listener.Stop();
    }

    [Fact]
    public async Task HttpParserHandlesKeepAliveErrorsAndUnknownPaths()
    {
        await using var server = await TestServer.StartAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.Host.Port);
        var stream = tcp.GetStream();
        var request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var all = await reader.ReadToEndAsync().WaitAsync(TestServer.Wait);
        Assert.Equal(2, all.Split("HTTP/1.1 200 OK").Length - 1);
        Assert.Contains("HTTP/1.1 404 Not Found", all);
        Assert.Contains("Access-Control-Allow-Origin: *", all);

        using var bad = new TcpClient();
        await bad.ConnectAsync(IPAddress.Loopback, server.Host.Port);
        await bad.GetStream().WriteAsync("NONSENSE\r\n\r\n"u8.ToArray());
        using var badReader = new StreamReader(bad.GetStream(), Encoding.ASCII);
        Assert.StartsWith("HTTP/1.1 400", await badReader.ReadLineAsync().WaitAsync(TestServer.Wait));

        Assert.Equal(405, (int)(await server.Http.GetAsync("create-room")).StatusCode);
        var (tooBig, _) = await server.PostAsync("delete-peer", new string(' ', 1024 * 1024 + 1));
        Assert.Equal(413, tooBig);
    }

    [Fact]
    public async Task StunResponderAnswersABindingRequestWithTheMappedAddress()
    {
        await using var server = await TestServer.StartAsync();
        Assert.Equal(server.Host.Port, server.Host.StunPort);
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var stun = new IPEndPoint(IPAddress.Loopback, server.Host.StunPort);

        // Ignored, so the only answer that comes is the valid request's: not STUN, a Binding response,
        // and a Binding request whose FINGERPRINT is wrong.
        await udp.SendAsync(new byte[20], stun);
        var response = new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, StunMessageBuilder.NewTransactionId()).ToArray();
        await udp.SendAsync(response, stun);
        var badFingerprint = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId()).AddFingerprint().ToArray();
        badFingerprint[^1] ^= 1;
        await udp.SendAsync(badFingerprint, stun);

        var request = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(request, 0x0001);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(2), 8);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(4), 0x2112A442);
        var transaction = Enumerable.Range(1, 12).Select(i => (byte)i).ToArray();
        transaction.CopyTo(request, 8);
        // An unknown comprehension-optional attribute must not stop the answer.
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(20), 0x8055);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(22), 4);
        await udp.SendAsync(request, stun);

        var answer = (await udp.ReceiveAsync().WaitAsync(TestServer.Wait)).Buffer;
        Assert.Equal(0x0101, BinaryPrimitives.ReadUInt16BigEndian(answer));
        Assert.Equal(answer.Length - 20, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2)));
        Assert.Equal(0x2112A442u, BinaryPrimitives.ReadUInt32BigEndian(answer.AsSpan(4)));
        Assert.Equal(transaction, answer[8..20]);

        // XOR-MAPPED-ADDRESS decoded by hand (RFC 8489 §14.2): the address this socket sent from.
        IPEndPoint? mapped = null;
        for (var offset = 20; offset + 4 <= answer.Length;)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(offset));
            var length = BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(offset + 2));
            var value = answer.AsSpan(offset + 4, length);
            if (type == 0x0020)
            {
                Assert.Equal(0x01, value[1]);
                var port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]) ^ 0x2112;
                var address = BinaryPrimitives.ReadUInt32BigEndian(value[4..]) ^ 0x2112A442u;
                var bytes = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
                mapped = new IPEndPoint(new IPAddress(bytes), (int)port);
            }
            offset += 4 + (length + 3) / 4 * 4;
        }
        Assert.Equal(udp.Client.LocalEndPoint, mapped);
        // The codec the ICE agent uses accepts it, FINGERPRINT (checked against RFC 5769's vectors there) included.
        Assert.True(StunMessage.TryParse(answer, out var parsed));
        Assert.True(parsed!.HasFingerprint);
        Assert.Equal("SleapRtc", parsed.Software);
        Assert.Equal(udp.Client.LocalEndPoint, parsed.XorMappedAddress);
        Assert.Equal(0, udp.Available);
    }
}
