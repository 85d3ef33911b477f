using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// The client's half of the room-token channel binding (<see cref="ChannelAuthExchange"/>), run on a freshly opened
/// channel before anything of a job is sent: the worker must prove the room token over the DTLS certificates this
/// connection actually uses, and then accept ours. Every channel to a worker that advertises it goes through here
/// (<see cref="WorkerChannel.OfferAsync"/>): training, inference, spaces, collections, the connection test.
/// </summary>
internal static class ChannelProof
{
    /// <exception cref="ChannelAuthenticationException">The worker's proof did not verify, or it refused ours.</exception>
    public static async Task RunAsync(IDataChannel channel, IPeerConnection peer, string roomToken, string workerId, CancellationToken cancellationToken)
    {
        var fingerprints = peer.CertificateFingerprints
            ?? throw new ChannelAuthenticationException(workerId, "this connection cannot tell its DTLS certificates");
        var exchange = new ChannelAuthExchange(ChannelAuthRole.Client, roomToken, fingerprints.Local, fingerprints.Remote);
        var finished = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnMessage(DataChannelMessage message)
        {
            if (!message.IsText) return; // a keep-alive; nothing else binary comes before the exchange ends
            lock (exchange)
            {
                var reply = exchange.Receive(message.Text!);
                if (reply is not null) TrySend(channel, reply);
                if (exchange.State != ChannelAuthState.InProgress) finished.TrySetResult(true);
            }
        }
        void OnClosed(Exception? error) => finished.TrySetException(new ChannelAuthenticationException(workerId,
            "the worker closed the channel before proving the room token"));
        channel.MessageReceived += OnMessage;
        channel.Closed += OnClosed;
        try
        {
            lock (exchange) channel.Send(exchange.Start());
            await finished.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            channel.MessageReceived -= OnMessage;
            channel.Closed -= OnClosed;
        }
        if (exchange.State == ChannelAuthState.Verified) return;
        throw new ChannelAuthenticationException(workerId, exchange.PeerFailureMessage is { } theirs
            ? exchange.FailureCode == ChannelAuthExchange.Codes.ProofMismatch
                ? "the worker found that this client's proof does not match its room token and the DTLS certificates it sees"
                : $"the worker refused: {theirs}"
            : exchange.FailureCode == ChannelAuthExchange.Codes.ProofMismatch
                ? "the worker's proof does not match this room token and the DTLS certificates this connection uses"
                : "the worker answered outside the channel authentication protocol");
    }

    private static void TrySend(IDataChannel channel, string text)
    {
        try { channel.Send(text); }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException) { }
    }
}
