using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>One chunk as it lies in a received packet; the value span excludes header and padding.</summary>
internal readonly ref struct SctpChunk
{
    public SctpChunk(byte type, byte flags, ReadOnlySpan<byte> value)
    {
        Type = type;
        Flags = flags;
        Value = value;
    }

    public byte Type { get; }
    public byte Flags { get; }
    public ReadOnlySpan<byte> Value { get; }
}

/// <summary>Walks the chunks of a packet without allocating; stops at the first malformed length.</summary>
internal ref struct SctpChunkReader
{
    private ReadOnlySpan<byte> _rest;

    public SctpChunkReader(ReadOnlySpan<byte> chunks)
    {
        _rest = chunks;
        Malformed = false;
    }

    /// <summary>True when iteration stopped because a chunk length was inconsistent.</summary>
    public bool Malformed { get; private set; }

    public bool TryRead(out SctpChunk chunk)
    {
        chunk = default;
        if (_rest.Length == 0) return false;
        if (_rest.Length < 4)
        {
            Malformed = true;
            return false;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(_rest[2..]);
        if (length < 4 || length > _rest.Length)
        {
            Malformed = true;
            return false;
        }
        chunk = new SctpChunk(_rest[0], _rest[1], _rest.Slice(4, length - 4));
        int padded = (length + 3) & ~3;
        // The last chunk may arrive without its padding; tolerate that.
        _rest = padded >= _rest.Length ? ReadOnlySpan<byte>.Empty : _rest[padded..];
        return true;
    }
}

/// <summary>Walks TLV parameters (INIT, INIT ACK, HEARTBEAT, RE-CONFIG, error causes).</summary>
internal ref struct SctpParameterReader
{
    private ReadOnlySpan<byte> _rest;

    public SctpParameterReader(ReadOnlySpan<byte> parameters)
    {
        _rest = parameters;
        Malformed = false;
    }

    public bool Malformed { get; private set; }

    /// <summary>Reads the next parameter; <paramref name="whole"/> covers header and value (for echoing unrecognized ones).</summary>
    public bool TryRead(out ushort type, out ReadOnlySpan<byte> value, out ReadOnlySpan<byte> whole)
    {
        type = 0;
        value = default;
        whole = default;
        if (_rest.Length == 0) return false;
        if (_rest.Length < 4)
        {
            Malformed = true;
            return false;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(_rest[2..]);
        if (length < 4 || length > _rest.Length)
        {
            Malformed = true;
            return false;
        }
        type = BinaryPrimitives.ReadUInt16BigEndian(_rest);
        value = _rest.Slice(4, length - 4);
        whole = _rest[..length];
        int padded = (length + 3) & ~3;
        _rest = padded >= _rest.Length ? ReadOnlySpan<byte>.Empty : _rest[padded..];
        return true;
    }
}

/// <summary>Fields of INIT and INIT ACK (RFC 9260 §3.3.2–3.3.3) that this implementation uses.</summary>
internal struct InitFields
{
    public uint InitiateTag;
    public uint AdvertisedWindow;
    public ushort OutboundStreams;
    public ushort InboundStreams;
    public uint InitialTsn;
    public bool SupportsReconfig;
    public bool SupportsForwardTsn;

    public const int FixedSize = 16;

    /// <summary>Parses the fixed part and the parameters it knows; unknown ones go to <paramref name="unrecognized"/> per their high bits.</summary>
    public static bool TryParse(ReadOnlySpan<byte> value, out InitFields fields, out ReadOnlySpan<byte> cookie, List<byte[]>? unrecognized)
    {
        fields = default;
        cookie = default;
        if (value.Length < FixedSize) return false;
        fields.InitiateTag = BinaryPrimitives.ReadUInt32BigEndian(value);
        fields.AdvertisedWindow = BinaryPrimitives.ReadUInt32BigEndian(value[4..]);
        fields.OutboundStreams = BinaryPrimitives.ReadUInt16BigEndian(value[8..]);
        fields.InboundStreams = BinaryPrimitives.ReadUInt16BigEndian(value[10..]);
        fields.InitialTsn = BinaryPrimitives.ReadUInt32BigEndian(value[12..]);
        if (fields.InitiateTag == 0 || fields.OutboundStreams == 0 || fields.InboundStreams == 0) return false;
        var reader = new SctpParameterReader(value[FixedSize..]);
        while (reader.TryRead(out ushort type, out var paramValue, out var whole))
        {
            switch (type)
            {
                case ParameterType.StateCookie:
                    cookie = paramValue;
                    break;
                case ParameterType.SupportedExtensions:
                    foreach (byte chunkType in paramValue)
                    {
                        if (chunkType == ChunkType.ReConfig) fields.SupportsReconfig = true;
                        if (chunkType == ChunkType.ForwardTsn) fields.SupportsForwardTsn = true;
                    }
                    break;
                case ParameterType.ForwardTsnSupported:
                    fields.SupportsForwardTsn = true;
                    break;
                default:
                    // RFC 9260 §3.2.2: the two high bits say whether to go on and whether to report it.
                    int action = type >> 14;
                    if ((action & 1) != 0) unrecognized?.Add(whole.ToArray());
                    if ((action & 2) == 0) return true;
                    break;
            }
        }
        return !reader.Malformed;
    }
}
