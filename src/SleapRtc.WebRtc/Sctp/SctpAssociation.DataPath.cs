using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

// DATA, SACK and the transmit loop: bundling, burst limit, T3-rtx and delayed acknowledgement.
public sealed partial class SctpAssociation
{
    private bool CanSendData => _state is SctpAssociationState.Established or SctpAssociationState.ShutdownPending or SctpAssociationState.ShutdownReceived;

    /// <summary>Returns true when the chunk was DATA we accounted for (it needs a SACK).</summary>
    private bool HandleData(byte flags, ReadOnlySpan<byte> value)
    {
        if (_receiver is null || _state is SctpAssociationState.ShutdownAckSent) return false;
        if (value.Length < 13)
        {
            // No user data (RFC 9260 §6.2) or a truncated header: a protocol violation we survive by ignoring.
            _packetsDiscarded++;
            return false;
        }
        uint tsn = BinaryPrimitives.ReadUInt32BigEndian(value);
        ushort streamId = BinaryPrimitives.ReadUInt16BigEndian(value[4..]);
        uint ppid = BinaryPrimitives.ReadUInt32BigEndian(value[8..]);
        _lastReceiveTicks = Now;
        // RFC 9260 §6.7: a chunk that fills (part of) a gap is acknowledged at once, so the sender's
        // fast recovery sees the hole close without waiting for the delayed-ack timer.
        if (_receiver.HasGaps) _sackImmediately = true;
        var outcome = _receiver.OnData(tsn, flags, streamId, ppid, value[12..], _channels);
        switch (outcome)
        {
            case DataChunkOutcome.Duplicate:
                _duplicateTsns++;
                _sackImmediately = true;
                break;
            case DataChunkOutcome.OutOfOrder:
            case DataChunkOutcome.Dropped:
                _sackImmediately = true;
                break;
            case DataChunkOutcome.Violation:
                Fail(new SctpAssociationException("SCTP protocol violation: " + _receiver.ViolationReason), sendAbort: true);
                return false;
        }
        if ((flags & DataFlags.Immediate) != 0) _sackImmediately = true;
        return true;
    }

    private void HandleSack(ReadOnlySpan<byte> value)
    {
        if (_sender is null || value.Length < 12) return;
        uint cumulativeTsn = BinaryPrimitives.ReadUInt32BigEndian(value);
        uint window = BinaryPrimitives.ReadUInt32BigEndian(value[4..]);
        int gapCount = BinaryPrimitives.ReadUInt16BigEndian(value[8..]);
        int duplicateCount = BinaryPrimitives.ReadUInt16BigEndian(value[10..]);
        if (12 + 4 * gapCount + 4 * duplicateCount > value.Length) return;
        _sacksReceived++;
        long now = Now;
        _lastReceiveTicks = now;
        var outcome = _sender.OnSack(cumulativeTsn, window, value.Slice(12, 4 * gapCount), gapCount, now);
        if (!outcome.Accepted) return;
        if (outcome.BytesAcked > 0) _errorCount = 0;
        if (outcome.FastRetransmitStarted) _fastRetransmitPending = true;
        if (!_sender.HasOutstanding) _t3Deadline = long.MaxValue;
        else if (outcome.CumulativeAdvanced)
        {
            _t3Deadline = now + MsToTicks(_sender.RtoMs);
            ArmTimer();
        }
        int ackedPackets = (int)(outcome.BytesAcked / Math.Max(1, _writer.MaxPacketSize - 28));
        _sendBudget += ackedPackets + _options.MaxBurst;
        if (outcome.CumulativeAdvanced) OnCumulativeAckAdvanced();
    }

    /// <summary>Sends up to <paramref name="packetBudget"/> packets: a pending SACK first, then retransmissions and new DATA.</summary>
    private void Transmit(int packetBudget, bool forceSack)
    {
        if (_closed) return;
        long now = Now;
        bool dataAllowed = CanSendData && _sender is not null;
        // The burst's packets may leave the host in one system call (Linux UDP GSO below DTLS and ICE): the batch
        // only groups what this call decides to send now, and ends with the call.
        var batching = _transport as IDatagramBatching;
        batching?.BeginBatch();
        try
        {
            while (packetBudget > 0)
            {
                BeginPacket();
                if (_sackPending && (forceSack || (dataAllowed && _sender!.HasSendableData))) WriteSack();
                int dataChunks = dataAllowed ? _sender!.FillPacket(_writer, now, _fastRetransmitPending) : 0;
                _fastRetransmitPending = false;
                if (_writer.ChunkCount == 0) break;
                if (dataChunks > 0)
                {
                    // Ask for an immediate SACK (RFC 7053) when the ack clock would otherwise stall on the peer's
                    // delayed-ack timer: nothing (or only a held partial packet) follows, or the window is so small
                    // that this may be the only packet the peer sees before our T3 fires.
                    if (!_sender!.HasSendableData || _sender.HoldsPartialPacket || _sender.AckClockIsThin) _writer.SetLastChunkFlag(DataFlags.Immediate);
                    // RFC 9260 §7.2.4 step 4: resending the first outstanding chunk gives it a full RTO again, so a
                    // fast retransmission is not overtaken by a T3 armed long before it (which would collapse cwnd).
                    if (_t3Deadline == long.MaxValue || _sender.RetransmittedFirstOutstanding)
                    {
                        _t3Deadline = now + MsToTicks(_sender.RtoMs);
                        ArmTimer();
                    }
                }
                SendPacket();
                packetBudget--;
                if (dataChunks == 0 || _closed) break;
            }
        }
        finally
        {
            batching?.EndBatch();
        }
    }

    private void WriteSack()
    {
        int valueSize = Math.Min(_receiver!.SackValueSizeHint, (_writer.Remaining - 4) & ~3);
        if (valueSize < 12) return;
        var value = _writer.AddChunk(ChunkType.Sack, 0, valueSize);
        _receiver.WriteSack(value, out int written);
        _writer.TrimLastChunk(written);
        _sackPending = false;
        _sackImmediately = false;
        _dataPacketsSinceSack = 0;
        _sackDeadline = long.MaxValue;
        _sacksSent++;
    }

    /// <summary>Queues a message and sends what the windows allow. Caller holds the lock.</summary>
    internal void EnqueueMessage(OutboundMessage message)
    {
        _sender!.Enqueue(message);
        Transmit(_options.MaxBurst, forceSack: false);
    }

    private void OnT3Expired(long now)
    {
        _t3Deadline = long.MaxValue;
        if (_sender is null || !_sender.HasOutstanding) return;
        _t3Expirations++;
        if (++_errorCount > _options.MaxRetransmissions)
        {
            Fail(new SctpAssociationException("the peer stopped acknowledging data (retransmission limit reached)"), sendAbort: true);
            return;
        }
        _sender.OnRetransmissionTimeout();
        Transmit(1, forceSack: false);
        _t3Deadline = now + MsToTicks(_sender.RtoMs);
    }
}
