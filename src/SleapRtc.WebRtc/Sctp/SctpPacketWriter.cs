using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>
/// Builds one SCTP packet (common header + bundled chunks) in a reusable buffer. Not thread-safe:
/// the association uses it under its lock.
/// </summary>
internal sealed class SctpPacketWriter
{
    public const int CommonHeaderSize = 12;
    public const int DataChunkHeaderSize = 16;
    private readonly byte[] _buffer;
    private int _position;
    private int _chunkCount;
    private int _lastChunkStart;

    public SctpPacketWriter(int maxPacketSize)
    {
        MaxPacketSize = maxPacketSize;
        _buffer = new byte[maxPacketSize];
    }

    public int MaxPacketSize { get; }
    public int Remaining => MaxPacketSize - _position;
    public int ChunkCount => _chunkCount;
    public ReadOnlySpan<byte> Packet => _buffer.AsSpan(0, _position);

    public void Begin(ushort sourcePort, ushort destinationPort, uint verificationTag)
    {
        var header = _buffer.AsSpan(0, CommonHeaderSize);
        BinaryPrimitives.WriteUInt16BigEndian(header, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], verificationTag);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], 0);
        _position = CommonHeaderSize;
        _chunkCount = 0;
    }

    /// <summary>Stamps the checksum and returns the finished packet.</summary>
    public ReadOnlySpan<byte> Finish()
    {
        var packet = _buffer.AsSpan(0, _position);
        Crc32c.StampPacket(packet);
        return packet;
    }

    /// <summary>Reserves a chunk of <paramref name="valueLength"/> value bytes and returns the value span; pads to 4 bytes.</summary>
    public Span<byte> AddChunk(byte type, byte flags, int valueLength)
    {
        int length = 4 + valueLength;
        int padded = (length + 3) & ~3;
        if (padded > Remaining) throw new InvalidOperationException("SCTP chunk does not fit the packet");
        var chunk = _buffer.AsSpan(_position, padded);
        _lastChunkStart = _position;
        chunk[0] = type;
        chunk[1] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(chunk[2..], (ushort)length);
        chunk[length..].Clear();
        _position += padded;
        _chunkCount++;
        return chunk.Slice(4, valueLength);
    }

    /// <summary>Sets a flag on the most recently added chunk (e.g. SACK-IMMEDIATELY on the last DATA).</summary>
    public void SetLastChunkFlag(byte flag) => _buffer[_lastChunkStart + 1] |= flag;

    /// <summary>Shrinks the most recently added chunk to <paramref name="valueLength"/> value bytes.</summary>
    public void TrimLastChunk(int valueLength)
    {
        int length = 4 + valueLength;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(_lastChunkStart + 2), (ushort)length);
        _position = _lastChunkStart + ((length + 3) & ~3);
    }

    public static int PaddedChunkSize(int valueLength) => (4 + valueLength + 3) & ~3;

    public void AddData(uint tsn, ushort streamId, ushort ssn, uint ppid, byte flags, ReadOnlySpan<byte> payload)
    {
        var value = AddChunk(ChunkType.Data, flags, 12 + payload.Length);
        BinaryPrimitives.WriteUInt32BigEndian(value, tsn);
        BinaryPrimitives.WriteUInt16BigEndian(value[4..], streamId);
        BinaryPrimitives.WriteUInt16BigEndian(value[6..], ssn);
        BinaryPrimitives.WriteUInt32BigEndian(value[8..], ppid);
        payload.CopyTo(value[12..]);
    }

    public void AddEmptyChunk(byte type, byte flags = 0) => AddChunk(type, flags, 0);

    public void AddUInt32Chunk(byte type, uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(AddChunk(type, 0, 4), value);
    }

    public void AddChunkWithValue(byte type, byte flags, ReadOnlySpan<byte> value)
    {
        value.CopyTo(AddChunk(type, flags, value.Length));
    }
}
