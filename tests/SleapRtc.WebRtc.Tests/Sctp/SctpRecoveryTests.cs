using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>Loss recovery, shutdown, abort and peer loss, each provoked deterministically.</summary>
public class SctpRecoveryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly ITestOutputHelper _output;

    public SctpRecoveryTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task OneLostPacketMidStream_IsRepairedByFastRetransmit()
    {
        await using var pair = new SctpTestPair();
        var (atA, atB) = await pair.OpenChannelAsync("fr", Timeout);
        int bulkSeen = 0;
        pair.AToB.DropWhen((_, packet) => DatagramPipe.IsBulkData(packet) && Interlocked.Increment(ref bulkSeen) == 3);
        await SctpAssociationTests.TransferAsync(atA, atB, 200_000, 5, Timeout);
        var stats = pair.A.GetStatistics();
        _output.WriteLine(stats.ToString());
        Assert.Equal(1, pair.AToB.Dropped);
        Assert.Equal(1, stats.FastRetransmits);
        Assert.Equal(0, stats.T3Expirations);
        Assert.Equal(1, stats.DataChunksRetransmitted);
    }

    [Fact]
    public async Task LostTailPacket_IsRepairedByT3Timeout()
    {
        await using var pair = new SctpTestPair();
        var (atA, atB) = await pair.OpenChannelAsync("t3", Timeout);
        int bulkSeen = 0;
        // A 3-packet message; its last packet is lost, so no later packet can report the gap.
        pair.AToB.DropWhen((_, packet) => packet.Length > 100 && packet[12] == 0 && (packet[13] & 1) != 0 && Interlocked.Increment(ref bulkSeen) == 1);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await SctpAssociationTests.TransferAsync(atA, atB, 3000, 6, Timeout);
        var stats = pair.A.GetStatistics();
        _output.WriteLine($"{watch.ElapsedMilliseconds} ms; {stats}");
        Assert.Equal(1, pair.AToB.Dropped);
        Assert.Equal(1, stats.T3Expirations);
        Assert.Equal(0, stats.FastRetransmits);
        Assert.True(watch.ElapsedMilliseconds >= 150, "delivered before the RTO could have expired");
    }

    [Fact]
    public async Task Shutdown_DeliversQueuedDataThenClosesBothSidesOrderly()
    {
        await using var pair = new SctpTestPair();
        var (atA, atB) = await pair.OpenChannelAsync("bye", Timeout);
        var closedA = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var closedB = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var channelClosedB = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.A.Closed += error => closedA.TrySetResult(error);
        pair.B.Closed += error => closedB.TrySetResult(error);
        atB.Closed += error => channelClosedB.TrySetResult(error);
        long received = 0;
        atB.MessageReceived += message => received += message.Binary.Length;
        var payload = new byte[60_000];
        for (int i = 0; i < 20; i++) atA.Send(payload);
        using var cts = new CancellationTokenSource(Timeout);
        await pair.A.ShutdownAsync(cts.Token);
        Assert.Null(await closedA.Task.WaitAsync(cts.Token));
        Assert.Null(await closedB.Task.WaitAsync(cts.Token));
        Assert.Null(await channelClosedB.Task.WaitAsync(cts.Token));
        Assert.Equal(20 * 60_000, received);
        Assert.Equal(SctpAssociationState.Closed, pair.B.State);
        Assert.Equal(DataChannelState.Closed, atA.State);
        Assert.Throws<InvalidOperationException>(() => atA.Send("late"));
    }

    [Fact]
    public async Task Abort_ClosesPeerChannelsWithAnError()
    {
        await using var pair = new SctpTestPair();
        var (_, atB) = await pair.OpenChannelAsync("abort", Timeout);
        var channelClosed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.Closed += error => channelClosed.TrySetResult(error);
        pair.A.Abort("test abort");
        using var cts = new CancellationTokenSource(Timeout);
        var error = await channelClosed.Task.WaitAsync(cts.Token);
        Assert.IsType<SctpAssociationException>(error);
        Assert.Contains("aborted", error!.Message);
        await pair.B.Completion.WaitAsync(cts.Token);
        Assert.Equal(SctpAssociationState.Closed, pair.B.State);
    }

    private static SctpAssociationOptions ShortTimers(bool client) => new()
    {
        IsDtlsClient = client,
        RtoInitial = TimeSpan.FromMilliseconds(100),
        RtoMin = TimeSpan.FromMilliseconds(50),
        RtoMax = TimeSpan.FromMilliseconds(200),
        MaxRetransmissions = 3,
        HeartbeatInterval = TimeSpan.FromMilliseconds(150),
    };

    [Fact]
    public async Task PeerVanishesMidTransfer_RetransmissionLimitClosesWithError()
    {
        await using var pair = new SctpTestPair(ShortTimers(true), ShortTimers(false));
        var (atA, _) = await pair.OpenChannelAsync("gone", Timeout);
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atA.Closed += error => closed.TrySetResult(error);
        var payload = new byte[65536];
        for (int i = 0; i < 4; i++) atA.Send(payload);
        pair.AToB.Cut();
        pair.BToA.Cut();
        for (int i = 0; i < 4; i++) atA.Send(payload);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(Timeout);
        var error = await closed.Task.WaitAsync(cts.Token);
        _output.WriteLine($"detected after {watch.ElapsedMilliseconds} ms: {error?.Message}");
        Assert.NotNull(error);
        Assert.True(pair.A.GetStatistics().T3Expirations >= 3);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task PeerVanishesWhileIdle_HeartbeatsDetectIt()
    {
        await using var pair = new SctpTestPair(ShortTimers(true), ShortTimers(false));
        await pair.OpenChannelAsync("idle", Timeout);
        await Task.Delay(400); // heartbeats flow and are answered while the peer is there
        Assert.Equal(SctpAssociationState.Established, pair.A.State);
        pair.AToB.Cut();
        pair.BToA.Cut();
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.A.Closed += error => closed.TrySetResult(error);
        using var cts = new CancellationTokenSource(Timeout);
        var error = await closed.Task.WaitAsync(cts.Token);
        Assert.NotNull(error);
        Assert.Contains("heartbeat", error!.Message);
        Assert.True(pair.A.GetStatistics().HeartbeatsSent >= 4);
    }

    [Fact]
    public async Task TransportClosed_ClosesChannelsWithError()
    {
        await using var pair = new SctpTestPair();
        var (atA, _) = await pair.OpenChannelAsync("dtls", Timeout);
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atA.Closed += error => closed.TrySetResult(error);
        pair.A.OnTransportClosed(new IOException("consent lost"));
        using var cts = new CancellationTokenSource(Timeout);
        var error = await closed.Task.WaitAsync(cts.Token);
        Assert.IsType<IOException>(error!.InnerException);
    }
}
