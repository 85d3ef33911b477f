using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// Screens datagrams before BouncyCastle sees them, during the handshake and after it. Records in the clear
/// (epoch 0) are unauthenticated, so anybody who can spoof one datagram from the peer's address can send them:
/// <list type="bullet">
/// <item>BC updates epoch 0's replay window from any record it can frame, so one garbage record with a random
/// (far-ahead) sequence number made it discard the peer's real flights as replays, and the handshake timed out;
/// after the handshake the same shift would drop a retransmitted final flight. Epoch-0 records must carry a
/// sequence number a handshake can reach and a body a handshake produces.</item>
/// <item>After the handshake BC fails the whole connection on a record too short to hold an AEAD nonce and tag
/// (decode_error) and honours epoch-0 alerts and ChangeCipherSpec; only a retransmitted handshake flight is still
/// meaningful in the clear then.</item>
/// </list>
/// The fuzz tests (PeerConnection/FuzzTests, MalformedDatagramFuzzTests) found these.
/// </summary>
internal static class DtlsRecordFilter
{
    private const int HeaderLength = 13;
    private const int HandshakeHeaderLength = 12;
    /// <summary>A handshake sends a few dozen records in the clear, retransmissions included; 2^16 is far beyond that.</summary>
    private const long MaxClearSequenceNumber = 1 << 16;

    /// <summary>The shortest AEAD ciphertext any suite we offer produces (ChaCha20-Poly1305: tag plus one byte).</summary>
    public const int SmallestCiphertextLength = 16 + 1;

    /// <summary>
    /// True when every record in <paramref name="datagram"/> is well framed and plausible. Before the handshake
    /// completes pass <paramref name="handshakeComplete"/> false and <see cref="SmallestCiphertextLength"/>.
    /// </summary>
    public static bool IsAcceptable(ReadOnlySpan<byte> datagram, bool handshakeComplete, int minimumCiphertextLength)
    {
        if (datagram.Length < HeaderLength) return false;
        while (datagram.Length > 0)
        {
            if (datagram.Length < HeaderLength) return false;
            var contentType = datagram[0];
            var version = BinaryPrimitives.ReadUInt16BigEndian(datagram[1..]);
            var epoch = BinaryPrimitives.ReadUInt16BigEndian(datagram[3..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(datagram[11..]);
            if (contentType is < 20 or > 23) return false;
            if (version is not (0xFEFD or 0xFEFF)) return false;
            if (HeaderLength + length > datagram.Length) return false;
            if (epoch == 0)
            {
                var sequenceNumber = ((long)BinaryPrimitives.ReadUInt16BigEndian(datagram[5..]) << 32) | BinaryPrimitives.ReadUInt32BigEndian(datagram[7..]);
                if (sequenceNumber >= MaxClearSequenceNumber) return false;
                if (!IsPlausibleClearRecord(contentType, datagram.Slice(HeaderLength, length), handshakeComplete)) return false;
            }
            else if (epoch != 1 || length < minimumCiphertextLength)
            {
                return false;
            }
            datagram = datagram[(HeaderLength + length)..];
        }
        return true;
    }

    private static bool IsPlausibleClearRecord(byte contentType, ReadOnlySpan<byte> body, bool handshakeComplete) => contentType switch
    {
        22 => IsPlausibleHandshakeRecord(body),
        // ChangeCipherSpec and alerts only while the handshake runs (a peer rejecting our certificate says so).
        20 => !handshakeComplete && body.Length == 1 && body[0] == 1,
        21 => !handshakeComplete && body.Length == 2 && body[0] is 1 or 2,
        _ => false, // application data never travels in the clear
    };

    /// <summary>One or more handshake fragments (RFC 6347 §4.2.2) that exactly fill the record and fit their messages.</summary>
    private static bool IsPlausibleHandshakeRecord(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty) return false;
        while (!body.IsEmpty)
        {
            if (body.Length < HandshakeHeaderLength || !IsHandshakeType(body[0])) return false;
            var messageLength = ReadUInt24(body[1..]);
            var fragmentOffset = ReadUInt24(body[6..]);
            var fragmentLength = ReadUInt24(body[9..]);
            if (fragmentOffset + fragmentLength > messageLength || HandshakeHeaderLength + fragmentLength > body.Length) return false;
            body = body[(HandshakeHeaderLength + fragmentLength)..];
        }
        return true;
    }

    /// <summary>The DTLS 1.2 handshake messages (RFC 5246 §7.4, RFC 6347 §4.3.2).</summary>
    private static bool IsHandshakeType(byte type) => type is 0 or 1 or 2 or 3 or 4 or 11 or 12 or 13 or 14 or 15 or 16 or 20;

    private static int ReadUInt24(ReadOnlySpan<byte> value) => (value[0] << 16) | (value[1] << 8) | value[2];

    /// <summary>Explicit nonce plus tag for the AES-GCM suites, tag only for ChaCha20-Poly1305.</summary>
    public static int MinimumCiphertextLength(int cipherSuite) => cipherSuite switch
    {
        0xCCA9 or 0xCCA8 => 16 + 1,
        _ => 8 + 16 + 1,
    };
}
