using System.Buffers.Binary;
using System.Numerics;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>
/// CRC32c (Castagnoli) as SCTP uses it (RFC 9260 Appendix B); on .NET 8 BitOperations uses the CPU instruction when
/// present, the netstandard2.0 build (Windows PowerShell 5.1) uses slicing-by-8 tables.
/// </summary>
public static class Crc32c
{
    /// <summary>Plain CRC32c of a buffer (initial value all ones, final complement).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFFu, data);

    internal static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
#if !NET8_0_OR_GREATER
        return Crc32cTables.Update(crc, data);
#else
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return crc;
#endif
    }

    /// <summary>Checksum of an SCTP packet computed as if its checksum field (bytes 8..11) were zero.</summary>
    public static uint ComputePacketChecksum(ReadOnlySpan<byte> packet)
    {
        uint crc = Update(0xFFFFFFFFu, packet[..8]);
#if NET8_0_OR_GREATER
        crc = BitOperations.Crc32C(crc, 0u);
#else
        crc = Crc32cTables.Update(crc, stackalloc byte[4]);
#endif
        crc = Update(crc, packet[12..]);
        return ~crc;
    }

    /// <summary>Writes the packet checksum; SCTP stores the CRC in little-endian byte order.</summary>
    public static void StampPacket(Span<byte> packet)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(packet.Slice(8, 4), ComputePacketChecksum(packet));
    }

    public static bool VerifyPacket(ReadOnlySpan<byte> packet)
    {
        return packet.Length >= 12
            && BinaryPrimitives.ReadUInt32LittleEndian(packet.Slice(8, 4)) == ComputePacketChecksum(packet);
    }
}
