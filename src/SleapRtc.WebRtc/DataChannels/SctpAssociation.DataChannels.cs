using System.Buffers;
using SleapRtc.WebRtc.DataChannels;

namespace SleapRtc.WebRtc.Sctp;

// The data-channel layer of the association: DCEP (RFC 8832), stream id allocation by DTLS role,
// message routing by stream and PPID, and channel close through stream reset (RFC 8831 §6.7).
public sealed partial class SctpAssociation
{
    private readonly Dictionary<ushort, RtcDataChannel> _channels = new();
    private readonly List<RtcDataChannel> _opensAwaitingEstablishment = new();
    private ushort _nextStreamId;

    private int RemoteMaxMessageSize => _options.RemoteMaxMessageSize <= 0 ? int.MaxValue : _options.RemoteMaxMessageSize;

    /// <summary>Opens an ordered reliable channel with DATA_CHANNEL_OPEN and completes on DATA_CHANNEL_ACK.</summary>
    public Task<IDataChannel> OpenChannelAsync(string label, CancellationToken cancellationToken) => OpenChannelAsync(label, string.Empty, cancellationToken);

    public async Task<IDataChannel> OpenChannelAsync(string label, string protocol, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(label);
        ArgumentNullException.ThrowIfNull(protocol);
        RtcDataChannel channel;
        lock (_gate)
        {
            if (_closed) throw new SctpAssociationException("the SCTP association is closed", _closeError);
            channel = new RtcDataChannel(this, AllocateStreamId(), label, protocol, RemoteMaxMessageSize, DataChannelState.Connecting);
            _channels[channel.StreamId] = channel;
            if (_state == SctpAssociationState.Established) SendDcepOpen(channel);
            else _opensAwaitingEstablishment.Add(channel);
        }
        RaisePendingEvents();
        try
        {
            await channel.Opened.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ForgetChannel(channel, new OperationCanceledException("opening the data channel was cancelled"));
            throw;
        }
        return channel;
    }

    /// <summary>
    /// A pre-negotiated channel (RFC 8831 §6.5, "negotiated: true"): both sides create it with the same stream
    /// id out of band and no DCEP is exchanged. Usable once the association is established.
    /// </summary>
    public IDataChannel CreateNegotiatedChannel(string label, ushort streamId)
    {
        ArgumentNullException.ThrowIfNull(label);
        lock (_gate)
        {
            if (_closed) throw new SctpAssociationException("the SCTP association is closed", _closeError);
            if (_channels.ContainsKey(streamId)) throw new InvalidOperationException($"stream {streamId} already carries a data channel");
            var channel = new RtcDataChannel(this, streamId, label, string.Empty, RemoteMaxMessageSize, DataChannelState.Open);
            _channels[streamId] = channel;
            return channel;
        }
    }

    private ushort AllocateStreamId()
    {
        // Ids must stay below the streams both sides negotiated (libdatachannel offers 1024).
        int limit = _peer.InboundStreams == 0 ? StreamCount : Math.Min((int)StreamCount, (int)_peer.InboundStreams);
        for (int attempt = 0; attempt < 32768; attempt++)
        {
            if (_nextStreamId >= limit) _nextStreamId = _options.IsDtlsClient ? (ushort)0 : (ushort)1;
            ushort candidate = _nextStreamId;
            _nextStreamId = (ushort)(_nextStreamId + 2);
            if (!_channels.ContainsKey(candidate)) return candidate;
        }
        throw new InvalidOperationException("no free SCTP stream for another data channel");
    }

    private void OnAssociationEstablished()
    {
        foreach (var channel in _opensAwaitingEstablishment)
        {
            if (channel.State == DataChannelState.Connecting) SendDcepOpen(channel);
        }
        _opensAwaitingEstablishment.Clear();
    }

    private void SendDcepOpen(RtcDataChannel channel)
    {
        var open = Dcep.CreateOpen(channel.Label, channel.Protocol, out int length);
        EnqueueMessage(new OutboundMessage { StreamId = channel.StreamId, Ppid = Ppid.Dcep, Buffer = open, Length = length });
    }

    private void SendDcepAck(ushort streamId)
    {
        var ack = ArrayPool<byte>.Shared.Rent(1);
        ack[0] = Dcep.MessageAck;
        EnqueueMessage(new OutboundMessage { StreamId = streamId, Ppid = Ppid.Dcep, Buffer = ack, Length = 1 });
    }

