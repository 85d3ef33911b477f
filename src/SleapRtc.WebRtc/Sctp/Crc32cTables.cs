namespace SleapRtc.WebRtc.Sctp;

/// <summary>
/// Table-driven CRC32c (reflected polynomial 0x82F63B78), eight bytes per step, for runtimes without the CPU instruction
/// (the netstandard2.0 build). Compiled on net8.0 too, so the tests can hold it against the instruction.
/// </summary>
internal static class Crc32cTables
{
    private const uint ReflectedPolynomial = 0x82F63B78u;
    private static readonly uint[][] s_tables = BuildTables();

    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var t = s_tables;
        while (data.Length >= 8)
        {
            var low = crc ^ (uint)(data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24);
            crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24]
                ^ t[3][data[4]] ^ t[2][data[5]] ^ t[1][data[6]] ^ t[0][data[7]];
            data = data.Slice(8);
        }
        foreach (var b in data) crc = t[0][(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[][] BuildTables()
    {
        var tables = new uint[8][];
        for (var k = 0; k < 8; k++) tables[k] = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var crc = i;
            for (var bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ ReflectedPolynomial : crc >> 1;
            tables[0][i] = crc;
        }
        for (var i = 0; i < 256; i++)
        {
            for (var k = 1; k < 8; k++) tables[k][i] = (tables[k - 1][i] >> 8) ^ tables[0][tables[k - 1][i] & 0xFF];
        }
        return tables;
    }
}
