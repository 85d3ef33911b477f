using System.Buffers.Binary;
using System.Text;

namespace SleapRtc.WebRtc.DataChannels;

/// <summary>Data Channel Establishment Protocol messages (RFC 8832 §5), carried with PPID 50.</summary>
internal static class Dcep
{
    public const byte MessageOpen = 0x03;
    public const byte MessageAck = 0x02;
    public const byte ChannelReliable = 0x00;
    public const byte ChannelReliableUnordered = 0x80;
    public const ushort DefaultPriority = 256;

    public static byte[] CreateOpen(string label, string protocol, out int length)
    {
        int labelBytes = Encoding.UTF8.GetByteCount(label);
        int protocolBytes = Encoding.UTF8.GetByteCount(protocol);
        if (labelBytes > ushort.MaxValue || protocolBytes > ushort.MaxValue) throw new ArgumentException("label or protocol longer than 65535 bytes");
        length = 12 + labelBytes + protocolBytes;
        var message = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        var span = message.AsSpan(0, length);
        span[0] = MessageOpen;
        span[1] = ChannelReliable;
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], DefaultPriority);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(span[8..], (ushort)labelBytes);
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], (ushort)protocolBytes);
        Encoding.UTF8.GetBytes(label, span[12..]);
        Encoding.UTF8.GetBytes(protocol, span[(12 + labelBytes)..]);
        return message;
    }

    public static bool TryParseOpen(ReadOnlySpan<byte> message, out byte channelType, out string label, out string protocol)
    {
        channelType = 0;
        label = protocol = string.Empty;
        if (message.Length < 12 || message[0] != MessageOpen) return false;
        channelType = message[1];
        int labelLength = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        int protocolLength = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        if (12 + labelLength + protocolLength > message.Length) return false;
        label = Encoding.UTF8.GetString(message.Slice(12, labelLength));
        protocol = Encoding.UTF8.GetString(message.Slice(12 + labelLength, protocolLength));
        return true;
    }
}
