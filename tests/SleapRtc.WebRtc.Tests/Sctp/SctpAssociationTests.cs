using System.Security.Cryptography;
using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

public class SctpAssociationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly ITestOutputHelper _output;

    public SctpAssociationTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task BothSidesSendInit_CollisionResolvesToOneAssociation()
    {
        await using var pair = new SctpTestPair();
        await pair.ConnectBothAsync(Timeout);
        Assert.Equal(SctpAssociationState.Established, pair.A.State);
        Assert.Equal(SctpAssociationState.Established, pair.B.State);
        var (atA, atB) = await OpenAndCheck(pair);
        Assert.Equal(0, atA.StreamId % 2); // DTLS client: even stream ids
    }

    [Fact]
    public async Task OnlyOneSideStarts_PassiveSideAnswersFromCookie()
    {
        await using var pair = new SctpTestPair();
        using var cts = new CancellationTokenSource(Timeout);
        await pair.A.ConnectAsync(cts.Token);
        await pair.B.Established.WaitAsync(cts.Token);
        await OpenAndCheck(pair);
    }

    [Fact]
    public async Task LostInitAndCookie_AreRetransmittedByT1()
    {
        var fast = new SctpAssociationOptions { IsDtlsClient = true, RtoInitial = TimeSpan.FromMilliseconds(50) };
        await using var pair = new SctpTestPair(fast, new SctpAssociationOptions { RtoInitial = TimeSpan.FromMilliseconds(50) });
        pair.AToB.DropWhen((index, _) => index < 2); // first INIT and the first COOKIE ECHO / INIT ACK
        pair.BToA.DropWhen((index, _) => index < 1);
        await pair.ConnectBothAsync(Timeout);
        await OpenAndCheck(pair);
    }

    [Fact]
    public async Task A_channel_requested_before_establishment_follows_the_cookie_ack_not_precedes_it()
    {
        // B answers A's INIT passively and has a channel open queued: establishing on A's COOKIE ECHO sends that
        // DATA_CHANNEL_OPEN. Sent ahead of the COOKIE ACK, it reached A still in COOKIE-ECHOED, which drops DATA,
        // and the channel opened only after the 1 s retransmission timeout (1-2 % of loopback connects).
        await using var pair = new SctpTestPair();
        var sentByB = new System.Collections.Concurrent.ConcurrentQueue<byte[]>();
        pair.BToA.Tap = sentByB.Enqueue;
        using var cts = new CancellationTokenSource(Timeout);
        var opened = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.A.ChannelOpened += channel => opened.TrySetResult(channel);
        var atB = pair.B.OpenChannelAsync("early", cts.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await pair.A.ConnectAsync(cts.Token);
        await Task.WhenAll(atB, opened.Task).WaitAsync(cts.Token);

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"the early channel took {clock.ElapsedMilliseconds} ms to open");
        Assert.Equal(0, pair.B.GetStatistics().DataChunksRetransmitted);
        var firstChunks = sentByB.Select(packet => packet[12]).ToList();
        var cookieAck = firstChunks.IndexOf(ChunkType.CookieAck);
        var firstData = firstChunks.IndexOf(ChunkType.Data);
        Assert.True(cookieAck >= 0 && firstData > cookieAck, $"B's packets began with chunk types {string.Join(",", firstChunks)}");
    }

    private static async Task<(IDataChannel, IDataChannel)> OpenAndCheck(SctpTestPair pair)
    {
        var remote = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.B.ChannelOpened += channel =>
        {
            channel.MessageReceived += message => received.TrySetResult(message.Text ?? "<binary>");
            remote.TrySetResult(channel);
        };
        using var cts = new CancellationTokenSource(Timeout);
        var atA = await pair.A.OpenChannelAsync("files", cts.Token);
        var atB = await remote.Task.WaitAsync(cts.Token);
        Assert.Equal("files", atB.Label);
        Assert.Equal(atA.StreamId, atB.StreamId);
        atA.Send("hello");
        Assert.Equal("hello", await received.Task.WaitAsync(cts.Token));
        return (atA, atB);
    }

    /// <summary>Sends <paramref name="totalBytes"/> of seeded random data from one end to the other in 64 KiB messages and compares SHA-256.</summary>
    internal static async Task<double> TransferAsync(IDataChannel from, IDataChannel to, int totalBytes, int seed, TimeSpan timeout)
    {
        var data = new byte[totalBytes];
        new Random(seed).NextBytes(data);
        var expected = SHA256.HashData(data);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        to.MessageReceived += message =>
        {
            hash.AppendData(message.Binary.Span);
            received += message.Binary.Length;
            if (received >= totalBytes) done.TrySetResult();
        };
        using var cts = new CancellationTokenSource(timeout);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        const int chunk = 65536;
        for (int offset = 0; offset < totalBytes; offset += chunk)
        {
            int length = Math.Min(chunk, totalBytes - offset);
            await from.SendAsync(data.AsMemory(offset, length), 1 << 20, cts.Token);
        }
        try
        {
            await done.Task.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"transfer stalled: {Interlocked.Read(ref received)} of {totalBytes} bytes arrived, {from.BufferedAmount} buffered at the sender");
        }
        watch.Stop();
        Assert.Equal(totalBytes, received);
        Assert.Equal(expected, hash.GetHashAndReset());
        return totalBytes / 1e6 / watch.Elapsed.TotalSeconds;
    }

    [Fact]
    public async Task CleanPipe_20MB_EachDirection_Sha256Equal()
    {
        await using var pair = new SctpTestPair();
        var (atA, atB) = await pair.OpenChannelAsync("bulk", Timeout);
        var forward = TransferAsync(atA, atB, 20_000_000, 1, Timeout);
        var backward = TransferAsync(atB, atA, 20_000_000, 2, Timeout);
        var rates = await Task.WhenAll(forward, backward);
        _output.WriteLine($"A->B {rates[0]:F1} MB/s, B->A {rates[1]:F1} MB/s (concurrently); {pair.A.GetStatistics()}");
        Assert.Equal(0, pair.A.GetStatistics().InternalErrors);
    }
}
