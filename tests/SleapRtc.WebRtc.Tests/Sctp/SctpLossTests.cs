using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

public class SctpLossTests
{
    private readonly ITestOutputHelper _output;

    public SctpLossTests(ITestOutputHelper output) => _output = output;

    private static PipeImpairments Lossy(int seed) => new()
    {
        LossRate = 0.05,
        DuplicateRate = 0.02,
        ReorderRate = 0.03,
        ReorderDelay = TimeSpan.FromMilliseconds(4),
        Jitter = TimeSpan.FromMilliseconds(20),
        Seed = seed,
    };

    [Fact]
    public async Task Lossy_500KB_BothDirections_RecoversAndReportsDuplicates()
    {
        await using var pair = new SctpTestPair(aToB: Lossy(21), bToA: Lossy(22));
        var (atA, atB) = await pair.OpenChannelAsync("lossy", TimeSpan.FromSeconds(20));
        var rates = await Task.WhenAll(
            SctpAssociationTests.TransferAsync(atA, atB, 500_000, 3, TimeSpan.FromSeconds(60)),
            SctpAssociationTests.TransferAsync(atB, atA, 500_000, 4, TimeSpan.FromSeconds(60)));
        var a = pair.A.GetStatistics();
        var b = pair.B.GetStatistics();
        _output.WriteLine($"{rates[0]:F2} / {rates[1]:F2} MB/s; A {a}; B {b}");
        Assert.True(a.DataChunksRetransmitted > 0 && b.DataChunksRetransmitted > 0);
        Assert.True(a.FastRetransmits + b.FastRetransmits > 0);
        Assert.True(a.DuplicateTsnsReceived + b.DuplicateTsnsReceived > 0);
        Assert.Equal(0, a.InternalErrors + b.InternalErrors);
    }

    // At 5 % loss each way and ~25 ms RTT any RFC congestion control is bound near MSS/RTT*1.2/sqrt(p)
    // (~0.3 MB/s), so this test takes about a minute; it is the brief's acceptance scenario.
    [Fact]
    [Trait("Category", "Slow")]
    public async Task Lossy_20MB_5PercentLoss_ReorderDuplicateJitter_ArrivesIntact()
    {
        await using var pair = new SctpTestPair(aToB: Lossy(11), bToA: Lossy(12));
        var (atA, atB) = await pair.OpenChannelAsync("lossy", TimeSpan.FromSeconds(20));
        double rate = await SctpAssociationTests.TransferAsync(atA, atB, 20_000_000, 7, TimeSpan.FromSeconds(240));
        var stats = pair.A.GetStatistics();
        _output.WriteLine($"{rate:F2} MB/s through loss; sender {stats}; receiver duplicates {pair.B.GetStatistics().DuplicateTsnsReceived}");
        Assert.True(stats.FastRetransmits > 0, "fast retransmit never ran");
        Assert.True(stats.DataChunksRetransmitted > 0);
        Assert.True(pair.B.GetStatistics().DuplicateTsnsReceived > 0, "duplicates were not reported");
        Assert.Equal(0, stats.InternalErrors);
    }
}
