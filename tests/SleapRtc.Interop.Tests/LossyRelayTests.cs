using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>
/// 20 MB through a relay that loses 5 %, duplicates 2 % and delays 0–20 ms (reordering) every packet, on
/// 127.0.0.1 of the host (peers bound to loopback only). The libdatachannel pair proves relay and harness;
/// the managed pair is the requirement.
/// </summary>
public sealed class LossyRelayTests(ITestOutputHelper log)
{
    internal static async Task RunThroughRelayAsync(FixtureCommand offerer, FixtureCommand answerer, long bytes, ITestOutputHelper log)
    {
        using var relay = new LossyUdpRelay(Impairment.Acceptance, seed: 20261123);
        await using var pair = await PeerPair.StartAsync(offerer, answerer, isolated: false);
        // The answerer (B) reaches the offerer through EndpointForB, and the offerer (A) the answerer through EndpointForA.
        await pair.ConnectAsync(
            rewriteOffer: sdp => LossyUdpRelay.RouteThrough(sdp, relay.EndpointForB),
            rewriteAnswer: sdp => LossyUdpRelay.RouteThrough(sdp, relay.EndpointForA));
        var outcome = await PeerPair.TransferAsync(pair.Offerer, pair.Answerer, bytes,
            TimeSpan.FromSeconds(240));
        log.WriteLine($"{offerer.Name} -> {answerer.Name} through the lossy relay: {outcome.MBps:0.00} MB/s; relay forwarded " +
            $"{relay.Forwarded}, dropped {relay.Dropped}, duplicated {relay.Duplicated}, reordered {relay.Reordered}");
        Assert.Equal(bytes, outcome.ReceivedBytes);
        Assert.Equal(outcome.SentSha256, outcome.ReceivedSha256);
        // The impairment really happened (otherwise this test proves nothing).
        Assert.True(relay.Dropped > 50, $"only {relay.Dropped} packets dropped");
        Assert.True(relay.Reordered > 10, $"only {relay.Reordered} packets reordered");
        Assert.True(relay.Duplicated > 10, $"only {relay.Duplicated} packets duplicated");
    }

    // Enough packets for every impairment to show; the reference pair needs no 20 MB to prove the relay.
    private const long RelayCheckBytes = 2_000_000;

    [Fact]
    public Task Libdatachannel_pair_survives_the_lossy_relay() =>
        RunThroughRelayAsync(FixtureCatalog.Node("ndc").WithEnvironment("PEER_BIND", "127.0.0.1"),
            FixtureCatalog.Node("ndc").WithEnvironment("PEER_BIND", "127.0.0.1"), RelayCheckBytes, log);
}
