using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>-TurnUrl/-TurnSecret: every peer gets coturn shared-secret credentials of its own in registered_auth.</summary>
public sealed class TurnCredentialTests
{
    private const string Secret = "lab-turn-secret-7f3a";

    [Fact]
    public async Task Registered_auth_carries_turn_servers_with_per_peer_time_limited_credentials_and_the_secret_stays_home()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.TurnUrls = new[] { "turn:10.9.0.1:3478", "turns:turn.lab.test:5349" };
            o.TurnSecret = Secret;
        });
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        await peer.SendAsync(Wire.Register(peerId, roomId, token, idToken));
        var answer = await peer.ReceiveAsync("registered_auth");

        var iceServers = answer["ice_servers"]!.AsArray();
        var turn = iceServers.OfType<JsonObject>().Single(s => s["username"] is not null);
        Assert.Equal(new[] { "turn:10.9.0.1:3478", "turns:turn.lab.test:5349" }, turn["urls"]!.AsArray().Select(u => (string?)u));
        var username = (string)turn["username"]!;
        var parts = username.Split(':');
        Assert.Equal(peerId, parts[1]);
        var expiry = DateTimeOffset.FromUnixTimeSeconds(long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(expiry - DateTimeOffset.UtcNow, TimeSpan.FromHours(23.9), TimeSpan.FromHours(24.1));
        // coturn's use-auth-secret check, computed here independently of the server's code.
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(Secret));
        Assert.Equal(Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(username))), (string?)turn["credential"]);

        // The STUN entry is still there; classic mesh connections stay STUN-only.
        Assert.Contains(iceServers.OfType<JsonObject>(), s => s["urls"]!.AsArray().Any(u => ((string?)u)!.StartsWith("stun:", StringComparison.Ordinal)));
        Assert.DoesNotContain("turn", answer["mesh_ice_servers"]!.ToJsonString(), StringComparison.OrdinalIgnoreCase);

        // What workers and clients read: the typed list with the credentials.
        var turnServers = IceServerList.TurnServers(iceServers);
        Assert.Single(turnServers);
        Assert.Equal(username, turnServers[0].Username);
        Assert.Equal((string?)turn["credential"], turnServers[0].Credential);
        Assert.Single(IceServerList.StunUrls(iceServers));

        Assert.Contains(server.Log.Lines, l => l.Contains("TURN turn:10.9.0.1:3478", StringComparison.Ordinal));
        Assert.DoesNotContain(server.Log.Lines, l => l.Contains(Secret, StringComparison.Ordinal));
        Assert.DoesNotContain(Secret, answer.ToJsonString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("turn:10.9.0.1:3478", null, "shared secret")]
    [InlineData(null, Secret, "without any TURN URL")]
    [InlineData("http://10.9.0.1:3478", Secret, "is not a TURN URL")]
    public async Task Incomplete_or_malformed_turn_settings_stop_the_start_with_the_reason(string? url, string? secret, string reason)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => TestServer.StartAsync(o =>
        {
            o.TurnUrls = url is null ? Array.Empty<string>() : new[] { url };
            o.TurnSecret = secret;
        }));
        Assert.Contains(reason, error.Message);
        if (secret is not null) Assert.DoesNotContain(secret, error.Message);
    }
}
