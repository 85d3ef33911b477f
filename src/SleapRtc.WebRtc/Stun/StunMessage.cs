using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace SleapRtc.WebRtc.Stun;

/// <summary>
/// A decoded STUN message (RFC 8489) with the attributes ICE uses. Parsing never throws on hostile input:
/// <see cref="TryParse"/> returns false for anything that is not a well-formed STUN message.
/// </summary>
public sealed class StunMessage
{
    public const uint MagicCookie = 0x2112A442;
    public const int HeaderLength = 20;
    private const uint FingerprintXor = 0x5354554E;

    public ushort Method { get; private init; }
    public StunClass Class { get; private init; }
    public byte[] TransactionId { get; private init; } = Array.Empty<byte>();

    public string? Username { get; private set; }
    public uint? Priority { get; private set; }
    public bool UseCandidate { get; private set; }
    public ulong? IceControlling { get; private set; }
    public ulong? IceControlled { get; private set; }
    public IPEndPoint? XorMappedAddress { get; private set; }
    public IPEndPoint? MappedAddress { get; private set; }
    public int? ErrorCode { get; private set; }
    public string? ErrorReason { get; private set; }
    public string? Software { get; private set; }
    public string? Realm { get; private set; }
    public string? Nonce { get; private set; }
    /// <summary>TURN LIFETIME in seconds.</summary>
    public uint? Lifetime { get; private set; }
    public IPEndPoint? XorPeerAddress { get; private set; }
    public IPEndPoint? XorRelayedAddress { get; private set; }
    /// <summary>Where the DATA attribute's value lies in the parsed packet (a Data indication's payload), or -1.</summary>
    public int DataOffset { get; private set; } = -1;
    public int DataLength { get; private set; }
    /// <summary>Offset of the MESSAGE-INTEGRITY attribute header, or -1 when absent.</summary>
    public int MessageIntegrityOffset { get; private set; } = -1;
    public bool HasFingerprint { get; private set; }
    /// <summary>Comprehension-required attributes (type &lt; 0x8000) we do not understand (answer 420).</summary>
    public IReadOnlyList<ushort> UnknownRequiredAttributes { get; private set; } = Array.Empty<ushort>();

    public bool HasMessageIntegrity => MessageIntegrityOffset >= 0;

