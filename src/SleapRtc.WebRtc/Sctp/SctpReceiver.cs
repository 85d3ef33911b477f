using System.Buffers;
using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>Where the receiver hands complete messages; ownership of the pooled buffer passes to the sink.</summary>
internal interface ISctpMessageSink
{
    void OnMessage(ushort streamId, uint ppid, byte[] buffer, int length);
}

internal enum DataChunkOutcome { InOrder, OutOfOrder, Duplicate, Dropped, Violation }

/// <summary>
/// Inbound DATA: TSN tracking for SACK (cumulative point, gap blocks, duplicates), a reorder buffer for
/// chunks above the cumulative point, and reassembly. Without I-DATA the fragments of one message have
/// consecutive TSNs and a sender assigns TSNs in per-stream SSN order, so delivering complete messages in
/// TSN order is ordered delivery per stream. Not thread-safe: used under the association lock.
/// </summary>
internal sealed class SctpReceiver
{
    private const int MaxDuplicatesReported = 16;
    private const int MaxReorderCapacity = 1 << 16;

    private struct StoredChunk
    {
        public byte[]? Buffer;
        public int Length;
        public uint Ppid;
        public ushort StreamId;
        public byte Flags;
    }

    private readonly int _receiveWindow;
    private readonly int _maxMessageSize;
    private StoredChunk[] _stored = new StoredChunk[256];
    private int _storedCount;
    private long _storedBytes;
    private uint _highestTsn;
    private readonly uint[] _duplicates = new uint[MaxDuplicatesReported];
    private int _duplicateCount;

    private byte[]? _assembly;
    private int _assemblyLength;
    private ushort _assemblyStream;
    private uint _assemblyPpid;

    public SctpReceiver(uint peerInitialTsn, int receiveWindow, int maxMessageSize)
    {
        CumulativeTsn = peerInitialTsn - 1;
        _highestTsn = CumulativeTsn;
        _receiveWindow = receiveWindow;
        _maxMessageSize = maxMessageSize;
    }

    public uint CumulativeTsn { get; private set; }
    public bool HasGaps => _storedCount > 0;
    public int DuplicateCount => _duplicateCount;
    public string? ViolationReason { get; private set; }

    /// <summary>Free receive buffer advertised in SACK.</summary>
    public uint AdvertisedWindow
    {
        get
        {
            long free = _receiveWindow - _storedBytes - _assemblyLength;
            return free > 0 ? (uint)free : 0;
        }
    }

    public DataChunkOutcome OnData(uint tsn, byte flags, ushort streamId, uint ppid, ReadOnlySpan<byte> payload, ISctpMessageSink sink)
    {
        int distance = (int)(tsn - CumulativeTsn);
        if (distance <= 0)
        {
            AddDuplicate(tsn);
            return DataChunkOutcome.Duplicate;
        }
        if (distance == 1)
        {
            if (!Assemble(flags, streamId, ppid, payload, sink)) return DataChunkOutcome.Violation;
            CumulativeTsn = tsn;
            if (_storedCount > 0 && !DrainStored(sink)) return DataChunkOutcome.Violation;
            if (_storedCount == 0) _highestTsn = CumulativeTsn;
            return DataChunkOutcome.InOrder;
        }
        if (distance >= MaxReorderCapacity) return DataChunkOutcome.Dropped;
        if (distance >= _stored.Length) GrowStore(distance);
        ref var slot = ref _stored[tsn & (uint)(_stored.Length - 1)];
        if (slot.Buffer is not null)
        {
            AddDuplicate(tsn);
            return DataChunkOutcome.Duplicate;
        }
        if (_storedBytes + _assemblyLength + payload.Length > _receiveWindow) return DataChunkOutcome.Dropped;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
        payload.CopyTo(buffer);
        slot.Buffer = buffer;
        slot.Length = payload.Length;
        slot.Ppid = ppid;
        slot.StreamId = streamId;
        slot.Flags = flags;
        _storedCount++;
        _storedBytes += payload.Length;
        if (Serial.Gt(tsn, _highestTsn)) _highestTsn = tsn;
        return DataChunkOutcome.OutOfOrder;
    }

    private void AddDuplicate(uint tsn)
    {
        if (_duplicateCount < MaxDuplicatesReported) _duplicates[_duplicateCount++] = tsn;
    }

    private void GrowStore(int distance)
    {
        int capacity = _stored.Length;
        while (capacity <= distance) capacity *= 2;
        var grown = new StoredChunk[capacity];
        for (uint offset = 1; offset < (uint)_stored.Length; offset++)
        {
            uint tsn = CumulativeTsn + offset;
            ref var old = ref _stored[tsn & (uint)(_stored.Length - 1)];
            if (old.Buffer is not null) grown[tsn & (uint)(capacity - 1)] = old;
        }
        _stored = grown;
    }

