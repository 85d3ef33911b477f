using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

// HEARTBEAT, ABORT, graceful SHUTDOWN (RFC 9260 §8.3, §9) and outgoing stream reset (RFC 6525) used to
// close data channels (RFC 8831 §6.7).
public sealed partial class SctpAssociation
{
    private long _lastReceiveTicks;
    private bool _heartbeatOutstanding;
    private long _heartbeatNonce;
    private long _heartbeatSentAt;

    private uint _nextReconfigRequestSeq;
    private uint _peerNextReconfigRequestSeq;
    private readonly List<ushort> _streamsAwaitingReset = new();
    private ushort[]? _resetInFlight;
    private uint _resetInFlightSeq;
    private uint _resetInFlightLastTsn;
    private byte[]? _lastReconfigResponse;
    private DeferredReset? _deferredIncomingReset;

    /// <summary>A peer's reset request that names TSNs we have not received yet (RFC 6525 §5.2.2 deferred processing).</summary>
    private sealed record DeferredReset(uint Seq, uint LastTsn, ushort[] Streams);

    // Our latest Re-configuration Response, repeated inside our own reset requests (RFC 6525 §3.1 allows
    // Response + Outgoing SSN Reset Request in one chunk) until the peer has evidently seen it, or else sent
    // once more on its own after an RTO. A peer that never retransmits its request (aiortc) otherwise waits
    // forever when that one response datagram is lost. Duplicate responses are ignored by every peer.
    private byte[]? _responseToRepeat;
    private byte[]? _responseBundledFromStart;
    private bool _responseRepeatDue;

