using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;

namespace SleapRtc.Worker.Jobs;

/// <summary>What <see cref="ChannelGate"/> decided about a client's channel.</summary>
public enum ChannelGateDecision
{
    /// <summary>The client proved the room token over this channel's certificates.</summary>
    Verified,
    /// <summary>A classic peer (its first message is classic): allowed, unverified.</summary>
    Classic,
    /// <summary>Refused: the proof failed, a client of ours skipped it, or a classic peer met -RequireChannelAuth.</summary>
    Refused,
}

/// <summary>
/// Stands between a client's freshly opened data channel and whatever serves it (a job, a space request, a collection),
/// so that nothing is served before the worker knows who is at the other end. A client of ours opens with the room-token
/// proof (<see cref="ChannelAuthExchange"/>); a classic peer opens with its classic messages, which are held here
/// until the server of the channel subscribes to <see cref="Channel"/> and calls <see cref="Release"/>. A client that
/// speaks our extensions without the proof, or fails it, gets <c>SLEAPRTC_AUTH_FAILED</c> and nothing else; a classic
/// peer is refused with a plain line it prints when <c>requireAuth</c> is set.
/// Created inside the channel-opened event, so it hears the client's very first message.
/// </summary>
public sealed class ChannelGate
{
    /// <summary>What a classic peer prints when the worker requires the proof (classic clients show text lines as log).</summary>
    public const string ClassicRefusal = "ERROR: This worker requires channel authentication (Start-SleapWorker -RequireChannelAuth): " +
        "only clients that prove the room token over the channel (SleapRtc's Submit-SleapTraining) are served.\n";

    private readonly IDataChannel _inner;
    private readonly ChannelAuthExchange? _exchange;
    private readonly bool _requireAuth;
    private readonly object _gate = new();
    private readonly List<DataChannelMessage> _held = new();
    private readonly TaskCompletionSource<ChannelGateDecision> _decision = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly GatedChannel _view;
    private bool _released;
    private bool _exchangeStarted;

    /// <param name="fingerprints">The connection's DTLS certificate fingerprints; null when the transport does not tell them
    /// (then no proof can succeed and only classic peers are served, unless <paramref name="requireAuth"/>).</param>
    public ChannelGate(IDataChannel channel, string roomToken, DtlsFingerprints? fingerprints, bool requireAuth)
    {
        _inner = channel;
        _requireAuth = requireAuth;
        if (fingerprints is not null && !string.IsNullOrEmpty(roomToken))
            _exchange = new ChannelAuthExchange(ChannelAuthRole.Worker, roomToken, fingerprints.Local, fingerprints.Remote);
        _view = new GatedChannel(this, channel);
        channel.MessageReceived += OnMessage;
        channel.Closed += OnClosed;
    }

    /// <summary>The channel as its server sees it: messages only after <see cref="Release"/>, the held ones first.</summary>
    public IDataChannel Channel => _view;

    /// <summary>Completes with the decision; faults with <see cref="IOException"/> when the channel closes before one.</summary>
    public Task<ChannelGateDecision> Decision => _decision.Task;

    /// <summary>Why the channel was refused, for the worker's log (never the token).</summary>
    public string? RefusalReason { get; private set; }

    /// <summary>The job record's <c>channel_auth</c> for this decision.</summary>
    public string? RecordStatus => _decision.Task.IsCompletedSuccessfully
        ? _decision.Task.Result switch
        {
            ChannelGateDecision.Verified => ChannelAuthStatus.Verified,
            ChannelGateDecision.Classic => ChannelAuthStatus.Unverified,
            _ => null,
        }
        : null;

    /// <summary>Delivers the held messages, then every later one, to the subscribers of <see cref="Channel"/>.</summary>
    public void Release()
    {
        lock (_gate)
        {
            if (_released) return;
            // Under the lock: a message arriving meanwhile waits and then follows the held ones, in order.
            foreach (var message in _held) _view.Deliver(message);
            _held.Clear();
            _released = true;
        }
    }

    /// <summary>Stops listening (the channel is not served).</summary>
    public void Detach()
    {
        _inner.MessageReceived -= OnMessage;
        _inner.Closed -= OnClosed;
    }

