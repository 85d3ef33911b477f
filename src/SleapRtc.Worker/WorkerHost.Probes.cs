using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Connection tests (Test-SleapConnection): offers with purpose "probe" reserve nothing and reach a busy worker too; after
// the channel proof the worker echoes pings for a few seconds and serves nothing else on that channel.
public sealed partial class WorkerHost
{
    /// <summary>Connection tests at once; more are refused as busy (they are short).</summary>
    private const int MaxConcurrentProbes = 2;
    /// <summary>The longest a test channel stays open.</summary>
    private static readonly TimeSpan ProbeLifetime = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _probes = new(MaxConcurrentProbes, MaxConcurrentProbes);

    private static bool IsProbeOffer(SdpMessage offer) => offer.Raw.GetString(JobQueueMessages.OfferPurposeKey) == JobQueueMessages.ProbePurpose;

    private async Task HandleProbeOfferObservedAsync(SdpMessage offer)
    {
        try { await HandleProbeOfferAsync(offer).ConfigureAwait(false); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Write(LogLevel.Error, Component, $"connection test from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task HandleProbeOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        if (!await _probes.WaitAsync(0).ConfigureAwait(false))
        {
            await _signaling.SendBusyRejectionAsync(offer.Sender, "testing", _stopping.Token).ConfigureAwait(false);
            return;
        }
        var connection = NewPeerConnection();
        try
        {
            var opened = new TaskCompletionSource<ChannelGate>(TaskCreationOptions.RunContinuationsAsynchronously);
            connection.DataChannelOpened += channel => opened.TrySetResult(NewGate(channel, connection));
            connection.StateChanged += state =>
            {
                if (state is PeerConnectionState.Failed or PeerConnectionState.Closed)
                    opened.TrySetException(new IOException($"the peer connection {state.ToString().ToLowerInvariant()}"));
            };
            using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            lifetime.CancelAfter(ProbeLifetime);
            ChannelGate gate;
            try
            {
                var answer = await connection.AcceptOfferAsync(offer.Sdp, lifetime.Token).ConfigureAwait(false);
                await _signaling.SendAnswerAsync(offer.Sender, answer, lifetime.Token).ConfigureAwait(false);
                gate = await opened.Task.WaitAsync(lifetime.Token).ConfigureAwait(false);
                await gate.Decision.WaitAsync(lifetime.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SignalingException)
            {
                if (opened.Task.IsCompletedSuccessfully) opened.Task.Result.Detach();
                _log.Write(LogLevel.Information, Component, $"Connection test from {offer.Sender} did not open a data channel ({e.Message})");
                return;
            }
            if (!await AdmitAsync(gate, offer.Sender, verifiedOnly: true).ConfigureAwait(false)) return;
            var channel = gate.Channel;
            var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            channel.Closed += _ => closed.TrySetResult();
            channel.MessageReceived += message =>
            {
                if (!message.IsText) return;
                var (type, args) = JobMessages.Parse(message.Text!);
                if (type != JobMessages.Ping) return;
                try { channel.Send(JobMessages.Format(JobMessages.Pong, args.FirstOrDefault() ?? "")); }
                catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException) { }
            };
            gate.Release();
            try { await closed.Task.WaitAsync(lifetime.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            Note($"Connection test from {offer.Sender} done");
        }
        finally
        {
            _probes.Release();
            _ = connection.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
    }
}
