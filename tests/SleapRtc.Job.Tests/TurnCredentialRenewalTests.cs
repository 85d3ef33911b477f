using System.Net;
using System.Text.RegularExpressions;
using SleapRtc.Client.Diagnostics;
using SleapRtc.Interop;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Turn;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// A worker stays registered far longer than its TURN credentials live (weeks against 24 h). Here with a lifetime of
/// seconds and a real coturn: the worker's first credentials expire while it stays connected, and a relay-only
/// connection made afterwards still works, because the server renewed them and the worker took the newest.
/// </summary>
public sealed class TurnCredentialRenewalTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_worker_connected_past_its_first_turn_credentials_expiry_relays_with_renewed_ones()
    {
        await using var coturn = await CoturnServer.StartAsync(new[] { IPAddress.Loopback }, IPAddress.Loopback, null, TimeSpan.FromSeconds(15));
        await using var room = await RoomFixture.StartAsync(configure: o =>
        {
            o.TurnUrls = new[] { $"turn:127.0.0.1:{coturn.Port}" };
            o.TurnSecret = coturn.Secret;
            o.TurnCredentialLifetime = Lifetime;
        });
        // Relay only, both ends: the worker's own allocation is the one path, so its credentials decide.
        var relayOnly = new PeerConnectionOptions { RelayOnly = true };
        var worker = await room.StartWorkerAsync(configure: o => o with { PeerConnection = relayOnly });
        var first = worker.TurnServers.Single();
        var firstExpiry = TurnSharedSecret.ExpiryOf(first.Username!)!.Value;

        // Past the first credentials' expiry (whole seconds on the wire; coturn refuses once the second has passed).
        var pastExpiry = firstExpiry + TimeSpan.FromSeconds(1.1) - DateTimeOffset.UtcNow;
        if (pastExpiry > TimeSpan.Zero) await Task.Delay(pastExpiry);
        var stale = (await TurnProbe.ProbeAsync(new[] { first }, null, CancellationToken.None).WaitAsync(RoomFixture.Wait)).Single();
        Assert.False(stale.Succeeded, "coturn still takes the first credentials");
        Assert.Contains("expired", stale.Error);

        var renewed = worker.TurnServers.Single();
        Assert.True(TurnSharedSecret.ExpiryOf(renewed.Username!) > DateTimeOffset.UtcNow, $"{renewed.Username} is not a renewal of {first.Username}");

        var result = await ConnectionTest.RunAsync(room.Room(worker), worker.Session.PeerId, new ConnectionTestOptions
        {
            PeerConnectionFactory = room.Transport, PeerConnection = relayOnly, ConnectTimeout = TimeSpan.FromSeconds(10),
        }, CancellationToken.None).WaitAsync(RoomFixture.Wait);
        var detail = string.Join("\n", result.Steps.Select(s => $"{s.Name} {s.Status}: {s.Detail}"));
        Assert.True(result.Succeeded, detail);
        Assert.Equal("relay", result.Path);

        // coturn allocated for the worker only with the renewed credentials: every username it granted expires later.
        var workerAllocations = Regex.Matches(coturn.Log, $@"user <(\d+):{Regex.Escape(worker.Session.PeerId)}>: incoming packet ALLOCATE processed, success")
            .Select(m => DateTimeOffset.FromUnixTimeSeconds(long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.True(workerAllocations.Count > 0, coturn.Log);
        Assert.All(workerAllocations, expiry => Assert.True(expiry > firstExpiry, $"allocated with credentials expiring {expiry:O}, first expired {firstExpiry:O}"));
    }
}