    private void OnMessage(DataChannelMessage message)
    {
        lock (_gate)
        {
            if (_released)
            {
                _view.Deliver(message);
                return;
            }
            if (_decision.Task.IsCompleted)
            {
                if (_decision.Task.Result != ChannelGateDecision.Refused) _held.Add(Copy(message));
                return;
            }
            if (message.IsText && ChannelAuthExchange.IsExchangeMessage(message.Text!))
            {
                Authenticate(message.Text!);
                return;
            }
            if (_exchangeStarted)
            {
                Refuse(ChannelAuthExchange.Codes.Protocol, "the client sent a job message before finishing channel authentication");
                return;
            }
            if (message.IsText && message.Text!.StartsWith("SLEAPRTC_", StringComparison.Ordinal))
            {
                // Our extensions without the proof: a client of ours that skipped it (or an impostor posing as one).
                Refuse(ChannelAuthExchange.Codes.Required, "this worker serves clients of its kind only after they prove the room token over the channel");
                return;
            }
            if (_requireAuth)
            {
                RefusalReason = "a classic client cannot prove the room token and this worker runs with -RequireChannelAuth";
                TrySend(ClassicRefusal);
                _decision.TrySetResult(ChannelGateDecision.Refused);
                Close();
                return;
            }
            _held.Add(Copy(message));
            _decision.TrySetResult(ChannelGateDecision.Classic);
        }
    }

    private void Authenticate(string text)
    {
        if (_exchange is null)
        {
            Refuse(ChannelAuthExchange.Codes.Protocol, "this connection cannot tell its DTLS certificates, so it cannot be authenticated");
            return;
        }
        _exchangeStarted = true;
        var reply = _exchange.Receive(text);
        if (reply is not null) TrySend(reply);
        switch (_exchange.State)
        {
            case ChannelAuthState.Verified:
                _decision.TrySetResult(ChannelGateDecision.Verified);
                break;
            case ChannelAuthState.Failed:
                RefusalReason = _exchange.PeerFailureMessage is { } theirs
                    ? $"the client stopped channel authentication ({_exchange.FailureCode}: {theirs})"
                    : $"channel authentication failed ({_exchange.FailureCode}): the client's proof does not match this room token and this connection's " +
                      "DTLS certificates; the signaling path may be compromised";
                _decision.TrySetResult(ChannelGateDecision.Refused);
                Close();
                break;
        }
    }

    private void Refuse(string code, string reason)
    {
        RefusalReason = reason;
        TrySend(ChannelAuthExchange.FailureMessage(code, reason));
        _decision.TrySetResult(ChannelGateDecision.Refused);
        Close();
    }

    private void OnClosed(Exception? error)
    {
        _decision.TrySetException(new IOException("the client closed the channel before it was authenticated"));
        _view.RaiseClosed(error);
    }

    private void TrySend(string text)
    {
        try { _inner.Send(text); }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException) { }
    }

    private void Close() =>
        _ = _inner.CloseAsync(CancellationToken.None).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);

    private static DataChannelMessage Copy(DataChannelMessage message) =>
        message.IsText ? message : new DataChannelMessage(message.Binary.ToArray());

    /// <summary>The gated view: everything passes through except message delivery, which <see cref="ChannelGate"/> controls.</summary>
    private sealed class GatedChannel(ChannelGate owner, IDataChannel inner) : IDataChannel
    {
        public string Label => inner.Label;
        public ushort StreamId => inner.StreamId;
        public DataChannelState State => inner.State;
        public long BufferedAmount => inner.BufferedAmount;
        public long BufferedAmountLowThreshold { get => inner.BufferedAmountLowThreshold; set => inner.BufferedAmountLowThreshold = value; }
        public int MaxMessageSize => inner.MaxMessageSize;
        public event Action? BufferedAmountLow { add => inner.BufferedAmountLow += value; remove => inner.BufferedAmountLow -= value; }
        public event Action<DataChannelMessage>? MessageReceived;
        public event Action<Exception?>? Closed;
        public void Send(string text) => inner.Send(text);
        public void Send(ReadOnlySpan<byte> data) => inner.Send(data);
        public ValueTask SendAsync(ReadOnlyMemory<byte> data, long highWaterMark, CancellationToken cancellationToken) =>
            inner.SendAsync(data, highWaterMark, cancellationToken);
        public Task CloseAsync(CancellationToken cancellationToken) => inner.CloseAsync(cancellationToken);
        public ValueTask DisposeAsync()
        {
            owner.Detach();
            return inner.DisposeAsync();
        }

        internal void Deliver(DataChannelMessage message) => MessageReceived?.Invoke(message);
        internal void RaiseClosed(Exception? error) => Closed?.Invoke(error);
    }
}
