#if !NET8_0_OR_GREATER
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;

namespace SleapRtc.Compat;

/// <summary>
/// The static one-shot members of .NET 5+ that our code calls (random bytes, hashes, the monotonic clock, a zip
/// entry's Unix mode), as C# 14 extensions with the runtime's names for the netstandard2.0 build.
/// </summary>
internal static class NetStandardCrypto
{
    private static readonly Stopwatch s_clock = Stopwatch.StartNew();
    private static readonly PropertyInfo? s_externalAttributes = typeof(ZipArchiveEntry).GetProperty("ExternalAttributes");

    extension(Environment)
    {
        /// <summary>Milliseconds on a monotonic clock.</summary>
        public static long TickCount64 => s_clock.ElapsedMilliseconds;
    }

    extension(Convert)
    {
        public static string ToHexString(ReadOnlySpan<byte> bytes)
        {
            const string digits = "0123456789ABCDEF";
            var chars = new char[bytes.Length * 2];
            for (var i = 0; i < bytes.Length; i++)
            {
                chars[2 * i] = digits[bytes[i] >> 4];
                chars[2 * i + 1] = digits[bytes[i] & 0xF];
            }
            return new string(chars);
        }
    }

    extension(RandomNumberGenerator)
    {
        public static byte[] GetBytes(int count)
        {
            var bytes = new byte[count];
            using var rng = RandomNumberGenerator.Create();
            rng.GetBytes(bytes);
            return bytes;
        }

        public static void Fill(Span<byte> destination) => RandomNumberGenerator.GetBytes(destination.Length).CopyTo(destination);

        public static int GetInt32(int toExclusive) => RandomNumberGenerator.GetInt32(0, toExclusive);

        /// <summary>Uniform in [fromInclusive, toExclusive); rejection sampling keeps it unbiased.</summary>
        public static int GetInt32(int fromInclusive, int toExclusive)
        {
            var range = (uint)(toExclusive - fromInclusive);
            if (range == 0) throw new ArgumentOutOfRangeException(nameof(toExclusive));
            var limit = uint.MaxValue - uint.MaxValue % range;
            uint value;
            do value = BitConverter.ToUInt32(RandomNumberGenerator.GetBytes(4), 0);
            while (value >= limit);
            return fromInclusive + (int)(value % range);
        }
    }

    extension(SHA256)
    {
        public static byte[] HashData(byte[] data)
        {
            using var sha = SHA256.Create();
            return sha.ComputeHash(data);
        }
    }

    extension(HMACSHA256)
    {
        public static byte[] HashData(byte[] key, byte[] data)
        {
            using var hmac = new HMACSHA256(key);
            return hmac.ComputeHash(data);
        }

        public static int HashData(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, Span<byte> destination)
        {
            var mac = HMACSHA256.HashData(key.ToArray(), data.ToArray());
            mac.CopyTo(destination);
            return mac.Length;
        }
    }

    extension(ZipArchiveEntry entry)
    {
        /// <summary>.NET Framework 4.7.2+ has the property, the netstandard2.0 surface does not: read by reflection, 0 if absent.</summary>
        public int ExternalAttributes => s_externalAttributes?.GetValue(entry) is int value ? value : 0;
    }
}

/// <summary>SHA1.HashData apart: extension members lower to static methods, and its signature equals SHA256's.</summary>
internal static class NetStandardSha1
{
    extension(SHA1)
    {
        public static byte[] HashData(byte[] data)
        {
            using var sha = SHA1.Create();
            return sha.ComputeHash(data);
        }
    }
}
#endif
