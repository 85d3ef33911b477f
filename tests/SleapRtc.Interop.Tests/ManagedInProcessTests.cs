using System.Net;
using System.Security.Cryptography;
using SleapRtc.Interop;
using SleapRtc.WebRtc;
using Xunit;

namespace SleapRtc.Interop.Tests;

/// <summary>Two managed peer connections in this process, driven only through IPeerConnection / IDataChannel, on 127.0.0.1.</summary>
public sealed class ManagedInProcessTests
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(30);

    private static PeerConnectionOptions LoopbackOnly() =>
        new() { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };

    [Fact]
    public async Task Two_managed_peers_move_20_MB_each_way_1000_texts_in_order_and_close()
    {
        var factory = ManagedStack.CreateFactory();
        await using var offerer = factory.Create(LoopbackOnly());
        await using var answerer = factory.Create(LoopbackOnly());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var remoteChannel = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += channel => remoteChannel.TrySetResult(channel);
        var offer = await offerer.CreateOfferAsync(cts.Token).WaitAsync(Step);
        var answer = await answerer.AcceptOfferAsync(offer, cts.Token).WaitAsync(Step);
        await offerer.AcceptAnswerAsync(answer, cts.Token).WaitAsync(Step);
        var local = await offerer.OpenDataChannelAsync("data", cts.Token).WaitAsync(Step);
        var remote = await remoteChannel.Task.WaitAsync(Step);
        Assert.Equal(DataChannelState.Open, local.State);
        Assert.Equal("data", remote.Label);

        await TransferAsync(local, remote, 20_000_000, cts.Token);
        await TransferAsync(remote, local, 20_000_000, cts.Token);

        var texts = new List<string>();
        var allTexts = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        remote.MessageReceived += message =>
        {
            if (!message.IsText) return;
            lock (texts) { texts.Add(message.Text!); if (texts.Count == 1000) allTexts.TrySetResult(); }
        };
        for (var i = 0; i < 1000; i++) local.Send($"msg {i}");
        await allTexts.Task.WaitAsync(Step);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => $"msg {i}"), texts);

        var localClosed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var remoteClosed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        local.Closed += error => localClosed.TrySetResult(error);
        remote.Closed += error => remoteClosed.TrySetResult(error);
        await local.CloseAsync(cts.Token).WaitAsync(Step);
        Assert.Null(await localClosed.Task.WaitAsync(Step));
        Assert.Null(await remoteClosed.Task.WaitAsync(Step));
        Assert.Equal(DataChannelState.Closed, remote.State);
    }

    private static async Task TransferAsync(IDataChannel source, IDataChannel sink, long total, CancellationToken cancellationToken)
    {
        using var receivedHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnMessage(DataChannelMessage message)
        {
            if (message.IsText) return;
            receivedHash.AppendData(message.Binary.Span);
            received += message.Binary.Length;
            if (received >= total) done.TrySetResult();
        }
        sink.MessageReceived += OnMessage;
        try
        {
            using var sentHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[65536];
            for (long sent = 0; sent < total;)
            {
                var size = (int)Math.Min(buffer.Length, total - sent);
                RandomNumberGenerator.Fill(buffer.AsSpan(0, size));
                sentHash.AppendData(buffer.AsSpan(0, size));
                await source.SendAsync(buffer.AsMemory(0, size), 1 << 20, cancellationToken);
                sent += size;
            }
            await done.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            Assert.Equal(total, received);
            Assert.Equal(sentHash.GetHashAndReset(), receivedHash.GetHashAndReset());
        }
        finally
        {
            sink.MessageReceived -= OnMessage;
        }
    }
}
