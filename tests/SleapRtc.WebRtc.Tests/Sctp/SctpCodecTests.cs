using System.Buffers.Binary;
using System.Text;
using SleapRtc.WebRtc.Sctp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Sctp;

public class SctpCodecTests
{
    [Fact]
    public void Crc32c_MatchesPublishedVectors()
    {
        // RFC 3720 B.4 (iSCSI, same polynomial) and the common "123456789" check value.
        Assert.Equal(0xE3069283u, Crc32c.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0x8A9136AAu, Crc32c.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32c.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32c.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
    }

    [Fact]
    public void PacketChecksum_IsStoredLittleEndianOverZeroedField()
    {
        var packet = new byte[32];
        BinaryPrimitives.WriteUInt16BigEndian(packet, 5000);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), 5000);
        packet[12] = 11; // COOKIE ACK
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(14), 4);
        Crc32c.StampPacket(packet.AsSpan(0, 16));
        var zeroed = packet.AsSpan(0, 16).ToArray();
        zeroed[8] = zeroed[9] = zeroed[10] = zeroed[11] = 0;
        Assert.Equal(Crc32c.Compute(zeroed), BinaryPrimitives.ReadUInt32LittleEndian(packet.AsSpan(8)));
        Assert.True(Crc32c.VerifyPacket(packet.AsSpan(0, 16)));
        packet[13] ^= 1;
        Assert.False(Crc32c.VerifyPacket(packet.AsSpan(0, 16)));
    }

    private static byte[] InitValue(params (ushort Type, byte[] Value)[] parameters)
    {
        var list = new List<byte>();
        void U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); list.AddRange(b); }
        void U16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, v); list.AddRange(b); }
        U32(0x11223344); U32(1048576); U16(1024); U16(1024); U32(777);
        foreach (var (type, value) in parameters)
        {
            U16(type); U16((ushort)(4 + value.Length)); list.AddRange(value);
            while (list.Count % 4 != 0) list.Add(0);
        }
        return list.ToArray();
    }

    [Fact]
    public void InitParameters_LibdatachannelStyle_UnknownOnesSkippedByHighBits()
    {
        // libdatachannel/usrsctp: Forward-TSN-Supported, Zero-Checksum-Acceptable (0x8001), Supported
        // Extensions {192, 15, 193, 128, 130} and AUTH RANDOM (0x8002) / CHUNKS (0x8003) / HMAC-ALGO (0x8004).
        var value = InitValue(
            (0xC000, Array.Empty<byte>()),
            (0x8001, new byte[] { 0, 0, 0, 1 }),
            (0x8008, new byte[] { 192, 15, 193, 128, 130 }),
            (0x8002, new byte[32]),
            (0x8003, new byte[] { 193, 128 }),
            (0x8004, new byte[] { 0, 1 }));
        var unrecognized = new List<byte[]>();
        Assert.True(InitFields.TryParse(value, out var fields, out var cookie, unrecognized));
        Assert.True(fields.SupportsReconfig);
        Assert.True(fields.SupportsForwardTsn);
        Assert.Equal(0x11223344u, fields.InitiateTag);
        Assert.Equal(777u, fields.InitialTsn);
        Assert.True(cookie.IsEmpty);
        Assert.Empty(unrecognized); // 0x80xx: skip silently
    }

    [Fact]
    public void InitParameters_StopAndReportBitsAreHonoured()
    {
        var reportAndSkip = InitValue((0xC123, new byte[] { 1, 2, 3 }), (0x8008, new byte[] { 130 }));
        var unrecognized = new List<byte[]>();
        Assert.True(InitFields.TryParse(reportAndSkip, out var fields, out _, unrecognized));
        Assert.True(fields.SupportsReconfig);
        Assert.Single(unrecognized);

        // 0x0xxx: stop processing, so the extensions after it are not seen.
        var stop = InitValue((0x0123, new byte[] { 1 }), (0x8008, new byte[] { 130 }));
        unrecognized.Clear();
        Assert.True(InitFields.TryParse(stop, out fields, out _, unrecognized));
        Assert.False(fields.SupportsReconfig);
        Assert.Empty(unrecognized);
    }

    [Fact]
    public void StateCookie_RejectsTamperingAndExpiry()
    {
        var secret = new byte[32];
        new Random(3).NextBytes(secret);
        var peer = new InitFields { InitiateTag = 99, InitialTsn = 5, AdvertisedWindow = 1000, OutboundStreams = 10, InboundStreams = 10, SupportsReconfig = true };
        var cookie = SctpStateCookie.Create(secret, 1234, peer, 10_000);
        Assert.True(SctpStateCookie.TryOpen(secret, cookie, 10_500, 60_000, out uint tag, out var opened));
        Assert.Equal(1234u, tag);
        Assert.Equal(99u, opened.InitiateTag);
        Assert.True(opened.SupportsReconfig);
        Assert.False(SctpStateCookie.TryOpen(secret, cookie, 80_000, 60_000, out _, out _));
        cookie[3] ^= 0x40;
        Assert.False(SctpStateCookie.TryOpen(secret, cookie, 10_500, 60_000, out _, out _));
    }
}
