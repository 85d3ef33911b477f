using System.Text.Json.Nodes;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// Issue 11, item 1: /anonymous-signin hands out an id_token for any user name, so without a binding anyone could
/// register a worker's peer id (from any room) and take its connection and its offers. A peer id belongs to the
/// id_token that registered it first until that registration ends (plus a resume grace after a lost connection).
/// </summary>
public class PeerIdBindingTests
{
    /// <summary>The server under test: one server here; an instance of a cluster sharing Redis in the derived
    /// Cluster* classes (ClusterConformanceTests.cs), whose peers join through every instance in turn.</summary>
    protected virtual Task<TestServer> StartServerAsync(Action<SleapRtc.Signaling.Server.SignalingServerOptions>? configure = null) => TestServer.StartAsync(configure);

    private static string Register(string peerId, string roomId, string token, string idToken)
        => Wire.Register(peerId, roomId, token, idToken, metadataJson: """{"properties": {"status": "available"}}""");

    private static Task WaitUntilAsync(Func<bool> condition) => Wire.WaitUntilAsync(condition);

    [Fact]
    public async Task A_peer_id_cannot_be_taken_over_from_another_room()
    {
        // The attack of the issue: sign in under the victim's name, register it in a room of one's own, repeat.
        await using var server = await StartServerAsync(o => o.FreeFailedAuthAttempts = 1000);
        var (victimRoom, victimToken) = await server.NewRoomAsync();
        await using var victim = await server.JoinAsync(victimRoom, victimToken, "worker", """{"properties": {"status": "available"}}""");
        await using var client = await server.JoinAsync(victimRoom, victimToken, "client");
        var (attackerRoom, attackerToken) = await server.NewRoomAsync();
        var (stolenName, _) = await server.SignInAsync(victim.PeerId);
        var victimLink = server.Host.Peers.Get(victim.PeerId)!.Link;

        var seen = 0;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            await using var attacker = await RawPeer.ConnectAsync(server.WsUrl);
            await attacker.SendAsync(Register(victim.PeerId, attackerRoom, attackerToken, stolenName));
            var refusal = await attacker.ReceiveAsync("error");
            Assert.Equal("PEER_ID_IN_USE", (string?)refusal["code"]);
            Assert.Equal("register", (string?)refusal["in_reply_to"]);

            await client.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{client.PeerId}}", "filters": {"role": "worker"} }""");
            var list = await client.ReceiveAsync("peer_list");
            if (list["peers"]!.AsArray().Any(p => (string?)p!["peer_id"] == victim.PeerId)) seen++;
            await Task.Delay(50);
        }
        Assert.Equal(10, seen);
        // The victim's connection was never touched: the same connection holds the id, in its own room, and heard nothing.
        var holder = server.Host.Peers.Get(victim.PeerId);
        Assert.Equal(victimRoom, holder?.RoomId);
        Assert.Same(victimLink, holder?.Link);
        await victim.ExpectSilenceAsync(200);
    }

    [Fact]
    public async Task An_impostor_in_the_same_room_never_receives_offers_meant_for_the_holder()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker", """{"properties": {"status": "available"}}""");
        await using var client = await server.JoinAsync(roomId, token, "client");
        var (impostorIdToken, _) = await server.SignInAsync(worker.PeerId);
        await using var impostor = await RawPeer.ConnectAsync(server.WsUrl);
        await impostor.SendAsync(Register(worker.PeerId, roomId, token, impostorIdToken));
        Assert.Equal("PEER_ID_IN_USE", (string?)(await impostor.ReceiveAsync("error"))["code"]);

        await client.SendAsync($$"""{"type": "offer", "sender": "{{client.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "v=0 secret-sdp"}""");
        var offer = await worker.ReceiveAsync("offer");
        Assert.Equal("v=0 secret-sdp", (string?)offer["sdp"]);
        await impostor.ExpectSilenceAsync(300);
    }

    [Fact]
    public async Task Only_the_holder_resumes_its_peer_id_after_a_lost_connection_and_a_goodbye_frees_it()
    {
        await using var server = await StartServerAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var (holderIdToken, peerId) = await server.SignInAsync("gpu-box-7");
        var (impostorIdToken, _) = await server.SignInAsync("gpu-box-7");
        Assert.NotEqual(holderIdToken, impostorIdToken);

        var holder = await RawPeer.ConnectAsync(server.WsUrl);
        await holder.SendAsync(Register(peerId, roomId, token, holderIdToken));
        await holder.ReceiveAsync("registered_auth");
        // Lost without a close frame (a network drop, a killed worker): the id waits for its holder.
        holder.Socket.Abort();
        holder.Socket.Dispose();
        await WaitUntilAsync(() => server.Host.Peers.Get(peerId) is null);

        await using (var impostor = await RawPeer.ConnectAsync(server.WsUrl))
        {
            await impostor.SendAsync(Register(peerId, roomId, token, impostorIdToken));
            Assert.Equal("PEER_ID_IN_USE", (string?)(await impostor.ReceiveAsync("error"))["code"]);
        }

        // The holder comes back with the id_token it registered with, as classic workers and SignalingClient do.
        var resumed = await RawPeer.ConnectAsync(server.WsUrl);
        await resumed.SendAsync(Register(peerId, roomId, token, holderIdToken));
        await resumed.ReceiveAsync("registered_auth");

        // A goodbye (close frame) ends the registration: the name is free for whoever signs in with it next.
        await resumed.DisposeAsync();
        await WaitUntilAsync(() => server.Host.Peers.Get(peerId) is null);
        await using var next = await RawPeer.ConnectAsync(server.WsUrl);
        await next.SendAsync(Register(peerId, roomId, token, impostorIdToken));
        await next.ReceiveAsync("registered_auth");
    }

    [Fact]
    public async Task The_id_is_free_again_once_the_resume_grace_has_passed()
    {
        await using var server = await StartServerAsync(o => o.PeerIdResumeGrace = TimeSpan.FromMilliseconds(300));
        var (roomId, token) = await server.NewRoomAsync();
        var (first, peerId) = await server.SignInAsync("named-worker");
        var (second, _) = await server.SignInAsync("named-worker");
        var holder = await RawPeer.ConnectAsync(server.WsUrl);
        await holder.SendAsync(Register(peerId, roomId, token, first));
        await holder.ReceiveAsync("registered_auth");
        holder.Socket.Abort();
        await WaitUntilAsync(() => server.Host.Peers.Get(peerId) is null);
        await Task.Delay(400);
        await using var successor = await RawPeer.ConnectAsync(server.WsUrl);
        await successor.SendAsync(Register(peerId, roomId, token, second));
        await successor.ReceiveAsync("registered_auth");
        Assert.Equal(1, server.Host.PeerIds.Count);
    }

    [Fact]
    public async Task SignalingClient_resumes_its_peer_id_after_the_server_loses_its_connection()
    {
        await using var server = await StartServerAsync();
        var options = new SignalingClientOptions { RequestTimeout = TimeSpan.FromSeconds(5), InitialReconnectDelay = TimeSpan.FromMilliseconds(100), MaxReconnectDelay = TimeSpan.FromMilliseconds(400) };
        await using var admin = new SignalingClient(server.WsUrl, options);
        var room = await admin.CreateRoomAsync();
        await using var worker = new SignalingClient(server.WsUrl, options);
        var signIn = await worker.AnonymousSignInAsync("resuming-worker");
        await worker.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, "worker", new JsonObject()));
        var reconnected = new TaskCompletionSource<RegistrationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Reconnected += r => reconnected.TrySetResult(r);

        ((PeerSocket)server.Host.Peers.Get("resuming-worker")!.Link).Abort();
        var result = await reconnected.Task.WaitAsync(TestServer.Wait);
        Assert.Equal("resuming-worker", result.PeerId);
        Assert.Equal(room.RoomId, server.Host.Peers.Get("resuming-worker")?.RoomId);

        // Still its own: a fresh sign-in under the same name cannot take it.
        var (stolen, _) = await server.SignInAsync("resuming-worker");
        await using var impostor = await RawPeer.ConnectAsync(server.WsUrl);
        await impostor.SendAsync(Register("resuming-worker", room.RoomId, room.Token, stolen));
        Assert.Equal("PEER_ID_IN_USE", (string?)(await impostor.ReceiveAsync("error"))["code"]);
        Assert.True(worker.IsConnected);
    }
}
