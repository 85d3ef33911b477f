using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>The acceptance scenario every pair must pass: 20 MB each way with equal SHA-256, 1,000 texts in order, orderly close.</summary>
internal static class InteropScenario
{
    public const long TransferBytes = 20_000_000;
    public const int TextCount = 1000;
    public static readonly TimeSpan TransferTimeout = TimeSpan.FromSeconds(60);

    public static async Task RunAsync(FixtureCommand offerer, FixtureCommand answerer, ITestOutputHelper log, bool orderlyClose = true)
    {
        await using var pair = await PeerPair.StartAsync(offerer, answerer).ConfigureAwait(false);
        await pair.ConnectAsync().ConfigureAwait(false);
        log.WriteLine($"{offerer.Name} -> {answerer.Name}: channel open after {pair.ConnectTime.TotalMilliseconds:0} ms");

        foreach (var (source, sink) in new[] { (pair.Offerer, pair.Answerer), (pair.Answerer, pair.Offerer) })
        {
            var outcome = await PeerPair.TransferAsync(source, sink, TransferBytes, TransferTimeout).ConfigureAwait(false);
            log.WriteLine($"{source.Name} -> {sink.Name}: {outcome.ReceivedBytes} bytes, {outcome.MBps:0.0} MB/s");
            Assert.Equal(TransferBytes, outcome.SentBytes);
            Assert.Equal(TransferBytes, outcome.ReceivedBytes);
            Assert.NotNull(outcome.SentSha256);
            Assert.Equal(outcome.SentSha256, outcome.ReceivedSha256);
            // Our sender's bursts left as segmented (Linux UDP GSO) sends, and the peer still got every byte in order.
            if (source.Name.StartsWith("ours ", StringComparison.Ordinal) && OperatingSystem.IsLinux())
                Assert.True(outcome.SenderSegmentedDatagrams > 0, $"{source.Name} -> {sink.Name}: no segmented sends ({outcome.SenderSegmentedDatagrams})");
        }

        var texts = await PeerPair.TextsAsync(pair.Offerer, pair.Answerer, TextCount, TransferTimeout).ConfigureAwait(false);
        Assert.Equal(TextCount, texts.Count);
        Assert.True(texts.InOrder, $"text {texts.FirstMismatch} out of order: '{texts.Sample}'");

        if (!orderlyClose) return;
        var (closer, other) = await pair.CloseFromAsync(pair.Offerer).ConfigureAwait(false);
        Assert.Equal("local", closer);
        Assert.Equal("remote", other);
    }
}