    /// <summary>RFC 7983 range for STUN plus the fixed header checks of RFC 8489 §5.</summary>
    public static bool LooksLikeStun(ReadOnlySpan<byte> packet) =>
        packet.Length >= HeaderLength && packet[0] < 4 && (packet[3] & 3) == 0
        && BinaryPrimitives.ReadUInt32BigEndian(packet[4..]) == MagicCookie
        && BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) + HeaderLength == packet.Length;

    public static bool TryParse(ReadOnlySpan<byte> packet, out StunMessage? message)
    {
        message = null;
        if (!LooksLikeStun(packet)) return false;
        var type = BinaryPrimitives.ReadUInt16BigEndian(packet);
        var method = (ushort)((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
        var cls = (StunClass)(((type >> 4) & 1) | ((type >> 7) & 2));
        var transactionId = packet.Slice(8, 12).ToArray();
        var result = new StunMessage { Method = method, Class = cls, TransactionId = transactionId };
        List<ushort>? unknown = null;
        var offset = HeaderLength;
        while (offset < packet.Length)
        {
            if (packet.Length - offset < 4) return false;
            var attributeType = BinaryPrimitives.ReadUInt16BigEndian(packet[offset..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(packet[(offset + 2)..]);
            var valueStart = offset + 4;
            if (valueStart + length > packet.Length) return false;
            var value = packet.Slice(valueStart, length);
            var next = valueStart + ((length + 3) & ~3);
            if (next > packet.Length) return false;

            if (result.HasFingerprint) return false; // nothing may follow FINGERPRINT
            if (attributeType == StunAttributeType.Fingerprint)
            {
                if (length != 4) return false;
                var expected = Crc32Over(packet[..offset], offset + 8 - HeaderLength) ^ FingerprintXor;
                if (BinaryPrimitives.ReadUInt32BigEndian(value) != expected) return false;
                result.HasFingerprint = true;
            }
            else if (result.HasMessageIntegrity)
            {
                // RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored.
            }
            else if (!result.ParseAttribute(attributeType, value, transactionId, offset))
            {
                return false;
            }
            else if (attributeType < 0x8000 && !IsKnown(attributeType))
            {
                (unknown ??= new List<ushort>()).Add(attributeType);
            }
            offset = next;
        }
        if (unknown is not null) result.UnknownRequiredAttributes = unknown;
        message = result;
        return true;
    }

    private static bool IsKnown(ushort type) => type is StunAttributeType.MappedAddress or StunAttributeType.Username
        or StunAttributeType.MessageIntegrity or StunAttributeType.ErrorCode or StunAttributeType.UnknownAttributes
        or StunAttributeType.XorMappedAddress or StunAttributeType.Priority or StunAttributeType.UseCandidate
        or StunAttributeType.ChannelNumber or StunAttributeType.Lifetime or StunAttributeType.XorPeerAddress
        or StunAttributeType.Data or StunAttributeType.Realm or StunAttributeType.Nonce or StunAttributeType.XorRelayedAddress
        or StunAttributeType.RequestedTransport or StunAttributeType.DontFragment;

    private bool ParseAttribute(ushort type, ReadOnlySpan<byte> value, byte[] transactionId, int offset)
    {
        switch (type)
        {
            case StunAttributeType.Username:
                if (value.Length > 513) return false;
                Username = Encoding.UTF8.GetString(value);
                return true;
            case StunAttributeType.Priority:
                if (value.Length != 4) return false;
                Priority = BinaryPrimitives.ReadUInt32BigEndian(value);
                return true;
            case StunAttributeType.UseCandidate:
                UseCandidate = true;
                return value.Length == 0;
            case StunAttributeType.IceControlling:
                if (value.Length != 8) return false;
                IceControlling = BinaryPrimitives.ReadUInt64BigEndian(value);
                return true;
            case StunAttributeType.IceControlled:
                if (value.Length != 8) return false;
                IceControlled = BinaryPrimitives.ReadUInt64BigEndian(value);
                return true;
            case StunAttributeType.MessageIntegrity:
                if (value.Length != 20) return false;
                MessageIntegrityOffset = offset;
                return true;
            case StunAttributeType.ErrorCode:
                if (value.Length < 4) return false;
                ErrorCode = (value[2] & 0x7) * 100 + value[3];
                ErrorReason = Encoding.UTF8.GetString(value[4..]);
                return true;
            case StunAttributeType.XorMappedAddress:
                XorMappedAddress = DecodeAddress(value, true, transactionId);
                return XorMappedAddress is not null;
            case StunAttributeType.MappedAddress:
                MappedAddress = DecodeAddress(value, false, transactionId);
                return MappedAddress is not null;
            case StunAttributeType.Software:
                Software = Encoding.UTF8.GetString(value);
                return true;
            case StunAttributeType.Realm:
                if (value.Length > 763) return false;
                Realm = Encoding.UTF8.GetString(value);
                return true;
            case StunAttributeType.Nonce:
                if (value.Length > 763) return false;
                Nonce = Encoding.UTF8.GetString(value);
                return true;
            case StunAttributeType.Lifetime:
                if (value.Length != 4) return false;
                Lifetime = BinaryPrimitives.ReadUInt32BigEndian(value);
                return true;
            case StunAttributeType.XorPeerAddress:
                XorPeerAddress = DecodeAddress(value, true, transactionId);
                return XorPeerAddress is not null;
            case StunAttributeType.XorRelayedAddress:
                XorRelayedAddress = DecodeAddress(value, true, transactionId);
                return XorRelayedAddress is not null;
            case StunAttributeType.Data:
                DataOffset = offset + 4;
                DataLength = value.Length;
                return true;
            default:
                return true;
        }
    }

    private static IPEndPoint? DecodeAddress(ReadOnlySpan<byte> value, bool xor, byte[] transactionId)
    {
        if (value.Length < 4) return null;
        var family = value[1];
        int port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]);
        if (xor) port ^= (int)(MagicCookie >> 16);
        Span<byte> address = stackalloc byte[16];
        int addressLength;
        if (family == 1 && value.Length == 8) addressLength = 4;
        else if (family == 2 && value.Length == 20) addressLength = 16;
        else return null;
        value.Slice(4, addressLength).CopyTo(address);
        if (xor)
        {
            Span<byte> mask = stackalloc byte[16];
            BinaryPrimitives.WriteUInt32BigEndian(mask, MagicCookie);
            transactionId.CopyTo(mask[4..]);
            for (var i = 0; i < addressLength; i++) address[i] ^= mask[i];
        }
        return new IPEndPoint(new IPAddress(address[..addressLength].ToArray()), port);
    }

    /// <summary>
    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) of <paramref name="packet"/> — the same bytes
    /// this message was parsed from — with the short-term key (the ICE password as UTF-8).
    /// </summary>
    public bool VerifyMessageIntegrity(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> key)
    {
        if (!HasMessageIntegrity || packet.Length < MessageIntegrityOffset + 24) return false;
        Span<byte> computed = stackalloc byte[20];
        ComputeIntegrity(packet[..MessageIntegrityOffset], key, computed);
        return CryptographicOperations.FixedTimeEquals(computed, packet.Slice(MessageIntegrityOffset + 4, 20));
    }

    /// <summary>HMAC over a prefix whose header length field is rewritten to end just after MESSAGE-INTEGRITY.</summary>
    internal static void ComputeIntegrity(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> key, Span<byte> destination)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        prefix[..HeaderLength].CopyTo(header);
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(prefix.Length + 24 - HeaderLength));
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA1, key);
        hmac.AppendData(header);
        hmac.AppendData(prefix[HeaderLength..]);
        hmac.GetHashAndReset(destination);
    }

    /// <summary>CRC-32 of a prefix with the header length field rewritten to <paramref name="lengthField"/>.</summary>
    internal static uint Crc32Over(ReadOnlySpan<byte> prefix, int lengthField)
    {
        Span<byte> copy = prefix.Length <= 1024 ? stackalloc byte[prefix.Length] : new byte[prefix.Length];
        prefix.CopyTo(copy);
        BinaryPrimitives.WriteUInt16BigEndian(copy[2..], (ushort)lengthField);
        return Crc32.Compute(copy);
    }

    internal static uint FingerprintOf(ReadOnlySpan<byte> prefix, int lengthField) => Crc32Over(prefix, lengthField) ^ FingerprintXor;
}
