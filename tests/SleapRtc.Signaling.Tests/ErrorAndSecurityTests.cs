using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class ErrorAndSecurityTests
{
    /// <summary>The server under test: one server here; an instance of a cluster sharing Redis in the derived
    /// Cluster* classes (ClusterConformanceTests.cs), whose peers join through every instance in turn.</summary>
    protected virtual Task<TestServer> StartServerAsync(Action<SleapRtc.Signaling.Server.SignalingServerOptions>? configure = null) => TestServer.StartAsync(configure);

    private static string Register(string peerId, string roomId, string token, string idToken) => Wire.Register(peerId, roomId, token, idToken);

    [Fact]
    public async Task InvalidJsonIsReportedAndTheConnectionStaysUsable()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        await peer.SendAsync("{not json");
        var error = await peer.ReceiveAsync("error");
        Assert.Equal("INVALID_JSON", (string?)error["code"]);
        Assert.NotNull((string?)error["message"]);
        await peer.SendAsync("[1, 2]");
        Assert.Equal("INVALID_MESSAGE", (string?)(await peer.ReceiveAsync("error"))["code"]);
        await peer.SendAsync(Register(peerId, roomId, token, idToken));
        await peer.ReceiveAsync("registered_auth");
    }

    [Fact]
    public async Task EveryHandlerErrorCodeHasTheClassicShape()
    {
        await using var server = await StartServerAsync(o => o.MaxQueuedMessagesPerConnection = 4);
        var (roomA, tokenA) = await server.NewRoomAsync();
        var (roomB, tokenB) = await server.NewRoomAsync();
        await using var a = await server.JoinAsync(roomA, tokenA, "client");
        await using var otherRoom = await server.JoinAsync(roomB, tokenB, "worker");
        await using var stranger = await RawPeer.ConnectAsync(server.WsUrl);

        async Task ExpectCode(RawPeer peer, string message, string code, string inReplyTo)
        {
            await peer.SendAsync(message);
            var error = await peer.ReceiveAsync("error");
            Assert.Equal(code, (string?)error["code"]);
            Assert.False(string.IsNullOrEmpty((string?)error["message"]));
            Assert.Equal(inReplyTo, (string?)error["in_reply_to"]);
        }

        await ExpectCode(stranger, """{"type": "discover_peers", "from_peer_id": "x"}""", "NOT_IN_ROOM", "discover_peers");
        await ExpectCode(stranger, """{"type": "offer", "target": "x", "sdp": ""}""", "NOT_IN_ROOM", "offer");
        await ExpectCode(a, """{"type": "shout"}""", "UNKNOWN_MESSAGE_TYPE", "shout");
        await ExpectCode(a, """{"type": "quit"}""", "UNKNOWN_MESSAGE_TYPE", "quit");
        await ExpectCode(a, $$"""{"type": "peer_message", "from_peer_id": "{{a.PeerId}}", "to_peer_id": "x"}""", "INVALID_MESSAGE", "peer_message");
        await ExpectCode(a, $$"""{"type": "update_metadata", "peer_id": "{{a.PeerId}}"}""", "INVALID_MESSAGE", "update_metadata");
        await ExpectCode(a, """{"type": "offer", "sdp": "v=0"}""", "INVALID_MESSAGE", "offer");
        await ExpectCode(a, $$"""{"type": "peer_message", "from_peer_id": "{{a.PeerId}}", "to_peer_id": "ghost", "payload": {} }""", "PEER_NOT_FOUND", "peer_message");
        await ExpectCode(a, $$"""{"type": "peer_message", "from_peer_id": "{{a.PeerId}}", "to_peer_id": "{{otherRoom.PeerId}}", "payload": {} }""", "PEER_NOT_IN_ROOM", "peer_message");
        await ExpectCode(a, $$"""{"type": "answer", "target": "ghost", "sdp": "v=0"}""", "PEER_NOT_FOUND", "answer");

        // DELIVERY_FAILED: a target that stops reading fills its queue and is dropped; the sender learns it.
        await using var deaf = await server.JoinAsync(roomA, tokenA, "worker");
        var payload = new string('x', 200_000);
        var failed = false;
        for (var i = 0; i < 400 && !failed; i++)
        {
            await a.SendAsync($$"""{"type": "peer_message", "to_peer_id": "{{deaf.PeerId}}", "payload": {"blob": "{{payload}}"} }""");
            {
                await a.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{a.PeerId}}"}""");
                while (true)
                {
                    var reply = await a.ReceiveAsync();
                    if ((string?)reply["type"] == "peer_list") break;
                    Assert.True((string?)reply["code"] is "DELIVERY_FAILED" or "PEER_NOT_FOUND", reply.ToJsonString());
                    failed = true;
                }
            }
        }
        Assert.True(failed, "a peer that never reads must eventually be dropped with DELIVERY_FAILED");
    }

    [Fact]
    public async Task RegistrationFailuresUseTheClassicReasons()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        var (otherIdToken, _) = await server.SignInAsync();
        var expired = await server.Host.CreateRoomAsync("short", TimeSpan.FromMilliseconds(1));
        await Task.Delay(20);
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);

        async Task<JsonObject> Try(string message)
        {
            await peer.SendAsync(message);
            return await peer.ReceiveAsync("error");
        }

        Assert.Equal("Missing required fields during registration.", (string?)(await Try($$"""{"type": "register", "peer_id": "{{peerId}}", "room_id": "{{roomId}}"}"""))["reason"]);
        // Classic said "Room not found"; ours answers an unknown room like a wrong token (issue 11: no room enumeration).
        Assert.Equal("Invalid token", (string?)(await Try(Register(peerId, "nosuchroom", token, idToken)))["reason"]);
        Assert.Equal("Invalid token", (string?)(await Try(Register(peerId, roomId, "abc123", idToken)))["reason"]);
        Assert.Equal("Room expired", (string?)(await Try(Register(peerId, expired.RoomId, expired.Token, idToken)))["reason"]);

        var forged = await Try(Register(peerId, roomId, token, idToken[..^4] + "AAAA"));
        Assert.Equal("Invalid token", (string?)forged["error"]);
        Assert.Equal("INVALID_ID_TOKEN", (string?)forged["code"]);
        // Someone else's id_token cannot claim this peer_id (no identity hijack by re-registration).
        Assert.Equal("INVALID_ID_TOKEN", (string?)(await Try(Register(peerId, roomId, token, otherIdToken)))["code"]);

        await peer.SendAsync(Register(peerId, roomId, token, idToken));
        await peer.ReceiveAsync("registered_auth");
    }

    [Fact]
    public async Task ExpiredIdTokensAreRefused()
    {
        await using var server = await StartServerAsync(o => o.IdTokenLifetime = TimeSpan.FromSeconds(1));
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        await Task.Delay(2100);
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        await peer.SendAsync(Register(peerId, roomId, token, idToken));
        Assert.Equal("INVALID_ID_TOKEN", (string?)(await peer.ReceiveAsync("error"))["code"]);
        var (status, _) = await server.PostAsync("create-room", "", idToken);
        Assert.Equal(401, status);
    }

    [Fact]
    public async Task ShortClassicRoomTokensAreAcceptedOnRegister()
    {
        await using var server = await StartServerAsync();
        var classic = await server.Host.CreateRoomAsync(null, null, default, "ab12cd34", "a1b2c3");
        await using var peer = await server.JoinAsync(classic.RoomId, "a1b2c3", "worker");
        Assert.Equal("ab12cd34", peer.Socket.State == WebSocketState.Open ? classic.RoomId : null);
    }

    [Fact]
    public async Task OversizedMessagesCloseTheSocketWith1009()
    {
        await using var server = await StartServerAsync();
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        // Just under the limit is fine (answered as an unknown type)...
        var padding = new string('x', 1024 * 1024 - 64);
        await peer.SendAsync($$"""{"type": "big", "p": "{{padding}}"}""");
        Assert.Equal("UNKNOWN_MESSAGE_TYPE", (string?)(await peer.ReceiveAsync("error"))["code"]);
        // ...one byte over 1 MiB is not.
        await peer.SendAsync($$"""{"type": "big", "p": "{{new string('x', 1024 * 1024)}}"}""");
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await peer.ReceiveCloseAsync());
    }

    [Fact]
    public async Task SenderFieldsCannotBeSpoofed()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var victim = await server.JoinAsync(roomId, token, "worker", """{"properties": {"status": "available"}}""");
        await using var target = await server.JoinAsync(roomId, token, "client");
        await using var attacker = await server.JoinAsync(roomId, token, "client");

        await attacker.SendAsync($$"""{"type": "answer", "sender": "{{victim.PeerId}}", "target": "{{target.PeerId}}", "sdp": "evil"}""");
        Assert.Equal(attacker.PeerId, (string?)(await target.ReceiveAsync("answer"))["sender"]);
        await attacker.SendAsync($$"""{"type": "error", "sender": "{{victim.PeerId}}", "target": "{{target.PeerId}}", "reason": "worker_busy"}""");
        Assert.Equal(attacker.PeerId, (string?)(await target.ReceiveAsync("error"))["sender"]);

        await attacker.SendAsync($$"""{"type": "update_metadata", "peer_id": "{{victim.PeerId}}", "metadata": {"properties": {"status": "busy"} } }""");
        Assert.Equal("INVALID_MESSAGE", (string?)(await attacker.ReceiveAsync("error"))["code"]);
        await target.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{attacker.PeerId}}", "filters": {"properties": {"status": "available"} } }""");
        var list = await target.ReceiveAsync("peer_list");
        Assert.Equal(target.PeerId, (string?)list["to_peer_id"]);
        Assert.Equal(victim.PeerId, (string?)list["peers"]![0]!["peer_id"]);
    }

    [Fact]
    public async Task PeersOfOneRoomCannotSeeOrReachAnotherRoom()
    {
        await using var server = await StartServerAsync();
        var (roomA, tokenA) = await server.NewRoomAsync();
        var (roomB, tokenB) = await server.NewRoomAsync();
        await using var workerA = await server.JoinAsync(roomA, tokenA, "worker", """{"properties": {"status": "available"}}""");
        await using var clientB = await server.JoinAsync(roomB, tokenB, "client");

        await clientB.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{clientB.PeerId}}", "filters": {"room_id": "{{roomA}}"} }""");
        Assert.Equal(0, (int)(await clientB.ReceiveAsync("peer_list"))["count"]!);
        await clientB.SendAsync($$"""{"type": "offer", "sender": "{{clientB.PeerId}}", "target": "{{workerA.PeerId}}", "sdp": "x"}""");
        Assert.Equal("PEER_NOT_FOUND", (string?)(await clientB.ReceiveAsync("error"))["code"]);
        await clientB.SendAsync($$"""{"type": "candidate", "target": "{{workerA.PeerId}}", "candidate": "c"}""");
        Assert.Equal("PEER_NOT_FOUND", (string?)(await clientB.ReceiveAsync("error"))["code"]);
        await clientB.SendAsync($$"""{"type": "error", "target": "{{workerA.PeerId}}", "reason": "x"}""");
        await clientB.SendAsync($$"""{"type": "mesh_connect", "target_peer_id": "{{workerA.PeerId}}", "offer": {} }""");
        Assert.Equal("PEER_NOT_FOUND", (string?)(await clientB.ReceiveAsync("error"))["code"]);
        await workerA.ExpectSilenceAsync(300);
        // The room token of B does not open room A.
        var (idToken, peerId) = await server.SignInAsync();
        await using var intruder = await RawPeer.ConnectAsync(server.WsUrl);
        await intruder.SendAsync(Register(peerId, roomA, tokenB, idToken));
        Assert.Equal("Invalid token", (string?)(await intruder.ReceiveAsync("error"))["reason"]);
    }

    [Fact]
    public async Task TokensNeverAppearInLogs()
    {
        await using var server = await StartServerAsync();
        var (idToken, _) = await server.SignInAsync();
        var (roomId, token) = await server.CreateRoomAsync(idToken);
        await using var worker = await server.JoinAsync(roomId, token, "worker", """{"properties": {"status": "available"}}""");
        await using var client = await server.JoinAsync(roomId, token, "client");
        await client.SendAsync($$"""{"type": "offer", "target": "{{worker.PeerId}}", "sdp": "x"}""");
        await worker.ReceiveAsync("offer");
        await using var bad = await RawPeer.ConnectAsync(server.WsUrl);
        await bad.SendAsync(Register(client.PeerId, roomId, "wrong-secret-token", client.IdToken));
        await bad.ReceiveAsync("error");
        await bad.SendAsync(Register(client.PeerId, roomId, token, "forged.id.token"));
        await bad.ReceiveAsync("error");
        var (status, _) = await server.PostAsync("delete-peer", $$"""{"peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}"}""");
        Assert.Equal(200, status);

        var lines = server.Log.Lines;
        Assert.NotEmpty(lines);
        foreach (var secret in new[] { token, idToken, worker.IdToken, client.IdToken, "wrong-secret-token", "forged.id.token" })
            Assert.DoesNotContain(lines, line => line.Contains(secret, StringComparison.Ordinal));
    }
}
