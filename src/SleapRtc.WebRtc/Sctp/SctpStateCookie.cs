using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>
/// The state cookie of INIT ACK (RFC 9260 §5.1.3): everything needed to create the association on
/// COOKIE ECHO, signed with a per-association secret so a forged or altered cookie is refused.
/// </summary>
internal static class SctpStateCookie
{
    private const byte Version = 1;
    private const int BodySize = 1 + 4 + 4 + 4 + 4 + 4 + 2 + 2 + 1 + 8;
    private const int MacSize = 16;
    public const int Size = BodySize + MacSize;

    public static byte[] Create(byte[] secret, uint localTag, in InitFields peer, long createdAtMs)
    {
        var cookie = new byte[Size];
        var body = cookie.AsSpan(0, BodySize);
        body[0] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(body[1..], localTag);
        BinaryPrimitives.WriteUInt32BigEndian(body[5..], peer.InitiateTag);
        BinaryPrimitives.WriteUInt32BigEndian(body[9..], peer.InitialTsn);
        BinaryPrimitives.WriteUInt32BigEndian(body[13..], peer.AdvertisedWindow);
        BinaryPrimitives.WriteUInt32BigEndian(body[17..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(body[21..], peer.OutboundStreams);
        BinaryPrimitives.WriteUInt16BigEndian(body[23..], peer.InboundStreams);
        body[25] = (byte)((peer.SupportsReconfig ? 1 : 0) | (peer.SupportsForwardTsn ? 2 : 0));
        BinaryPrimitives.WriteInt64BigEndian(body[26..], createdAtMs);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(secret, body, mac);
        mac[..MacSize].CopyTo(cookie.AsSpan(BodySize));
        return cookie;
    }

    /// <summary>Checks signature and age; on success returns the local tag and the peer's INIT fields.</summary>
    public static bool TryOpen(byte[] secret, ReadOnlySpan<byte> cookie, long nowMs, long lifetimeMs, out uint localTag, out InitFields peer)
    {
        localTag = 0;
        peer = default;
        if (cookie.Length != Size || cookie[0] != Version) return false;
        var body = cookie[..BodySize];
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(secret, body, mac);
        if (!CryptographicOperations.FixedTimeEquals(mac[..MacSize], cookie.Slice(BodySize, MacSize))) return false;
        long createdAt = BinaryPrimitives.ReadInt64BigEndian(body[26..]);
        if (nowMs - createdAt > lifetimeMs || createdAt - nowMs > 1000) return false;
        localTag = BinaryPrimitives.ReadUInt32BigEndian(body[1..]);
        peer.InitiateTag = BinaryPrimitives.ReadUInt32BigEndian(body[5..]);
        peer.InitialTsn = BinaryPrimitives.ReadUInt32BigEndian(body[9..]);
        peer.AdvertisedWindow = BinaryPrimitives.ReadUInt32BigEndian(body[13..]);
        peer.OutboundStreams = BinaryPrimitives.ReadUInt16BigEndian(body[21..]);
        peer.InboundStreams = BinaryPrimitives.ReadUInt16BigEndian(body[23..]);
        peer.SupportsReconfig = (body[25] & 1) != 0;
        peer.SupportsForwardTsn = (body[25] & 2) != 0;
        return true;
    }
}
