using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// Screens datagrams before BouncyCastle sees them once the handshake is done. BC drops records whose
/// MAC fails (IgnoreCorruptDtlsRecords) but fails the whole connection on a record too short to hold an
/// AEAD nonce and tag (decode_error), and honours unauthenticated epoch-0 alerts and ChangeCipherSpec —
/// all of which anybody who can spoof one datagram could send. The fuzz test found these.
/// </summary>
internal static class DtlsRecordFilter
{
    private const int HeaderLength = 13;

    /// <summary>True when every record in <paramref name="datagram"/> is well framed and plausible.</summary>
    public static bool IsAcceptable(ReadOnlySpan<byte> datagram, int minimumCiphertextLength)
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
                // Only a retransmitted handshake flight of the peer is still meaningful in the clear.
                if (contentType != 22) return false;
            }
            else if (epoch != 1 || length < minimumCiphertextLength)
            {
                return false;
            }
            datagram = datagram[(HeaderLength + length)..];
        }
        return true;
    }

    /// <summary>Explicit nonce plus tag for the AES-GCM suites, tag only for ChaCha20-Poly1305.</summary>
    public static int MinimumCiphertextLength(int cipherSuite) => cipherSuite switch
    {
        0xCCA9 or 0xCCA8 => 16 + 1,
        _ => 8 + 16 + 1,
    };
}
