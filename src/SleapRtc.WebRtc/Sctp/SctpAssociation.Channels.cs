using SleapRtc.WebRtc.DataChannels;

namespace SleapRtc.WebRtc.Sctp;

// The association's data-channel API: takes the protocol lock and hands over to the DataChannelRouter,
// which keeps the channels, DCEP and stream ids.
public sealed partial class SctpAssociation
{
    private readonly DataChannelRouter _channels;

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
            // Ids must stay below the streams both sides negotiated (libdatachannel offers 1024).
            int streamLimit = _peer.InboundStreams == 0 ? StreamCount : Math.Min((int)StreamCount, (int)_peer.InboundStreams);
            channel = _channels.OpenLocal(label, protocol, streamLimit, established: _state == SctpAssociationState.Established);
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
            return _channels.CreateNegotiated(label, streamId);
        }
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
            if (!_closed) _channels.Close(channel, established: _state == SctpAssociationState.Established);
        }
        RaisePendingEvents();
    }

    /// <summary>Drops a channel locally without the reset handshake (cancelled open, unconfirmed close).</summary>
    internal void ForgetChannel(RtcDataChannel channel, Exception? error)
    {
        lock (_gate) _channels.Finish(channel, error);
        RaisePendingEvents();
    }
}
