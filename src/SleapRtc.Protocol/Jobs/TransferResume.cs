using System.Security.Cryptography;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Where a cut-off transfer of one file stands: the receiver holds the first <see cref="Offset"/> bytes of the file
/// <see cref="Name"/> (<see cref="Size"/> bytes in all) of one job, and those bytes hash to <see cref="PrefixSha256"/>.
/// The sending side checks that prefix against its own file before it sends only the rest, so a resumed transfer is
/// never spliced onto a different file; the whole file's SHA-256 is still announced and checked at the end.
/// </summary>
public sealed class TransferPoint
{
    public string Name { get; set; } = "";
    public long Size { get; set; }
    public long Offset { get; set; }
    /// <summary>Lower-case hex SHA-256 of the first <see cref="Offset"/> bytes; null when <see cref="Offset"/> is 0.</summary>
    public string? PrefixSha256 { get; set; }
}

/// <summary>The file work both ends of a resumed transfer share.</summary>
public static class TransferResume
{
    /// <summary>SHA-256 (lower-case hex) of the first <paramref name="length"/> bytes of a file; null when it is shorter.</summary>
    public static string? PrefixSha256(string path, long length, CancellationToken cancellationToken = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
        return HashPrefix(stream, length, new[] { hash }, cancellationToken) ? Hex(hash.GetHashAndReset()) : null;
    }

    /// <summary>True when the first <see cref="TransferPoint.Offset"/> bytes of <paramref name="path"/> are the ones <paramref name="point"/> describes.</summary>
    public static bool PrefixMatches(string path, TransferPoint point, CancellationToken cancellationToken = default)
    {
        if (point.Offset <= 0) return true;
        if (point.PrefixSha256 is not { Length: > 0 } expected || !File.Exists(path) || new FileInfo(path).Length < point.Offset) return false;
        return string.Equals(PrefixSha256(path, point.Offset, cancellationToken), expected.Trim(), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Reads the first <paramref name="length"/> bytes of <paramref name="stream"/> into every hash; false when the stream ends first.</summary>
    internal static bool HashPrefix(Stream stream, long length, IReadOnlyList<IncrementalHash> hashes, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 20];
        var left = length;
        while (left > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0) return false;
            foreach (var hash in hashes) hash.AppendData(buffer, 0, n);
            left -= n;
        }
        return true;
    }

    internal static string Hex(byte[] digest) => Convert.ToHexString(digest).ToLowerInvariant();
}
