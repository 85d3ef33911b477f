using System.Globalization;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// How far an archive may inflate when it is unpacked (packages on the worker, results on the client). Both
/// limits are enforced on the bytes actually written, never on the sizes the zip declares.
/// </summary>
public sealed class PackageLimits
{
    /// <summary>200:1 is far above what real packages reach (labels 2-10:1, videos ~1:1) and far below a zip bomb's ~1,000:1.</summary>
    public const double DefaultMaxCompressionRatio = 200;
    /// <summary>Large enough for a project's labels and several multi-GB videos.</summary>
    public const long DefaultMaxUnpackedBytes = 64L * 1024 * 1024 * 1024;
    /// <summary>Any entry may unpack to this much whatever its ratio: a small text file of repeated lines legitimately compresses beyond 200:1.</summary>
    public const long RatioExemptBytes = 1024 * 1024;

    public static PackageLimits Default { get; } = new();

    /// <summary>Most bytes written per compressed byte, for each entry and for the archive as a whole.</summary>
    public double MaxCompressionRatio { get; init; } = DefaultMaxCompressionRatio;
    /// <summary>Most bytes written in all.</summary>
    public long MaxUnpackedBytes { get; init; } = DefaultMaxUnpackedBytes;

    internal static string FormatBytes(long bytes) => bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB";
}

/// <summary>Which limit stopped an archive from being unpacked.</summary>
public enum PackageLimit
{
    /// <summary>An entry or the whole archive inflated beyond <see cref="PackageLimits.MaxCompressionRatio"/>.</summary>
    CompressionRatio,
    /// <summary>The archive unpacks (or declares it unpacks) to more than <see cref="PackageLimits.MaxUnpackedBytes"/>.</summary>
    UnpackedSize,
    /// <summary>The declared contents do not fit the free space of the target disk.</summary>
    DiskSpace,
}

/// <summary>An archive was refused because unpacking it would pass a limit; what was written is removed again.</summary>
public sealed class PackageLimitExceededException : Exception
{
    public PackageLimitExceededException(PackageLimit limit, string message) : base(message) => Limit = limit;

    public PackageLimit Limit { get; }
}
