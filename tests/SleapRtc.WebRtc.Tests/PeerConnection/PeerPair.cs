using System.Net;
using System.Security.Cryptography;
using SleapRtc.WebRtc.PeerConnection;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

/// <summary>Two managed peer connections on loopback with SDP exchanged in memory, channel open.</summary>
internal sealed class PeerPair : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public required RtcPeerConnection Offerer { get; init; }
    public required RtcPeerConnection Answerer { get; init; }
    public required IDataChannel OffererChannel { get; init; }
    public required IDataChannel AnswererChannel { get; init; }

    public static PeerConnectionOptions LoopbackOptions => new() { LocalAddresses = new[] { IPAddress.Loopback } };

    public static async Task<PeerPair> ConnectAsync(RtcPeerConnectionFactory factory, Func<string, string>? rewriteOffer = null,
        Func<string, string>? rewriteAnswer = null)
    {
        var offerer = factory.CreateConnection(LoopbackOptions);
        var answerer = factory.CreateConnection(LoopbackOptions);
        using var cts = new CancellationTokenSource(Timeout);
        var remoteChannel = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += channel => remoteChannel.TrySetResult(channel);
        var offer = await offerer.CreateOfferAsync(cts.Token);
        var answer = await answerer.AcceptOfferAsync(rewriteOffer?.Invoke(offer) ?? offer, cts.Token);
        await offerer.AcceptAnswerAsync(rewriteAnswer?.Invoke(answer) ?? answer, cts.Token);
        var local = await offerer.OpenDataChannelAsync("test", cts.Token);
        var remote = await remoteChannel.Task.WaitAsync(cts.Token);
        return new PeerPair { Offerer = offerer, Answerer = answerer, OffererChannel = local, AnswererChannel = remote };
    }

    /// <summary>Sends seeded random bytes in 64 KiB messages with back-pressure; returns MB/s once the receiver's SHA-256 matches.</summary>
    public static async Task<double> TransferAsync(IDataChannel from, IDataChannel to, int totalBytes, int seed)
    {
        var data = new byte[totalBytes];
        new Random(seed).NextBytes(data);
        var expected = SHA256.HashData(data);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnMessage(DataChannelMessage message)
        {
            if (message.IsText) return;
            hash.AppendData(message.Binary.Span);
            received += message.Binary.Length;
            if (received >= totalBytes) done.TrySetResult();
        }
        to.MessageReceived += OnMessage;
        using var cts = new CancellationTokenSource(Timeout);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        for (var offset = 0; offset < totalBytes; offset += 65536)
            await from.SendAsync(data.AsMemory(offset, Math.Min(65536, totalBytes - offset)), 1 << 20, cts.Token);
        await done.Task.WaitAsync(cts.Token);
        var seconds = stopwatch.Elapsed.TotalSeconds;
        to.MessageReceived -= OnMessage;
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(expected)) throw new InvalidDataException("SHA-256 differs");
        return totalBytes / 1e6 / seconds;
    }

    public async ValueTask DisposeAsync()
    {
        await Offerer.DisposeAsync();
        await Answerer.DisposeAsync();
    }
}