    private bool DrainStored(ISctpMessageSink sink)
    {
        uint mask = (uint)(_stored.Length - 1);
        while (_storedCount > 0)
        {
            uint next = CumulativeTsn + 1;
            ref var slot = ref _stored[next & mask];
            if (slot.Buffer is null) return true;
            var chunk = slot;
            slot = default;
            _storedCount--;
            _storedBytes -= chunk.Length;
            bool ok = Assemble(chunk.Flags, chunk.StreamId, chunk.Ppid, chunk.Buffer.AsSpan(0, chunk.Length), sink);
            ArrayPool<byte>.Shared.Return(chunk.Buffer!);
            if (!ok) return false;
            CumulativeTsn = next;
        }
        return true;
    }

    private bool Assemble(byte flags, ushort streamId, uint ppid, ReadOnlySpan<byte> payload, ISctpMessageSink sink)
    {
        bool begin = (flags & DataFlags.Begin) != 0;
        bool end = (flags & DataFlags.End) != 0;
        if (begin)
        {
            if (_assembly is not null) return Violate("a message began before the previous one ended");
            if (payload.Length > _maxMessageSize) return Violate("message larger than the local max-message-size");
            if (end)
            {
                var single = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
                payload.CopyTo(single);
                sink.OnMessage(streamId, ppid, single, payload.Length);
                return true;
            }
            _assembly = ArrayPool<byte>.Shared.Rent(Math.Min(_maxMessageSize, Math.Max(payload.Length * 8, 16384)));
            payload.CopyTo(_assembly);
            _assemblyLength = payload.Length;
            _assemblyStream = streamId;
            _assemblyPpid = ppid;
            return true;
        }
        if (_assembly is null) return Violate("a continuation fragment arrived without a first fragment");
        if (streamId != _assemblyStream) return Violate("fragments of one message on different streams");
        int total = _assemblyLength + payload.Length;
        if (total > _maxMessageSize) return Violate("message larger than the local max-message-size");
        if (total > _assembly.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Min(_maxMessageSize, Math.Max(total, _assembly.Length * 2)));
            _assembly.AsSpan(0, _assemblyLength).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_assembly);
            _assembly = grown;
        }
        payload.CopyTo(_assembly.AsSpan(_assemblyLength));
        _assemblyLength = total;
        if (end)
        {
            var complete = _assembly;
            int length = _assemblyLength;
            _assembly = null;
            _assemblyLength = 0;
            sink.OnMessage(_assemblyStream, _assemblyPpid, complete, length);
        }
        return true;
    }

    private bool Violate(string reason)
    {
        ViolationReason = reason;
        return false;
    }

    /// <summary>Writes a SACK value (RFC 9260 §3.3.4) into <paramref name="value"/>, as many gap blocks and duplicates as fit; returns the gap block count.</summary>
    public int WriteSack(Span<byte> value, out int written)
    {
        // value layout: cum TSN, a_rwnd, #gap blocks, #dups, blocks (start,end offsets), dup TSNs
        BinaryPrimitives.WriteUInt32BigEndian(value, CumulativeTsn);
        BinaryPrimitives.WriteUInt32BigEndian(value[4..], AdvertisedWindow);
        int position = 12;
        int blocks = 0;
        int duplicatesToWrite = Math.Min(_duplicateCount, (value.Length - 12) / 8);
        int blockLimit = value.Length - 4 * duplicatesToWrite;
        if (_storedCount > 0)
        {
            uint mask = (uint)(_stored.Length - 1);
            uint span = _highestTsn - CumulativeTsn;
            uint offset = 1;
            while (offset <= span && position + 4 <= blockLimit)
            {
                while (offset <= span && _stored[(CumulativeTsn + offset) & mask].Buffer is null) offset++;
                if (offset > span) break;
                uint start = offset;
                while (offset <= span && _stored[(CumulativeTsn + offset) & mask].Buffer is not null) offset++;
                if (start > ushort.MaxValue || offset - 1 > ushort.MaxValue) break;
                BinaryPrimitives.WriteUInt16BigEndian(value[position..], (ushort)start);
                BinaryPrimitives.WriteUInt16BigEndian(value[(position + 2)..], (ushort)(offset - 1));
                position += 4;
                blocks++;
            }
        }
        int dups = 0;
        while (dups < duplicatesToWrite)
        {
            BinaryPrimitives.WriteUInt32BigEndian(value[position..], _duplicates[dups]);
            position += 4;
            dups++;
        }
        _duplicateCount = 0;
        BinaryPrimitives.WriteUInt16BigEndian(value[8..], (ushort)blocks);
        BinaryPrimitives.WriteUInt16BigEndian(value[10..], (ushort)dups);
        written = position;
        return blocks;
    }

    /// <summary>Largest SACK value this receiver may need (bounded by the packet anyway).</summary>
    public int SackValueSizeHint => 12 + 4 * Math.Min(64, _storedCount + 1) + 4 * _duplicateCount;

    /// <summary>Returns pooled buffers; the receiver is unusable afterwards.</summary>
    public void Release()
    {
        for (int i = 0; i < _stored.Length; i++)
        {
            if (_stored[i].Buffer is { } buffer) ArrayPool<byte>.Shared.Return(buffer);
            _stored[i] = default;
        }
        _storedCount = 0;
        _storedBytes = 0;
        if (_assembly is not null) ArrayPool<byte>.Shared.Return(_assembly);
        _assembly = null;
        _assemblyLength = 0;
    }
}
