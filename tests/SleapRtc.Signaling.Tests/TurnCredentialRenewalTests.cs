using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// TURN credentials expire; a peer that stays connected (a worker for weeks) is sent fresh ones before that
/// (ice_servers_renewed), only when it asked for them in register; classic peers never see the message.
/// </summary>
public class TurnCredentialRenewalTests
{
    private const string Secret = "lab-turn-secret-9c1e";
    // Whole seconds on the wire (the username's expiry): renewals 1.2-1.5 s apart always move it on.
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(3);

    protected virtual Task<TestServer> StartServerAsync(Action<SignalingServerOptions>? configure = null) => TestServer.StartAsync(configure);

    [Fact]
    public async Task Peers_that_ask_get_fresh_turn_credentials_before_theirs_expire_and_classic_peers_never_see_the_message()
    {
        await using var server = await StartServerAsync(o =>
        {
            o.TurnUrls = new[] { "turn:10.9.0.1:3478" };
            o.TurnSecret = Secret;
            o.TurnCredentialLifetime = Lifetime;
        });
        // In a cluster the peers sit on two instances: each instance renews the peers connected to it.
        var other = server.Companions.FirstOrDefault() ?? server;
        var (roomId, token) = await server.NewRoomAsync();

        var (classicIdToken, classicId) = await server.SignInAsync();
        await using var classic = await RawPeer.ConnectAsync(server.WsUrl);
        await classic.SendAsync(Wire.Register(classicId, roomId, token, classicIdToken));
        await classic.ReceiveAsync("registered_auth");
        var classicHearsNothing = classic.ExpectSilenceAsync(2000);

        // The wire: a raw peer that lists the extension.
        var (rawIdToken, rawId) = await other.SignInAsync();
        await using var raw = await RawPeer.ConnectAsync(other.WsUrl);
        var register = JsonNode.Parse(Wire.Register(rawId, roomId, token, rawIdToken))!.AsObject();
        register["client_extensions"] = new JsonArray("server_draining", "ice_servers_renewal");
        await raw.SendAsync(register);
        var registered = TurnEntry((await raw.ReceiveAsync("registered_auth"))["ice_servers"]!.AsArray());

        // Our client, registered at the same time: what new connections read (IceServers) must move on.
        await using var ours = new SignalingClient(server.WsUrl, new SignalingClientOptions { RequestTimeout = TimeSpan.FromSeconds(5) });
        var signIn = await ours.AnonymousSignInAsync();
        await ours.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "worker"));
        var first = IceServerList.TurnServers(ours.IceServers).Single();
        AssertValid(first, ours.PeerId!);

        // Renewed at 40-50 % of the lifetime, and again while the peer stays, each time valid for longer.
        var previous = registered;
        JsonObject renewedMessage = null!;
        for (var renewal = 0; renewal < 2; renewal++)
        {
            renewedMessage = await raw.ReceiveAsync("ice_servers_renewed", within: Lifetime);
            var renewed = TurnEntry(renewedMessage["ice_servers"]!.AsArray());
            Assert.Equal(new[] { "turn:10.9.0.1:3478" }, renewed["urls"]!.AsArray().Select(u => (string?)u));
            AssertValid(renewed, rawId);
            Assert.True(Expiry(renewed) > Expiry(previous), $"{renewed["username"]} should outlive {previous["username"]}");
            previous = renewed;
        }
        // The STUN entry comes along, so the list replaces registered_auth's as a whole.
        Assert.Contains(renewedMessage["ice_servers"]!.AsArray().OfType<JsonObject>(), s => s["username"] is null);

        await Wire.WaitUntilAsync(() => IceServerList.TurnServers(ours.IceServers).Single().Username != first.Username);
        var current = IceServerList.TurnServers(ours.IceServers).Single();
        AssertValid(current, ours.PeerId!);
        Assert.True(ExpiryOf(current.Username!) > ExpiryOf(first.Username!));
        // The registration keeps what it was given.
        Assert.Equal(first.Username, IceServerList.TurnServers(ours.Registration!.IceServers).Single().Username);

        await classicHearsNothing;
        var everyLine = string.Join("\n", new[] { server }.Concat(server.Companions).SelectMany(s => s.Log.Lines));
        Assert.DoesNotContain(Secret, everyLine, StringComparison.Ordinal);
        Assert.DoesNotContain((string)previous["credential"]!, everyLine, StringComparison.Ordinal);
        Assert.DoesNotContain(current.Credential!, everyLine, StringComparison.Ordinal);
    }

    private static JsonObject TurnEntry(JsonArray iceServers) => iceServers.OfType<JsonObject>().Single(s => s["username"] is not null);

    private static DateTimeOffset Expiry(JsonObject turn) => ExpiryOf((string)turn["username"]!);

    private static DateTimeOffset ExpiryOf(string username) => WebRtc.Turn.TurnSharedSecret.ExpiryOf(username)!.Value;

    /// <summary>coturn's use-auth-secret check, computed here independently of the server's code.</summary>
    private static void AssertValid(JsonObject turn, string peerId) => AssertValid((string?)turn["username"], (string?)turn["credential"], peerId);

    private static void AssertValid(IceServerEntry turn, string peerId) => AssertValid(turn.Username, turn.Credential, peerId);

    private static void AssertValid(string? username, string? credential, string peerId)
    {
        Assert.Equal(peerId, username!.Split(':')[1]);
        Assert.InRange(ExpiryOf(username) - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(-1), Lifetime + TimeSpan.FromSeconds(1));
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(Secret));
        Assert.Equal(Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(username))), credential);
    }
}