    private void OnHeartbeatTimer(long now)
    {
        _heartbeatDeadline = long.MaxValue;
        if (_state != SctpAssociationState.Established && _state != SctpAssociationState.ShutdownPending) return;
        if (_heartbeatOutstanding)
        {
            if (++_errorCount > _options.MaxRetransmissions)
            {
                Fail(new SctpAssociationException("the peer stopped answering heartbeats"), sendAbort: true);
                return;
            }
        }
        else
        {
            long idleDeadline = _lastReceiveTicks + MsToTicks(_options.HeartbeatInterval.TotalMilliseconds);
            if (idleDeadline > now || _t3Deadline != long.MaxValue)
            {
                // Traffic flows (or T3 watches it): the peer is evidently there.
                _heartbeatDeadline = Math.Max(idleDeadline, now + MsToTicks(10));
                return;
            }
        }
        _heartbeatNonce = Random.Shared.NextInt64();
        _heartbeatSentAt = now;
        _heartbeatOutstanding = true;
        BeginPacket();
        var value = _writer.AddChunk(ChunkType.Heartbeat, 0, 20);
        BinaryPrimitives.WriteUInt16BigEndian(value, ParameterType.HeartbeatInfo);
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], 20);
        BinaryPrimitives.WriteInt64BigEndian(value[4..], _heartbeatNonce);
        BinaryPrimitives.WriteInt64BigEndian(value[12..], now);
        SendPacket();
        _heartbeatsSent++;
        double rto = _sender?.RtoMs ?? _options.RtoInitial.TotalMilliseconds;
        _heartbeatDeadline = now + MsToTicks(rto);
    }

    private void HandleHeartbeat(ReadOnlySpan<byte> value)
    {
        if (_peerTag == 0 || value.Length < 4 || value.Length > _writer.MaxPacketSize - 16) return;
        BeginPacket();
        _writer.AddChunkWithValue(ChunkType.HeartbeatAck, 0, value);
        SendPacket();
    }

    private void HandleHeartbeatAck(ReadOnlySpan<byte> value)
    {
        if (value.Length < 20 || !_heartbeatOutstanding) return;
        long nonce = BinaryPrimitives.ReadInt64BigEndian(value[4..]);
        if (nonce != _heartbeatNonce) return;
        _heartbeatOutstanding = false;
        _errorCount = 0;
        long now = Now;
        _lastReceiveTicks = now;
        _sender?.AddRttSample((now - _heartbeatSentAt) * 1000.0 / System.Diagnostics.Stopwatch.Frequency);
        _heartbeatDeadline = now + MsToTicks(_options.HeartbeatInterval.TotalMilliseconds);
        ArmTimer();
    }

    private void SendAbortChunk(ushort cause)
    {
        try
        {
            BeginPacket();
            var value = _writer.AddChunk(ChunkType.Abort, 0, 4);
            BinaryPrimitives.WriteUInt16BigEndian(value, cause);
            BinaryPrimitives.WriteUInt16BigEndian(value[2..], 4);
            var packet = _writer.Finish();
            _packetsSent++;
            _transport.Send(packet);
        }
        catch (Exception error) when (error is ObjectDisposedException or InvalidOperationException or IOException)
        {
            // The transport is already gone; the peer will notice by itself.
        }
    }

    /// <summary>ERROR with an "Unrecognized Chunk Type" cause (RFC 9260 §3.3.10.6) carrying the chunk, truncated to fit.</summary>
    private void ReportUnrecognizedChunk(in SctpChunk chunk)
    {
        if (_peerTag == 0) return;
        int copied = Math.Min(chunk.Value.Length, 256);
        BeginPacket();
        var value = _writer.AddChunk(ChunkType.Error, 0, 4 + 4 + copied);
        BinaryPrimitives.WriteUInt16BigEndian(value, ErrorCause.UnrecognizedChunkType);
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], (ushort)(8 + copied));
        value[4] = chunk.Type;
        value[5] = chunk.Flags;
        BinaryPrimitives.WriteUInt16BigEndian(value[6..], (ushort)(4 + copied));
        chunk.Value[..copied].CopyTo(value[8..]);
        SendPacket();
    }

    private void HandleAbort(ReadOnlySpan<byte> value)
    {
        string cause = value.Length >= 2 ? $" (cause {BinaryPrimitives.ReadUInt16BigEndian(value)})" : string.Empty;
        CloseInternal(new SctpAssociationException("the peer aborted the SCTP association" + cause));
    }

    /// <summary>Moves a local or remote shutdown forward once everything we sent is acknowledged.</summary>
    private void TryProgressShutdown()
    {
        if (_sender is null || !_sender.IsDrained) return;
        if (_state == SctpAssociationState.ShutdownPending)
        {
            SetState(SctpAssociationState.ShutdownSent);
            _t2Retransmissions = 0;
            SendShutdown();
        }
        else if (_state == SctpAssociationState.ShutdownReceived)
        {
            SetState(SctpAssociationState.ShutdownAckSent);
            _t2Retransmissions = 0;
            SendShutdownAck();
        }
    }

    private int _t2Retransmissions;

    private void SendShutdown()
    {
        BeginPacket();
        _writer.AddUInt32Chunk(ChunkType.Shutdown, _receiver!.CumulativeTsn);
        SendPacket();
        _t2Deadline = Now + MsToTicks(_sender!.RtoMs);
        ArmTimer();
    }

    private void SendShutdownAck()
    {
        BeginPacket();
        _writer.AddEmptyChunk(ChunkType.ShutdownAck);
        SendPacket();
        _t2Deadline = Now + MsToTicks(_sender!.RtoMs);
        ArmTimer();
    }

    private void OnT2Expired(long now)
    {
        _t2Deadline = long.MaxValue;
        if (++_t2Retransmissions > _options.MaxRetransmissions)
        {
            Fail(new SctpAssociationException("the peer did not complete the SCTP shutdown"), sendAbort: true);
            return;
        }
        if (_state == SctpAssociationState.ShutdownSent) SendShutdown();
        else if (_state == SctpAssociationState.ShutdownAckSent) SendShutdownAck();
    }

    private void HandleShutdown(ReadOnlySpan<byte> value)
    {
        if (_sender is null || value.Length < 4) return;
        // SHUTDOWN carries a cumulative TSN ack, like a SACK without gaps.
        Span<byte> sack = stackalloc byte[12];
        value[..4].CopyTo(sack);
        BinaryPrimitives.WriteUInt32BigEndian(sack[4..], (uint)_options.ReceiveWindow);
        HandleSack(sack);
        switch (_state)
        {
            case SctpAssociationState.Established:
            case SctpAssociationState.ShutdownPending:
                SetState(SctpAssociationState.ShutdownReceived);
                TryProgressShutdown();
                break;
            case SctpAssociationState.ShutdownSent:
                SetState(SctpAssociationState.ShutdownAckSent);
                SendShutdownAck();
                break;
        }
    }

    private void HandleShutdownAck()
    {
        if (_state is not (SctpAssociationState.ShutdownSent or SctpAssociationState.ShutdownAckSent)) return;
        BeginPacket();
        _writer.AddEmptyChunk(ChunkType.ShutdownComplete);
        SendPacket();
        CloseInternal(null);
    }

    private void HandleShutdownComplete()
    {
        if (_state != SctpAssociationState.ShutdownAckSent) return;
        CloseInternal(null);
    }

    /// <summary>Runs after every SACK that advanced the cumulative ack point.</summary>
    private void OnCumulativeAckAdvanced()
    {
        if (_state is SctpAssociationState.ShutdownPending or SctpAssociationState.ShutdownReceived) TryProgressShutdown();
        if (_streamsAwaitingReset.Count > 0 && _resetInFlight is null) TrySendOutgoingReset();
    }

    /// <summary>Asks for an outgoing reset of a stream once its queued messages have TSNs (RFC 6525 §5.1.2).</summary>
    internal void RequestOutgoingReset(ushort streamId)
    {
        if (!_streamsAwaitingReset.Contains(streamId)) _streamsAwaitingReset.Add(streamId);
        TrySendOutgoingReset();
    }

    private void TrySendOutgoingReset()
    {
        if (_resetInFlight is not null || _sender is null || _closed || !CanSendData) return;
        if (!_peer.SupportsReconfig)
        {
            // Without RE-CONFIG the channel can only close locally.
            foreach (ushort stream in _streamsAwaitingReset) _channels.OnOutgoingStreamReset(stream, peerSupportsReconfig: false);
            _streamsAwaitingReset.Clear();
            return;
        }
        int ready = 0;
        Span<ushort> streams = stackalloc ushort[Math.Min(_streamsAwaitingReset.Count, 64)];
        foreach (ushort stream in _streamsAwaitingReset)
        {
            if (ready == streams.Length) break;
            if (!_sender.HasUnassignedDataFor(stream)) streams[ready++] = stream;
        }
        if (ready == 0) return;
        _resetInFlight = streams[..ready].ToArray();
        foreach (ushort stream in _resetInFlight) _streamsAwaitingReset.Remove(stream);
        _resetInFlightSeq = _nextReconfigRequestSeq++;
        _resetInFlightLastTsn = _sender.LastAssignedTsn;
        _responseBundledFromStart = _responseToRepeat;
        SendOutgoingResetRequest();
    }

    private void SendOutgoingResetRequest()
    {
        var streams = _resetInFlight!;
        var response = _responseToRepeat;
        int responseLength = response?.Length ?? 0;
        int parameterLength = 16 + 2 * streams.Length;
        BeginPacket();
        var chunkValue = _writer.AddChunk(ChunkType.ReConfig, 0, responseLength + ((parameterLength + 3) & ~3));
        chunkValue.Clear();
        response?.CopyTo(chunkValue);
        var value = chunkValue[responseLength..];
        BinaryPrimitives.WriteUInt16BigEndian(value, ParameterType.OutgoingSsnResetRequest);
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], (ushort)parameterLength);
        BinaryPrimitives.WriteUInt32BigEndian(value[4..], _resetInFlightSeq);
        BinaryPrimitives.WriteUInt32BigEndian(value[8..], _peerNextReconfigRequestSeq - 1);
        BinaryPrimitives.WriteUInt32BigEndian(value[12..], _resetInFlightLastTsn);
        for (int i = 0; i < streams.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(value[(16 + 2 * i)..], streams[i]);
        SendPacket();
        _reconfigDeadline = Now + MsToTicks(_sender!.RtoMs);
        ArmTimer();
    }

    private void OnReconfigTimer(long now)
    {
        _reconfigDeadline = long.MaxValue;
        if (_resetInFlight is not null)
        {
            SendOutgoingResetRequest();
        }
        else if (_responseRepeatDue && _responseToRepeat is not null)
        {
            _responseRepeatDue = false;
            BeginPacket();
            _writer.AddChunkWithValue(ChunkType.ReConfig, 0, _responseToRepeat);
            SendPacket();
        }
    }

    /// <summary>Sends the latest response once more after an RTO unless a request of ours carries it by then.</summary>
    private void ScheduleResponseRepeat()
    {
        _responseRepeatDue = true;
        _reconfigDeadline = Now + MsToTicks(_sender!.RtoMs);
        ArmTimer();
    }

    private void HandleReconfig(ReadOnlySpan<byte> value)
    {
        if (_receiver is null || _sender is null) return;
        var reader = new SctpParameterReader(value);
        while (reader.TryRead(out ushort type, out var parameter, out _))
        {
            switch (type)
            {
                case ParameterType.OutgoingSsnResetRequest when parameter.Length >= 12:
                    HandleIncomingStreamReset(parameter);
                    break;
                case ParameterType.ReconfigResponse when parameter.Length >= 8:
                    HandleReconfigResponse(parameter);
                    break;
                case ParameterType.IncomingSsnResetRequest when parameter.Length >= 4:
                case ParameterType.SsnTsnResetRequest when parameter.Length >= 4:
                case ParameterType.AddOutgoingStreams when parameter.Length >= 4:
                case ParameterType.AddIncomingStreams when parameter.Length >= 4:
                    uint seq = BinaryPrimitives.ReadUInt32BigEndian(parameter);
                    if (seq == _peerNextReconfigRequestSeq) _peerNextReconfigRequestSeq++;
                    SendReconfigResponse(seq, ReconfigResult.Denied);
                    break;
            }
        }
    }

    /// <summary>The peer reset its outgoing streams (it closed channels): reset our incoming side once all its data arrived.</summary>
    private void HandleIncomingStreamReset(ReadOnlySpan<byte> parameter)
    {
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(parameter);
        uint lastTsn = BinaryPrimitives.ReadUInt32BigEndian(parameter[8..]);
        if (seq == _peerNextReconfigRequestSeq - 1 && _lastReconfigResponse is not null)
        {
            BeginPacket();
            _writer.AddChunkWithValue(ChunkType.ReConfig, 0, _lastReconfigResponse);
            SendPacket();
            return;
        }
        if (seq != _peerNextReconfigRequestSeq)
        {
            SendReconfigResponse(seq, ReconfigResult.ErrorBadSequenceNumber);
            return;
        }
        var streamBytes = parameter[12..];
        var streams = new ushort[streamBytes.Length / 2];
        for (int i = 0; i < streams.Length; i++) streams[i] = BinaryPrimitives.ReadUInt16BigEndian(streamBytes[(2 * i)..]);
        if (Serial.Gt(lastTsn, _receiver!.CumulativeTsn))
        {
            // Deferred reset (RFC 6525 §5.2.2): performed once the data before it has arrived. Peers that send the
            // request ahead of their queued DATA (aiortc) take "in progress" as final, so we must not wait for a retry.
            _deferredIncomingReset = new DeferredReset(seq, lastTsn, streams);
            SendReconfigResponse(seq, ReconfigResult.InProgress);
            return;
        }
        PerformIncomingReset(seq, streams);
    }

    private void TryCompleteDeferredIncomingReset()
    {
        var deferred = _deferredIncomingReset!;
        if (_receiver is null || Serial.Gt(deferred.LastTsn, _receiver.CumulativeTsn)) return;
        PerformIncomingReset(deferred.Seq, deferred.Streams);
    }

    private void PerformIncomingReset(uint seq, ushort[] streams)
    {
        _deferredIncomingReset = null;
        _peerNextReconfigRequestSeq++;
        SendReconfigResponse(seq, ReconfigResult.SuccessPerformed);
        foreach (ushort stream in streams) _channels.OnIncomingStreamReset(stream);
    }

    private void SendReconfigResponse(uint seq, uint result)
    {
        var response = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(response, ParameterType.ReconfigResponse);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(2), 12);
        BinaryPrimitives.WriteUInt32BigEndian(response.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(response.AsSpan(8), result);
        if (result == ReconfigResult.SuccessPerformed) _lastReconfigResponse = response;
        _responseToRepeat = response;
        BeginPacket();
        _writer.AddChunkWithValue(ChunkType.ReConfig, 0, response);
        SendPacket();
        if (_resetInFlight is null) ScheduleResponseRepeat();
    }

    private void HandleReconfigResponse(ReadOnlySpan<byte> parameter)
    {
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(parameter);
        uint result = BinaryPrimitives.ReadUInt32BigEndian(parameter[4..]);
        if (_resetInFlight is null || seq != _resetInFlightSeq) return;
        if (result == ReconfigResult.InProgress)
        {
            _reconfigDeadline = Now + MsToTicks(_sender!.RtoMs);
            ArmTimer();
            return;
        }
        var streams = _resetInFlight;
        _resetInFlight = null;
        _reconfigDeadline = long.MaxValue;
        // Every transmission of the request just answered carried that response, so the peer has it.
        if (_responseBundledFromStart is not null && ReferenceEquals(_responseBundledFromStart, _responseToRepeat)) _responseToRepeat = null;
        else if (_responseToRepeat is not null) ScheduleResponseRepeat();
        _responseBundledFromStart = null;
        foreach (ushort stream in streams)
        {
            _sender!.ResetStreamSequence(stream);
            _channels.OnOutgoingStreamReset(stream, _peer.SupportsReconfig);
        }
        if (_streamsAwaitingReset.Count > 0) TrySendOutgoingReset();
    }
}
