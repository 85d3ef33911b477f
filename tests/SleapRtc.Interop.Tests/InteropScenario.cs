using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>The acceptance scenario every pair must pass: 20 MB each way with equal SHA-256, 1,000 texts in order, orderly close.</summary>
internal static class InteropScenario
{
    /// <summary>
    /// Whether this kernel knows UDP_SEGMENT (Linux 4.18+), probed the way our stack probes it; where it does, our
    /// sender must have used it. A CI host on an older kernel then checks only the bytes, as Windows does.
    /// </summary>
    private static readonly Lazy<bool> KernelSegmentsUdp = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        try { socket.SetRawSocketOption(17, 103, new byte[sizeof(int)]); return true; }
        catch (System.Net.Sockets.SocketException) { return false; }
    });

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
            if (source.Name.StartsWith("ours ", StringComparison.Ordinal) && KernelSegmentsUdp.Value)
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
