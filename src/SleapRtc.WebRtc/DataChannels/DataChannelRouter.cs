using System.Buffers;
using SleapRtc.WebRtc.Sctp;

namespace SleapRtc.WebRtc.DataChannels;

/// <summary>
/// The data-channel layer above one SCTP association: which stream carries which channel, stream id
/// allocation by DTLS role (RFC 8832 §6), DCEP open/ack (RFC 8832 §5), delivery of inbound messages by
/// stream and PPID, and the channel side of stream resets (RFC 8831 §6.7). It holds no lock of its own:
/// every call comes from the association under its protocol lock, and it answers through the association
/// (messages to send, events to raise, resets to request).
/// </summary>
internal sealed class DataChannelRouter : ISctpMessageSink
{
    private readonly SctpAssociation _association;
    private readonly Dictionary<ushort, RtcDataChannel> _channels = new();
    private readonly List<RtcDataChannel> _opensAwaitingEstablishment = new();
    private readonly ushort _firstStreamId;
    private readonly int _remoteMaxMessageSize;
    private ushort _nextStreamId;

    /// <param name="isDtlsClient">The DTLS client uses even stream ids, the server odd ones.</param>
    /// <param name="remoteMaxMessageSize">The peer's a=max-message-size; 0 or less means no limit.</param>
    public DataChannelRouter(SctpAssociation association, bool isDtlsClient, int remoteMaxMessageSize)
    {
        _association = association;
        _firstStreamId = isDtlsClient ? (ushort)0 : (ushort)1;
        _nextStreamId = _firstStreamId;
        _remoteMaxMessageSize = remoteMaxMessageSize <= 0 ? int.MaxValue : remoteMaxMessageSize;
    }

    /// <summary>A channel we open with DATA_CHANNEL_OPEN, sent now or once the association is established.</summary>
    public RtcDataChannel OpenLocal(string label, string protocol, int streamLimit, bool established)
    {
        var channel = new RtcDataChannel(_association, AllocateStreamId(streamLimit), label, protocol, _remoteMaxMessageSize, DataChannelState.Connecting);
        _channels[channel.StreamId] = channel;
        if (established) SendDcepOpen(channel);
        else _opensAwaitingEstablishment.Add(channel);
        return channel;
    }

    /// <summary>A pre-negotiated channel (no DCEP): open at once on the agreed stream.</summary>
    public RtcDataChannel CreateNegotiated(string label, ushort streamId)
    {
        if (_channels.ContainsKey(streamId)) throw new InvalidOperationException($"stream {streamId} already carries a data channel");
        var channel = new RtcDataChannel(_association, streamId, label, string.Empty, _remoteMaxMessageSize, DataChannelState.Open);
        _channels[streamId] = channel;
        return channel;
    }

    private ushort AllocateStreamId(int streamLimit)
    {
        for (int attempt = 0; attempt < 32768; attempt++)
        {
            if (_nextStreamId >= streamLimit) _nextStreamId = _firstStreamId;
            ushort candidate = _nextStreamId;
            _nextStreamId = (ushort)(_nextStreamId + 2);
            if (!_channels.ContainsKey(candidate)) return candidate;
        }
        throw new InvalidOperationException("no free SCTP stream for another data channel");
    }

    /// <summary>Sends the DATA_CHANNEL_OPENs of channels opened before the association was up.</summary>
    public void OnAssociationEstablished()
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
        _association.EnqueueMessage(new OutboundMessage { StreamId = channel.StreamId, Ppid = Ppid.Dcep, Buffer = open, Length = length });
    }

    private void SendDcepAck(ushort streamId)
    {
        var ack = ArrayPool<byte>.Shared.Rent(1);
        ack[0] = Dcep.MessageAck;
        _association.EnqueueMessage(new OutboundMessage { StreamId = streamId, Ppid = Ppid.Dcep, Buffer = ack, Length = 1 });
    }

    /// <summary>A complete inbound message; the pooled buffer is ours to return or pass on with the event.</summary>
    public void OnMessage(ushort streamId, uint ppid, byte[] buffer, int length)
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
        _association.QueueEvent(new PendingEvent(PendingEventKind.Message, channel, null, buffer, length, ppid));
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
        var opened = new RtcDataChannel(_association, streamId, label, protocol, _remoteMaxMessageSize, DataChannelState.Open);
        _channels[streamId] = opened;
        SendDcepAck(streamId);
        _association.QueueEvent(new PendingEvent(PendingEventKind.RemoteChannelOpened, opened));
    }

    /// <summary>Starts closing a channel: a stream reset when established, else a local close.</summary>
    public void Close(RtcDataChannel channel, bool established)
    {
        if (channel.State == DataChannelState.Closed || channel.OutgoingResetRequested) return;
        channel.SetState(DataChannelState.Closing);
        channel.OutgoingResetRequested = true;
        if (established) _association.RequestOutgoingReset(channel.StreamId);
        else Finish(channel, null);
    }

    /// <summary>The peer reset its outgoing side of a stream (it closed the channel): reset ours too.</summary>
    public void OnIncomingStreamReset(ushort streamId)
    {
        if (!_channels.TryGetValue(streamId, out var channel)) return;
        channel.IncomingResetDone = true;
        if (!channel.OutgoingResetRequested)
        {
            channel.SetState(DataChannelState.Closing);
            channel.OutgoingResetRequested = true;
            _association.RequestOutgoingReset(streamId);
        }
        if (channel.OutgoingResetDone) Finish(channel, null);
    }

    /// <summary>Our outgoing reset was performed; without RE-CONFIG at the peer that is the whole close.</summary>
    public void OnOutgoingStreamReset(ushort streamId, bool peerSupportsReconfig)
    {
        if (!_channels.TryGetValue(streamId, out var channel)) return;
        channel.OutgoingResetDone = true;
        if (channel.IncomingResetDone || !peerSupportsReconfig) Finish(channel, null);
    }

    public void Finish(RtcDataChannel channel, Exception? error)
    {
        if (_channels.TryGetValue(channel.StreamId, out var current) && ReferenceEquals(current, channel)) _channels.Remove(channel.StreamId);
        _opensAwaitingEstablishment.Remove(channel);
        if (channel.MarkClosed(error)) _association.QueueEvent(new PendingEvent(PendingEventKind.ChannelClosed, channel, error));
    }

    public void CloseAll(Exception? error)
    {
        foreach (var channel in _channels.Values)
        {
            if (channel.MarkClosed(error)) _association.QueueEvent(new PendingEvent(PendingEventKind.ChannelClosed, channel, error));
        }
        _channels.Clear();
        _opensAwaitingEstablishment.Clear();
    }
}