    /// <summary>A complete inbound message (under the lock); the pooled buffer is ours to return or pass on.</summary>
    private void DeliverMessage(ushort streamId, uint ppid, byte[] buffer, int length)
    {
        _channels.TryGetValue(streamId, out var channel);
        if (ppid == Ppid.Dcep)
        {
            HandleDcep(streamId, channel, buffer.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(buffer);
            return;
        }
        if (channel is null || channel.State == DataChannelState.Closed || channel.IncomingResetDone)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return;
        }
        // RFC 8832 §6: user data before DATA_CHANNEL_ACK implies the peer accepted the channel.
        if (channel.State == DataChannelState.Connecting) channel.MarkOpen();
        _pendingEvents.Add(new PendingEvent(PendingEventKind.Message, channel, null, buffer, length, ppid));
    }

    private void HandleDcep(ushort streamId, RtcDataChannel? channel, ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty) return;
        if (message[0] == Dcep.MessageAck)
        {
            if (channel is { State: DataChannelState.Connecting }) channel.MarkOpen();
            return;
        }
        if (!Dcep.TryParseOpen(message, out _, out string label, out string protocol)) return;
        if (channel is not null)
        {
            // A retransmitted or colliding OPEN for a live stream: acknowledge again, keep the channel.
            if (channel.State != DataChannelState.Closed) SendDcepAck(streamId);
            return;
        }
        // Other channel types (unordered, partially reliable) are served as ordered reliable; that only
        // strengthens their guarantees.
        var opened = new RtcDataChannel(this, streamId, label, protocol, RemoteMaxMessageSize, DataChannelState.Open);
        _channels[streamId] = opened;
        SendDcepAck(streamId);
        _pendingEvents.Add(new PendingEvent(PendingEventKind.RemoteChannelOpened, opened));
    }

    internal void SendOnChannel(RtcDataChannel channel, uint ppid, byte[] buffer, int length)
    {
        lock (_gate)
        {
            if (_closed) throw new InvalidOperationException("the SCTP association is closed", _closeError);
            if (channel.State != DataChannelState.Open) throw new InvalidOperationException($"the data channel is {channel.State}");
            // RFC 9260 §9.2: once a shutdown has begun no new user data is accepted.
            if (_state != SctpAssociationState.Established) throw new InvalidOperationException($"the SCTP association is shutting down ({_state})");
            channel.AddBuffered(length);
            EnqueueMessage(new OutboundMessage { StreamId = channel.StreamId, Ppid = ppid, Buffer = buffer, Length = length, Owner = channel });
        }
        RaisePendingEvents();
    }

    internal Task WaitForBufferedAmountAsync(RtcDataChannel channel, long mark)
    {
        lock (_gate) return channel.AddDrainWaiter(mark);
    }

    internal void CloseChannel(RtcDataChannel channel)
    {
        lock (_gate)
        {
            if (_closed || channel.State == DataChannelState.Closed || channel.OutgoingResetRequested) return;
            channel.SetState(DataChannelState.Closing);
            channel.OutgoingResetRequested = true;
            if (_state == SctpAssociationState.Established) RequestOutgoingReset(channel.StreamId);
            else FinishChannel(channel, null);
        }
        RaisePendingEvents();
    }

    /// <summary>Drops a channel locally without the reset handshake (cancelled open, unconfirmed close).</summary>
    internal void ForgetChannel(RtcDataChannel channel, Exception? error)
    {
        lock (_gate) FinishChannel(channel, error);
        RaisePendingEvents();
    }

    private void OnIncomingStreamReset(ushort streamId)
    {
        if (!_channels.TryGetValue(streamId, out var channel)) return;
        channel.IncomingResetDone = true;
        if (!channel.OutgoingResetRequested)
        {
            channel.SetState(DataChannelState.Closing);
            channel.OutgoingResetRequested = true;
            RequestOutgoingReset(streamId);
        }
        if (channel.OutgoingResetDone) FinishChannel(channel, null);
    }

    private void OnOutgoingStreamReset(ushort streamId)
    {
        if (!_channels.TryGetValue(streamId, out var channel)) return;
        channel.OutgoingResetDone = true;
        if (channel.IncomingResetDone || !_peer.SupportsReconfig) FinishChannel(channel, null);
    }

    private void FinishChannel(RtcDataChannel channel, Exception? error)
    {
        if (_channels.TryGetValue(channel.StreamId, out var current) && ReferenceEquals(current, channel)) _channels.Remove(channel.StreamId);
        _opensAwaitingEstablishment.Remove(channel);
        if (channel.MarkClosed(error)) _pendingEvents.Add(new PendingEvent(PendingEventKind.ChannelClosed, channel, error));
    }

    private void CloseAllChannels(Exception? error)
    {
        foreach (var channel in _channels.Values)
        {
            if (channel.MarkClosed(error)) _pendingEvents.Add(new PendingEvent(PendingEventKind.ChannelClosed, channel, error));
        }
        _channels.Clear();
        _opensAwaitingEstablishment.Clear();
    }
}
