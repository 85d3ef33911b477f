using System.Text;
using SleapRtc.WebRtc.Sctp;
using SleapRtc.WebRtc.Tests.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.DataChannels;

public class DataChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly ITestOutputHelper _output;

    public DataChannelTests(ITestOutputHelper output) => _output = output;

    private static SctpAssociationOptions Options(bool client, int max = 262144) =>
        new() { IsDtlsClient = client, RemoteMaxMessageSize = max, LocalMaxMessageSize = max };

    [Fact]
    public async Task ThousandTextMessages_ArriveInOrder_WithEmptyVariants()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("chat", Timeout);
        var received = new List<DataChannelMessage>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.MessageReceived += message =>
        {
            received.Add(message.IsText ? message : new DataChannelMessage(message.Binary.ToArray()));
            if (received.Count == 1002) done.TrySetResult();
        };
        for (int i = 0; i < 1000; i++) atA.Send($"message {i} ✓");
        atA.Send(string.Empty);
        atA.Send(ReadOnlySpan<byte>.Empty);
        using var cts = new CancellationTokenSource(Timeout);
        await done.Task.WaitAsync(cts.Token);
        for (int i = 0; i < 1000; i++) Assert.Equal($"message {i} ✓", received[i].Text);
        Assert.True(received[1000].IsText);
        Assert.Equal(string.Empty, received[1000].Text);
        Assert.False(received[1001].IsText);
        Assert.Equal(0, received[1001].Binary.Length);
        var stats = pair.A.GetStatistics();
        _output.WriteLine(stats.ToString());
        Assert.True(stats.PacketsSent < stats.DataChunksSent, "small messages queued behind the window should share packets");
    }

    [Fact]
    public async Task MessagesUpToMaxSize_AreReassembled_LargerOnesRefused()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("big", Timeout);
        Assert.Equal(262144, atA.MaxMessageSize);
        var binary = new byte[262144];
        new Random(4).NextBytes(binary);
        var text = new string('é', 131072); // 262144 UTF-8 bytes
        var received = new List<DataChannelMessage>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.MessageReceived += message =>
        {
            received.Add(message.IsText ? message : new DataChannelMessage(message.Binary.ToArray()));
            if (received.Count == 3) done.TrySetResult();
        };
        atA.Send(binary);
        atA.Send(text);
        atA.Send(binary.AsSpan(0, 1));
        Assert.Throws<ArgumentException>(() => atA.Send(new byte[262145]));
        Assert.Throws<ArgumentException>(() => atA.Send(text + "x"));
        using var cts = new CancellationTokenSource(Timeout);
        await done.Task.WaitAsync(cts.Token);
        Assert.Equal(binary, received[0].Binary.ToArray());
        Assert.Equal(text, received[1].Text);
        Assert.Equal(binary[0], received[2].Binary.Span[0]);
    }

    [Fact]
    public async Task PeerExceedingOurMaxMessageSize_AbortsTheAssociation()
    {
        // A claims the remote accepts 1 MiB, but B only reassembles 64 KiB.
        await using var pair = new SctpTestPair(Options(true, 1 << 20), Options(false, 65536));
        var (atA, _) = await pair.OpenChannelAsync("liar", Timeout);
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.B.Closed += error => closed.TrySetResult(error);
        atA.Send(new byte[100_000]);
        using var cts = new CancellationTokenSource(Timeout);
        var error = await closed.Task.WaitAsync(cts.Token);
        Assert.Contains("max-message-size", error!.Message);
        await pair.A.Completion.WaitAsync(cts.Token);
    }

    [Fact]
    public async Task BackPressure_BufferedAmountStaysBounded_AndLowEventFires()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("flow", Timeout);
        const long highWater = 1 << 20;
        atA.BufferedAmountLowThreshold = 256 * 1024;
        int lowEvents = 0;
        atA.BufferedAmountLow += () => Interlocked.Increment(ref lowEvents);
        long received = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int total = 8 * 1024 * 1024;
        atB.MessageReceived += message =>
        {
            if ((received += message.Binary.Length) == total) done.TrySetResult();
        };
        var chunk = new byte[65536];
        long maxBuffered = 0;
        using var cts = new CancellationTokenSource(Timeout);
        for (int sent = 0; sent < total; sent += chunk.Length)
        {
            await atA.SendAsync(chunk, highWater, cts.Token);
            maxBuffered = Math.Max(maxBuffered, atA.BufferedAmount);
        }
        await done.Task.WaitAsync(cts.Token);
        var deadline = DateTime.UtcNow + Timeout;
        while (atA.BufferedAmount > 0 && DateTime.UtcNow < deadline) await Task.Delay(5);
        _output.WriteLine($"max buffered after SendAsync {maxBuffered}, low events {lowEvents}");
        Assert.True(maxBuffered <= highWater, $"BufferedAmount {maxBuffered} exceeded the high-water mark");
        Assert.True(lowEvents > 0, "BufferedAmountLow never fired");
        Assert.Equal(0, atA.BufferedAmount);
    }

    [Fact]
    public async Task CloseChannel_ResetsStreamsBothWays_AssociationStaysUp()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("first", Timeout);
        var closedAtB = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.Closed += error => closedAtB.TrySetResult(error);
        var lastMessage = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.MessageReceived += message => lastMessage.TrySetResult(message.Text);
        atA.Send("before close");
        using var cts = new CancellationTokenSource(Timeout);
        await atA.CloseAsync(cts.Token);
        Assert.Equal("before close", await lastMessage.Task.WaitAsync(cts.Token));
        Assert.Null(await closedAtB.Task.WaitAsync(cts.Token));
        Assert.Equal(DataChannelState.Closed, atA.State);
        Assert.Equal(DataChannelState.Closed, atB.State);
        Assert.Equal(SctpAssociationState.Established, pair.A.State);

        // The association carries new channels, in both directions, after the reset.
        var openedAtA = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.A.ChannelOpened += channel => openedAtA.TrySetResult(channel);
        var fromB = await pair.B.OpenChannelAsync("second", cts.Token);
        var fromBAtA = await openedAtA.Task.WaitAsync(cts.Token);
        Assert.Equal(1, fromB.StreamId % 2); // DTLS server: odd ids
        var echoed = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        fromBAtA.MessageReceived += message => echoed.TrySetResult(message.Text);
        fromB.Send("after reset");
        Assert.Equal("after reset", await echoed.Task.WaitAsync(cts.Token));
        var fromBClosed = ClosedEvent(fromB);
        await fromBAtA.CloseAsync(cts.Token); // the side that accepted the channel closes it
        // The closer finishes when it answers the peer's reset; the peer finishes when that answer arrives.
        Assert.Null(await fromBClosed.WaitAsync(cts.Token));
        Assert.Equal(DataChannelState.Closed, fromB.State);
    }

    [Fact]
    public async Task TwoChannels_KeepTheirOwnOrder()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (one, oneAtB) = await pair.OpenChannelAsync("one", Timeout);
        var twoAtB = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.B.ChannelOpened += channel => twoAtB.TrySetResult(channel);
        using var cts = new CancellationTokenSource(Timeout);
        var two = await pair.A.OpenChannelAsync("two", "proto-x", cts.Token);
        var twoRemote = await twoAtB.Task.WaitAsync(cts.Token);
        Assert.Equal("proto-x", ((SleapRtc.WebRtc.DataChannels.RtcDataChannel)twoRemote).Protocol);
        var first = new List<int>();
        var second = new List<int>();
        var done = new CountdownEvent(2);
        oneAtB.MessageReceived += m => { first.Add(int.Parse(m.Text!)); if (first.Count == 500) done.Signal(); };
        twoRemote.MessageReceived += m => { second.Add(BitConverter.ToInt32(m.Binary.Span)); if (second.Count == 500) done.Signal(); };
        for (int i = 0; i < 500; i++)
        {
            one.Send(i.ToString());
            two.Send(BitConverter.GetBytes(i));
        }
        Assert.True(done.Wait(Timeout));
        Assert.Equal(Enumerable.Range(0, 500), first);
        Assert.Equal(Enumerable.Range(0, 500), second);
        Assert.NotEqual(one.StreamId, two.StreamId);
    }

    [Fact]
    public async Task NegotiatedChannels_SkipDcep_AndCarryDataBothWays()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        await pair.ConnectBothAsync(Timeout);
        int remoteOpens = 0;
        pair.B.ChannelOpened += _ => Interlocked.Increment(ref remoteOpens);
        var atA = pair.A.CreateNegotiatedChannel("pre", 7);
        var atB = pair.B.CreateNegotiatedChannel("pre", 7);
        Assert.Throws<InvalidOperationException>(() => pair.A.CreateNegotiatedChannel("again", 7));
        var toB = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var toA = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        atB.MessageReceived += m => toB.TrySetResult(m.Text);
        atA.MessageReceived += m => toA.TrySetResult(m.Text);
        atA.Send("ping");
        atB.Send("pong");
        using var cts = new CancellationTokenSource(Timeout);
        Assert.Equal("ping", await toB.Task.WaitAsync(cts.Token));
        Assert.Equal("pong", await toA.Task.WaitAsync(cts.Token));
        Assert.Equal(0, remoteOpens);
        var atBClosed = ClosedEvent(atB);
        await atA.CloseAsync(cts.Token);
        Assert.Null(await atBClosed.WaitAsync(cts.Token));
        Assert.Equal(DataChannelState.Closed, atB.State);
    }

    private static Task<Exception?> ClosedEvent(IDataChannel channel)
    {
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.Closed += error => closed.TrySetResult(error);
        return closed.Task;
    }
}
