using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>Issue 3 acceptance: 20 MB between two OursPeer processes through the lossy relay, intact.</summary>
public sealed class ManagedLossyRelayTests(ITestOutputHelper log)
{
    private static FixtureCommand OursOnLoopback() => FixtureCatalog.Ours().WithEnvironment("PEER_LOCAL", "127.0.0.1");

    // ~0.2 MB/s through this relay (cwnd a few packets at 5 % loss each way, ~25 ms RTT), so about 105 s: the
    // longest test of the suite, and the acceptance line of issue 3.
    [Fact]
    public Task Ours_pair_moves_20MB_intact_through_the_lossy_relay() =>
        LossyRelayTests.RunThroughRelayAsync(OursOnLoopback(), OursOnLoopback(), 20_000_000, log);
}
