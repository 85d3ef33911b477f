using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;

namespace SleapRtc.Compat;

/// <summary>
/// The handful of static BCL members our libraries use that netstandard2.0 (Windows PowerShell 5.1's .NET
/// Framework) lacks. On net8.0 each forwards to the runtime's own member, so the modern build pays nothing.
/// </summary>
internal static class Portable
{
#if !NET8_0_OR_GREATER
    private static readonly Stopwatch s_clock = Stopwatch.StartNew();
    private static readonly PropertyInfo? s_externalAttributes = typeof(ZipArchiveEntry).GetProperty("ExternalAttributes");
#endif

    /// <summary>Milliseconds on a monotonic clock (Environment.TickCount64 where it exists).</summary>
    public static long TickCount64 =>
#if NET8_0_OR_GREATER
        Environment.TickCount64;
#else
        s_clock.ElapsedMilliseconds;
#endif

    public static string ToHexLower(ReadOnlySpan<byte> bytes)
    {
#if NET8_0_OR_GREATER
        return Convert.ToHexString(bytes).ToLowerInvariant();
#else
        const string digits = "0123456789abcdef";
        var chars = new char[bytes.Length * 2];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[2 * i] = digits[bytes[i] >> 4];
            chars[2 * i + 1] = digits[bytes[i] & 0xF];
        }
        return new string(chars);
#endif
    }

    public static byte[] RandomBytes(int count)
    {
#if NET8_0_OR_GREATER
        return RandomNumberGenerator.GetBytes(count);
#else
        var bytes = new byte[count];
        using var rng = RandomNumberGenerator.Create();
        rng.GetBytes(bytes);
        return bytes;
#endif
    }

    public static void FillRandom(Span<byte> destination)
    {
#if NET8_0_OR_GREATER
        RandomNumberGenerator.Fill(destination);
#else
        var bytes = RandomBytes(destination.Length);
        bytes.CopyTo(destination);
#endif
    }

    /// <summary>Uniform integer in [fromInclusive, toExclusive) from the CSPRNG.</summary>
    public static int RandomInt(int fromInclusive, int toExclusive)
    {
#if NET8_0_OR_GREATER
        return RandomNumberGenerator.GetInt32(fromInclusive, toExclusive);
#else
        var range = (uint)(toExclusive - fromInclusive);
        if (range == 0) throw new ArgumentOutOfRangeException(nameof(toExclusive));
        // Rejection sampling keeps the result unbiased.
        var limit = uint.MaxValue - uint.MaxValue % range;
        Span<byte> four = stackalloc byte[4];
        uint value;
        do
        {
            FillRandom(four);
            value = BitConverter.ToUInt32(four.ToArray(), 0);
        } while (value >= limit);
        return fromInclusive + (int)(value % range);
#endif
    }

    public static int RandomInt(int toExclusive) => RandomInt(0, toExclusive);

    public static void HmacSha256(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, Span<byte> destination)
    {
#if NET8_0_OR_GREATER
        HMACSHA256.HashData(key, data, destination);
#else
        HmacSha256(key.ToArray(), data.ToArray()).CopyTo(destination);
#endif
    }

    public static byte[] Sha256(byte[] data)
    {
#if NET8_0_OR_GREATER
        return SHA256.HashData(data);
#else
        using var sha = SHA256.Create();
        return sha.ComputeHash(data);
#endif
    }

    public static byte[] Sha1(byte[] data)
    {
#if NET8_0_OR_GREATER
        return SHA1.HashData(data);
#else
        using var sha = SHA1.Create();
        return sha.ComputeHash(data);
#endif
    }

    public static byte[] HmacSha256(byte[] key, byte[] data)
    {
#if NET8_0_OR_GREATER
        return HMACSHA256.HashData(key, data);
#else
        using var hmac = new HMACSHA256(key);
        return hmac.ComputeHash(data);
#endif
    }

    public static bool FixedTimeEquals(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
#if NET8_0_OR_GREATER
        return CryptographicOperations.FixedTimeEquals(left, right);
#else
        if (left.Length != right.Length) return false;
        var difference = 0;
        for (var i = 0; i < left.Length; i++) difference |= left[i] ^ right[i];
        return difference == 0;
#endif
    }

    /// <summary>
    /// One argument quoted for a Windows command line (the Microsoft C runtime / CommandLineToArgvW rules: backslashes
    /// escape only when they precede a quote), so the child sees it verbatim. Used where ArgumentList does not exist.
    /// </summary>
    public static string QuoteCommandLineArgument(string argument)
    {
        if (argument.Length > 0 && argument.IndexOfAny(new[] { ' ', '\t', '\n', '\v', '"' }) < 0) return argument;
        var builder = new System.Text.StringBuilder("\"");
        var backslashes = 0;
        foreach (var c in argument)
        {
            if (c == '\\') { backslashes++; continue; }
            if (c == '"') builder.Append('\\', backslashes * 2 + 1);
            else builder.Append('\\', backslashes);
            backslashes = 0;
            builder.Append(c);
        }
        builder.Append('\\', backslashes * 2).Append('"');
        return builder.ToString();
    }

    /// <summary>
    /// The Unix mode bits a zip entry carries (upper 16 bits), or 0 where the runtime cannot tell: .NET Framework
    /// 4.7.2+ has the property, the netstandard2.0 surface does not, so it is read by reflection there.
    /// </summary>
    public static int ExternalAttributes(ZipArchiveEntry entry)
    {
#if NET8_0_OR_GREATER
        return entry.ExternalAttributes;
#else
        return s_externalAttributes?.GetValue(entry) is int value ? value : 0;
#endif
    }
}
