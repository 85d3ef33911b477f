using System.Buffers;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>Told how many bytes of its messages the peer has acknowledged (a data channel's BufferedAmount).</summary>
internal interface ISctpSendOwner
{
    void OnBytesAcknowledged(int count);
}

/// <summary>A user message waiting to be fragmented; its pooled buffer returns once the last fragment is acknowledged.</summary>
internal sealed class OutboundMessage
{
    public ushort StreamId;
    public ushort Ssn;
    public uint Ppid;
    public bool Unordered;
    public byte[] Buffer = Array.Empty<byte>();
    public int Length;
    public int NextOffset;
    public ISctpSendOwner? Owner;
}

internal readonly record struct SackOutcome(bool Accepted, bool CumulativeAdvanced, long BytesAcked, bool FastRetransmitStarted);

/// <summary>
/// Outbound DATA: fragmentation, TSN assignment, retransmission bookkeeping, RTO estimation and
/// congestion control (RFC 9260 §6.3, §7). Sent chunks live in a ring indexed by TSN so SACK handling
/// needs no lookups or allocations. Not thread-safe: used under the association lock.
/// </summary>
internal sealed class SctpSender
{
    private const byte SlotEmpty = 0;
    private const byte SlotInFlight = 1;
    private const byte SlotNeedsRetransmit = 2;
    private const byte SlotAcked = 3;
    private const int MissIndicationsForFastRetransmit = 3;

    private struct SentChunk
    {
        public OutboundMessage? Message;
        public int Offset;
        public int Length;
        public byte Flags;
        public byte State;
        public byte Misses;
        public bool Retransmitted;
        /// <summary>Transmission order of the latest send; miss indications compare it, not the TSN.</summary>
        public uint SentSeq;
    }

    private readonly Queue<OutboundMessage> _queue = new();
    private readonly Dictionary<ushort, ushort> _nextSsn = new();
    private readonly int _mtu;
    private readonly double _rtoMinMs;
    private readonly double _rtoMaxMs;
    private SentChunk[] _ring = new SentChunk[1024];
    private uint _nextTsn;
    private uint _cumAck;
    private long _flight;
    private long _partialBytesAcked;
    private long _peerRwnd;
    private bool _inFastRecovery;
    private uint _recoverTsn;
    private int _toRetransmit;
    private uint _sendSeq;
    private bool _hasRtt;
    private double _minRttMs = double.MaxValue;
    private readonly double[] _recentRttsMs = new double[RecentRttSamples];
    private int _recentRttNext, _recentRttFilled;
    private bool _timing;
    private uint _timedTsn;
    private long _timedAt;

    public SctpSender(uint initialTsn, int mtu, int initialCwndPackets, uint peerWindow, SctpAssociationOptions options)
    {
        _nextTsn = initialTsn;
        _cumAck = initialTsn - 1;
        _mtu = mtu;
        Cwnd = (long)initialCwndPackets * mtu;
        Ssthresh = peerWindow;
        _peerRwnd = peerWindow;
        _rtoMinMs = options.RtoMin.TotalMilliseconds;
        _rtoMaxMs = options.RtoMax.TotalMilliseconds;
        RtoMs = Math.Clamp(options.RtoInitial.TotalMilliseconds, _rtoMinMs, _rtoMaxMs);
    }

    public long Cwnd { get; private set; }
    public long Ssthresh { get; private set; }
    public double SmoothedRttMs { get; private set; }
    public double RttVarianceMs { get; private set; }
    public double RtoMs { get; private set; }
    /// <summary>Smallest RTT sample seen: the path's propagation delay without queues.</summary>
    public double MinRttMs => _hasRtt ? _minRttMs : 0;
    /// <summary>
    /// True while the lowest of the last <see cref="RecentRttSamples"/> RTT samples is within
    /// <see cref="QueueingDelayTolerance"/> of the minimum ever seen: no standing queue on the path, so a loss is most
    /// likely random rather than congestion (see <see cref="WindowAfterLoss"/>). The lowest recent sample, not the
    /// smoothed RTT, because a busy CPU delays single packets by milliseconds while a bottleneck queue delays them all.
    /// </summary>
    public bool PathUncongested
    {
        get
        {
            if (!_hasRtt) return false;
            double recentMin = double.MaxValue;
            for (int i = 0; i < _recentRttFilled; i++) recentMin = Math.Min(recentMin, _recentRttsMs[i]);
            return recentMin - _minRttMs <= QueueingDelayTolerance;
        }
    }

    /// <summary>About eight round trips: one RTT sample is taken per round trip.</summary>
    private const int RecentRttSamples = 8;

    /// <summary>Queueing delay still counted as "no queue": 2 ms (timer and scheduling noise) or 1/8 of the minimum RTT.</summary>
    private double QueueingDelayTolerance => Math.Max(2.0, _minRttMs / 8);

    // TCP-Illinois' bounds (Liu, Başar, Srikant 2006; Linux tcp_illinois): on an uncongested path grow by 10 packets
    // per RTT and give back 1/8 on a loss; once a queue builds, RFC 9260's 1 packet and 1/2.
    private const int UncongestedIncreasePackets = 10;
    public long FlightSize => _flight;
    public long PeerReceiveWindow => _peerRwnd;
    public long QueuedBytes { get; private set; }
    public long ChunksSent { get; private set; }
    public long ChunksRetransmitted { get; private set; }
    public long FastRetransmits { get; private set; }
    public uint NextTsn => _nextTsn;
    public uint LastAssignedTsn => _nextTsn - 1;
    /// <summary>Some sent DATA is not yet acknowledged cumulatively.</summary>
    public bool HasOutstanding => _cumAck != _nextTsn - 1;
    public bool HasRetransmissionsPending => _toRetransmit > 0;
    /// <summary>The last <see cref="FillPacket"/> resent the lowest outstanding TSN (RFC 9260 §7.2.4 step 4 restarts T3 then).</summary>
    public bool RetransmittedFirstOutstanding { get; private set; }
    public bool IsDrained => !HasOutstanding && _queue.Count == 0;
    public bool HasSendableData => _toRetransmit > 0 || _queue.Count > 0;

    public void Enqueue(OutboundMessage message)
    {
        if (message.Length <= 0) throw new ArgumentException("SCTP cannot carry an empty user message", nameof(message));
        if (!message.Unordered)
        {
            _nextSsn.TryGetValue(message.StreamId, out ushort ssn);
            message.Ssn = ssn;
            _nextSsn[message.StreamId] = (ushort)(ssn + 1);
        }
        _queue.Enqueue(message);
        QueuedBytes += message.Length;
    }

    /// <summary>True while a message of this stream still waits for TSNs (an outgoing reset must wait).</summary>
    public bool HasUnassignedDataFor(ushort streamId)
    {
        foreach (var message in _queue)
        {
            if (message.StreamId == streamId) return true;
        }
        return false;
    }

    /// <summary>After an outgoing stream reset the stream's SSNs start again at 0 (RFC 6525 §5.2.2).</summary>
    public void ResetStreamSequence(ushort streamId) => _nextSsn.Remove(streamId);

    /// <summary>Bytes a chunk occupies on the wire; flight and cwnd count these so tiny messages cannot burst thousands of packets.</summary>
    private static int Charge(int payloadLength) => (SctpPacketWriter.DataChunkHeaderSize + payloadLength + 3) & ~3;

    /// <summary>
    /// Nagle (RFC 9260 §6.1 allows it): while data is in flight, a queue that cannot fill a packet waits for
    /// the next SACK so small messages bundle instead of each taking a packet.
    /// </summary>
    public bool HoldsPartialPacket => _toRetransmit == 0 && _queue.Count > 0 && _flight > 0 && QueuedBytes < _mtu - 64;

    /// <summary>
    /// True while a T3 collapse keeps cwnd below 4 packets: the peer's every-second-packet SACK rule may then
    /// not fire within our RTO, so each DATA packet asks for an immediate SACK (RFC 7053) to keep the ack clock.
    /// </summary>
    public bool AckClockIsThin => Cwnd < 4L * _mtu;

    private ref SentChunk Slot(uint tsn) => ref _ring[tsn & (uint)(_ring.Length - 1)];

    private void EnsureRingCapacity()
    {
        uint used = _nextTsn - _cumAck;
        if (used < (uint)_ring.Length) return;
        var grown = new SentChunk[_ring.Length * 2];
        for (uint tsn = _cumAck + 1; tsn != _nextTsn; tsn++)
        {
            grown[tsn & (uint)(grown.Length - 1)] = Slot(tsn);
        }
        _ring = grown;
    }

    /// <summary>
    /// Adds retransmissions, then new fragments, to the packet while cwnd and the peer's window allow.
    /// Returns the number of DATA chunks added.
    /// </summary>
    public int FillPacket(SctpPacketWriter writer, long now, bool ignoreCwndForRetransmissions)
    {
        int added = 0;
        RetransmittedFirstOutstanding = false;
        if (_toRetransmit > 0)
        {
            for (uint tsn = _cumAck + 1; _toRetransmit > 0 && tsn != _nextTsn; tsn++)
            {
                ref var chunk = ref Slot(tsn);
                if (chunk.State != SlotNeedsRetransmit) continue;
                if (SctpPacketWriter.PaddedChunkSize(12 + chunk.Length) > writer.Remaining) return added;
                if (!ignoreCwndForRetransmissions && _flight > 0 && _flight + Charge(chunk.Length) > Cwnd) return added;
                var message = chunk.Message!;
                writer.AddData(tsn, message.StreamId, message.Ssn, message.Ppid, chunk.Flags, message.Buffer.AsSpan(chunk.Offset, chunk.Length));
                chunk.State = SlotInFlight;
                chunk.SentSeq = ++_sendSeq;
                chunk.Retransmitted = true;
                if (tsn == _cumAck + 1) RetransmittedFirstOutstanding = true;
                chunk.Misses = 0;
                _flight += Charge(chunk.Length);
                _toRetransmit--;
                if (_timing && _timedTsn == tsn) _timing = false;
                ChunksSent++;
                ChunksRetransmitted++;
                added++;
            }
        }
        while (_queue.Count > 0)
        {
            if (HoldsPartialPacket && writer.ChunkCount == 0) break;
            var message = _queue.Peek();
            int remaining = message.Length - message.NextOffset;
            int room = (writer.Remaining - SctpPacketWriter.DataChunkHeaderSize) & ~3;
            if (room <= 0) break;
            // Do not split a message into a sliver just to top up a packet that already carries data.
            if (remaining > room && room < 512 && writer.ChunkCount > 0) break;
            int length = Math.Min(remaining, room);
            if (_flight > 0 && (_flight + Charge(length) > Cwnd || length > _peerRwnd)) break;
            EnsureRingCapacity();
            byte flags = 0;
            if (message.NextOffset == 0) flags |= DataFlags.Begin;
            if (length == remaining) flags |= DataFlags.End;
            if (message.Unordered) flags |= DataFlags.Unordered;
            uint tsn = _nextTsn++;
            ref var chunk = ref Slot(tsn);
            chunk.Message = message;
            chunk.Offset = message.NextOffset;
            chunk.Length = length;
            chunk.Flags = flags;
            chunk.State = SlotInFlight;
            chunk.SentSeq = ++_sendSeq;
            chunk.Misses = 0;
            chunk.Retransmitted = false;
            writer.AddData(tsn, message.StreamId, message.Ssn, message.Ppid, flags, message.Buffer.AsSpan(message.NextOffset, length));
            message.NextOffset += length;
            _flight += Charge(length);
            _peerRwnd -= Charge(length);
            QueuedBytes -= length;
            if (message.NextOffset == message.Length) _queue.Dequeue();
            if (!_timing)
            {
                _timing = true;
                _timedTsn = tsn;
                _timedAt = now;
            }
            ChunksSent++;
            added++;
        }
        return added;
    }

    /// <summary>Applies a SACK (RFC 9260 §6.2.1, §7.2); <paramref name="gapBlocks"/> holds the raw (start,end) pairs.</summary>
    public SackOutcome OnSack(uint cumulativeTsn, uint advertisedWindow, ReadOnlySpan<byte> gapBlocks, int gapBlockCount, long now)
    {
        if (Serial.Lt(cumulativeTsn, _cumAck) || Serial.Ge(cumulativeTsn, _nextTsn)) return default;
        long flightBefore = _flight;
        bool cumulativeAdvanced = cumulativeTsn != _cumAck;
        var progress = new AckProgress { HighestNewlyAcked = _cumAck };
        AckUpToCumulativeTsn(cumulativeTsn, now, ref progress);
        bool fastRetransmitStarted = false;
        if (gapBlockCount > 0)
        {
            AckGapBlocks(gapBlocks, gapBlockCount, now, ref progress);
            if (progress.AnyNewlyAcked) fastRetransmitStarted = CountMissIndications(progress);
        }
        if (_inFastRecovery && Serial.Ge(_cumAck, _recoverTsn)) _inFastRecovery = false;
        if (cumulativeAdvanced && !_inFastRecovery && progress.BytesAcked > 0) GrowCongestionWindow(progress.BytesAcked, flightBefore);
        if (_flight == 0) _partialBytesAcked = 0;
        _peerRwnd = Math.Max(0, (long)advertisedWindow - _flight);
        return new SackOutcome(true, cumulativeAdvanced, progress.BytesAcked, fastRetransmitStarted);
    }

    /// <summary>What one SACK newly acknowledged, gathered across its cumulative ack and its gap blocks.</summary>
    private struct AckProgress
    {
        public long BytesAcked;
        public uint HighestNewlyAcked;
        /// <summary>Transmission order (<see cref="SentChunk.SentSeq"/>) of the latest-sent chunk newly acked.</summary>
        public uint LatestAckedSend;
        public bool AnyNewlyAcked;
    }

    /// <summary>Frees every slot up to the cumulative TSN ack, returning message buffers whose last fragment is acked.</summary>
    private void AckUpToCumulativeTsn(uint cumulativeTsn, long now, ref AckProgress progress)
    {
        for (uint tsn = _cumAck + 1; tsn != cumulativeTsn + 1; tsn++)
        {
            ref var chunk = ref Slot(tsn);
            if (chunk.State != SlotAcked) RecordNewlyAcked(tsn, ref chunk, now, ref progress);
            if (chunk.State == SlotInFlight) _flight -= Charge(chunk.Length);
            else if (chunk.State == SlotNeedsRetransmit) _toRetransmit--;
            if ((chunk.Flags & DataFlags.End) != 0)
            {
                var message = chunk.Message!;
                if (message.Buffer.Length > 0) ArrayPool<byte>.Shared.Return(message.Buffer);
                message.Buffer = Array.Empty<byte>();
            }
            chunk = default;
        }
        _cumAck = cumulativeTsn;
    }

    /// <summary>Marks the chunks inside the SACK's gap blocks acknowledged (they stay in the ring until the cumulative ack passes them).</summary>
    private void AckGapBlocks(ReadOnlySpan<byte> gapBlocks, int gapBlockCount, long now, ref AckProgress progress)
    {
        for (int i = 0; i < gapBlockCount; i++)
        {
            int start = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(gapBlocks[(i * 4)..]);
            int end = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(gapBlocks[(i * 4 + 2)..]);
            if (start == 0 || end < start) continue;
            uint first = _cumAck + (uint)start;
            uint last = _cumAck + (uint)end;
            if (Serial.Ge(last, _nextTsn)) continue;
            for (uint tsn = first; tsn != last + 1; tsn++)
            {
                ref var chunk = ref Slot(tsn);
                if (chunk.State == SlotAcked || chunk.State == SlotEmpty) continue;
                if (chunk.State == SlotInFlight) _flight -= Charge(chunk.Length);
                else _toRetransmit--;
                chunk.State = SlotAcked;
                RecordNewlyAcked(tsn, ref chunk, now, ref progress);
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void RecordNewlyAcked(uint tsn, ref SentChunk chunk, long now, ref AckProgress progress)
    {
        progress.BytesAcked += Charge(chunk.Length);
        chunk.Message!.Owner?.OnBytesAcknowledged(chunk.Length);
        MeasureRtt(tsn, chunk.Retransmitted, now);
        if (!progress.AnyNewlyAcked || Serial.Gt(tsn, progress.HighestNewlyAcked)) progress.HighestNewlyAcked = tsn;
        if (!progress.AnyNewlyAcked || Serial.Gt(chunk.SentSeq, progress.LatestAckedSend)) progress.LatestAckedSend = chunk.SentSeq;
        progress.AnyNewlyAcked = true;
    }

    /// <summary>
    /// HTNA (RFC 9260 §7.2.4) in transmission order: a chunk gets a miss indication only when something
    /// sent after it was newly acknowledged. For first transmissions that is exactly "TSN below the highest
    /// newly acked TSN"; a retransmission is not blamed for acks of packets that left before it, and a lost
    /// retransmission can be fast-retransmitted again instead of waiting for T3. True when a chunk reached
    /// the miss threshold and was marked for fast retransmission.
    /// </summary>
    private bool CountMissIndications(in AckProgress progress)
    {
        bool fastRetransmitStarted = false;
        for (uint tsn = _cumAck + 1; Serial.Lt(tsn, progress.HighestNewlyAcked); tsn++)
        {
            ref var chunk = ref Slot(tsn);
            if (chunk.State != SlotInFlight || !Serial.Lt(chunk.SentSeq, progress.LatestAckedSend)) continue;
            if (++chunk.Misses < MissIndicationsForFastRetransmit) continue;
            chunk.State = SlotNeedsRetransmit;
            chunk.Misses = 0;
            _flight -= Charge(chunk.Length);
            _toRetransmit++;
            if (_timing && _timedTsn == tsn) _timing = false;
            // RFC 9260 §7.2.4 step 3: every fast retransmission may send one packet regardless of cwnd,
            // also inside a recovery window; only the cwnd cut (step 2) happens once per window.
            fastRetransmitStarted = true;
            FastRetransmits++;
            if (!_inFastRecovery) EnterFastRecovery();
        }
        return fastRetransmitStarted;
    }

    /// <summary>RFC 9260 §7.2.4 step 2: reduce cwnd once per recovery window, which ends when the cumulative ack passes what was sent by now.</summary>
    private void EnterFastRecovery()
    {
        _inFastRecovery = true;
        _recoverTsn = _nextTsn - 1;
        Ssthresh = WindowAfterLoss();
        Cwnd = Ssthresh;
        _partialBytesAcked = 0;
    }

    /// <summary>
    /// The window after a loss. RFC 9260 halves it, which bounds an AIMD sender near MSS/RTT·1.2/√p whatever the
    /// path's capacity: 0.5 MB/s at 40 ms and 0.5 % random loss. Following TCP-Illinois, the cut depends on the
    /// queueing delay: a loss while the RTT sits at its minimum (no queue, so not congestion: a lossy link) gives back
    /// 1/8; a loss with a queue building (a full bottleneck dropping at its tail) halves the window as RFC 9260 says.
    /// </summary>
    private long WindowAfterLoss()
    {
        long reduced = PathUncongested ? Cwnd - Cwnd / 8 : Cwnd / 2;
        return Math.Max(reduced, 4L * _mtu);
    }

    /// <summary>
    /// Slow start below ssthresh, congestion avoidance above it (RFC 9260 §7.2.1, §7.2.2); only while the window was
    /// in use. Congestion avoidance adds one MTU per window acknowledged, or <see cref="UncongestedIncreasePackets"/>
    /// while the path shows no queue (TCP-Illinois' delay-dependent increase): on a long path at RFC pace the window
    /// needs minutes to reach the bandwidth-delay product, and random losses keep knocking it back meanwhile.
    /// </summary>
    private void GrowCongestionWindow(long bytesAcked, long flightBefore)
    {
        bool windowWasFull = flightBefore + _mtu > Cwnd;
        if (Cwnd <= Ssthresh)
        {
            if (windowWasFull) Cwnd += Math.Min(bytesAcked, _mtu);
        }
        else
        {
            _partialBytesAcked += bytesAcked;
            long bytesPerIncrease = PathUncongested ? Cwnd / UncongestedIncreasePackets : Cwnd;
            if (_partialBytesAcked >= bytesPerIncrease && windowWasFull)
            {
                _partialBytesAcked -= bytesPerIncrease;
                Cwnd += _mtu;
            }
        }
    }

    private void MeasureRtt(uint tsn, bool retransmitted, long now)
    {
        if (!_timing || tsn != _timedTsn) return;
        _timing = false;
        if (retransmitted) return; // Karn's rule
        double sample = (now - _timedAt) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        AddRttSample(sample);
    }

    public void AddRttSample(double sampleMs)
    {
        _minRttMs = Math.Min(_minRttMs, sampleMs);
        _recentRttsMs[_recentRttNext] = sampleMs;
        _recentRttNext = (_recentRttNext + 1) % RecentRttSamples;
        _recentRttFilled = Math.Min(_recentRttFilled + 1, RecentRttSamples);
        if (!_hasRtt)
        {
            SmoothedRttMs = sampleMs;
            RttVarianceMs = sampleMs / 2;
            _hasRtt = true;
        }
        else
        {
            RttVarianceMs = 0.75 * RttVarianceMs + 0.25 * Math.Abs(SmoothedRttMs - sampleMs);
            SmoothedRttMs = 0.875 * SmoothedRttMs + 0.125 * sampleMs;
        }
        RtoMs = Math.Clamp(SmoothedRttMs + Math.Max(1.0, 4 * RttVarianceMs), _rtoMinMs, _rtoMaxMs);
    }

    /// <summary>
    /// T3-rtx expired (RFC 9260 §6.3.3, §7.2.3): collapse cwnd, back off the RTO, resend everything outstanding.
    /// ssthresh as after any loss (<see cref="WindowAfterLoss"/>), so slow start regains the pipe quickly.
    /// </summary>
    public void OnRetransmissionTimeout()
    {
        Ssthresh = WindowAfterLoss();
        Cwnd = _mtu;
        _partialBytesAcked = 0;
        _inFastRecovery = false;
        _timing = false;
        RtoMs = Math.Min(RtoMs * 2, _rtoMaxMs);
        for (uint tsn = _cumAck + 1; tsn != _nextTsn; tsn++)
        {
            ref var chunk = ref Slot(tsn);
            if (chunk.State != SlotInFlight) continue;
            chunk.State = SlotNeedsRetransmit;
            chunk.Misses = 0;
            _flight -= Charge(chunk.Length);
            _toRetransmit++;
        }
    }

    /// <summary>Drops all queued and outstanding data; pooled buffers are left to the GC.</summary>
    public void Release()
    {
        _queue.Clear();
        Array.Clear(_ring);
        _flight = 0;
        _toRetransmit = 0;
        QueuedBytes = 0;
    }
}
