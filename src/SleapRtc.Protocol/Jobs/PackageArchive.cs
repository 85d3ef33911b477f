using System.IO.Compression;

namespace SleapRtc.Protocol.Jobs;

/// <summary>A package or result archive that would write outside its folder, or holds links.</summary>
public sealed class UnsafeArchiveException : Exception
{
    public UnsafeArchiveException(string entryName, string reason)
        : base($"The archive entry '{entryName}' was rejected: {reason}. Nothing was extracted from this archive.")
    {
        EntryName = entryName;
    }

    public string EntryName { get; }
}

/// <summary>
/// Zip handling for packages (worker side) and results (client side). Extraction validates every entry before
/// writing anything: no absolute or drive-rooted names, no '..' escaping the target, no symbolic links or
/// other special files. Entries are then streamed to disk one by one under <see cref="PackageLimits"/>,
/// counted as they inflate, so a zip bomb is stopped at the limit whatever sizes it declares.
/// </summary>
public static class PackageArchive
{
    private const int UnixFileTypeMask = 0xF000;
    private const int UnixRegularFile = 0x8000;
    private const int UnixDirectory = 0x4000;

    /// <returns>The full paths of the files written.</returns>
    /// <exception cref="UnsafeArchiveException">An entry would land outside the folder or is a link; nothing was written.</exception>
    /// <exception cref="PackageLimitExceededException">A limit was hit; what was written is removed again.</exception>
    /// <param name="extractedWhileReceived">Entries a <see cref="ZipEntrySplitter"/> already wrote under
    /// <paramref name="destinationDirectory"/> while the zip arrived (their bytes are a hole in the zip): each must match its
    /// central directory record (name, size, stored, a regular file) or the archive is refused; they are not copied again.</param>
    public static IReadOnlyList<string> ExtractSafely(string zipPath, string destinationDirectory, PackageLimits? limits = null, CancellationToken cancellationToken = default,
        IReadOnlyList<ZipEntrySplitter.SplitEntry>? extractedWhileReceived = null)
    {
        limits ??= PackageLimits.Default;
        var root = Path.GetFullPath(destinationDirectory);
        var rootWithSeparator = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        var archiveBytes = new FileInfo(zipPath).Length;
        using var archive = ZipFile.OpenRead(zipPath);

        var plan = new List<(ZipArchiveEntry Entry, string Target, bool IsDirectory)>(archive.Entries.Count);
        long declared = 0, alreadyOnDisk = 0;
        var split = (extractedWhileReceived ?? Array.Empty<ZipEntrySplitter.SplitEntry>()).ToDictionary(e => e.Name, StringComparer.Ordinal);
        var splitSeen = 0;
        foreach (var entry in archive.Entries)
        {
            var name = entry.FullName;
            if (name.Length == 0) continue;
            var normalized = name.Replace('\\', '/');
            if (normalized.StartsWith('/') || (normalized.Length >= 2 && normalized[1] == ':'))
                throw new UnsafeArchiveException(name, "absolute paths are not allowed");
            if (normalized.Split('/').Any(segment => segment == ".."))
                throw new UnsafeArchiveException(name, "'..' path segments are not allowed (zip-slip)");
            var unixType = (entry.ExternalAttributes >> 16) & UnixFileTypeMask;
            if (unixType != 0 && unixType != UnixRegularFile && unixType != UnixDirectory)
                throw new UnsafeArchiveException(name, unixType == 0xA000 ? "symbolic links are not allowed" : "special files are not allowed");

            var target = Path.GetFullPath(Path.Combine(root, normalized));
            if (!target.StartsWith(rootWithSeparator, StringComparison.Ordinal) && target != root)
                throw new UnsafeArchiveException(name, "it resolves outside the extraction folder");
            if (split.TryGetValue(name, out var early))
            {
                // Written while received from the local header: the central directory must say the same.
                if (early.Path != target || entry.Length != early.Length || entry.CompressedLength != early.Length || !File.Exists(target) || new FileInfo(target).Length != early.Length)
                    throw new UnsafeArchiveException(name, "its local header and the central directory disagree");
                splitSeen++;
                alreadyOnDisk += early.Length;
            }
            plan.Add((entry, target, normalized.EndsWith('/')));
            declared += Math.Max(0, entry.Length);
        }
        if (splitSeen != split.Count)
            throw new UnsafeArchiveException(split.Keys.First(k => !archive.Entries.Any(e => e.FullName == k)), "it is in a local header but not in the central directory");

        // The declared sizes are only good for refusing early; the streaming count below is what holds.
        if (declared > limits.MaxUnpackedBytes)
            throw UnpackedSizeExceeded(declared, limits);
        Directory.CreateDirectory(root);
        EnsureDiskSpace(root, declared - alreadyOnDisk);

        var written = new List<string>();
        var budget = new InflationBudget(archiveBytes, limits);
        try
        {
            foreach (var (entry, target, isDirectory) in plan)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (isDirectory)
                {
                    Directory.CreateDirectory(target);
                    continue;
                }
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                written.Add(target);
                if (split.ContainsKey(entry.FullName))
                {
                    budget.Count(entry.FullName, entry.Length);
                    continue;
                }
                using var input = entry.Open();
                using var output = new FileStream(target, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                budget.Copy(entry.FullName, Math.Min(entry.CompressedLength, archiveBytes), input, output, cancellationToken);
            }
        }
        catch (Exception e) when (e is PackageLimitExceededException or OperationCanceledException)
        {
            foreach (var file in written) TryDelete(file);
            throw;
        }
        return written;
    }

    /// <summary>Zips the contents of a folder (not the folder itself); an absent folder gives an empty archive.</summary>
    public static void CreateFromDirectoryContents(string sourceDirectory, string zipPath)
    {
        if (File.Exists(zipPath)) File.Delete(zipPath);
        if (!Directory.Exists(sourceDirectory))
        {
            using var empty = ZipFile.Open(zipPath, ZipArchiveMode.Create);
            return;
        }
        ZipFile.CreateFromDirectory(sourceDirectory, zipPath, CompressionLevel.Fastest, includeBaseDirectory: false);
    }

    private static void EnsureDiskSpace(string root, long needed)
    {
        long free;
        try { free = new DriveInfo(root).AvailableFreeSpace; }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return; // no answer from this file system: the write itself will fail with the disk's own error
        }
        if (needed > free)
            throw new PackageLimitExceededException(PackageLimit.DiskSpace,
                $"The archive unpacks to {PackageLimits.FormatBytes(needed)} but only {PackageLimits.FormatBytes(free)} are free on the disk of {root} (free disk space limit). Nothing was extracted.");
    }

    private static PackageLimitExceededException UnpackedSizeExceeded(long bytes, PackageLimits limits) =>
        new(PackageLimit.UnpackedSize,
            $"The archive unpacks to {(bytes > limits.MaxUnpackedBytes ? "more than " : "")}{PackageLimits.FormatBytes(limits.MaxUnpackedBytes)}, the unpacked size limit. Nothing was extracted.");

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Counts what each entry and the whole archive inflate to while it is copied.</summary>
    private sealed class InflationBudget
    {
        private readonly long _archiveBytes;
        private readonly PackageLimits _limits;
        private long _total;

        public InflationBudget(long archiveBytes, PackageLimits limits)
        {
            _archiveBytes = archiveBytes;
            _limits = limits;
        }

        public void Copy(string entryName, long compressedBytes, Stream input, Stream output, CancellationToken cancellationToken)
        {
            var entryLimit = RatioLimit(compressedBytes);
            var archiveLimit = RatioLimit(_archiveBytes);
            var buffer = new byte[1 << 16];
            long entryBytes = 0;
            int read;
            while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                entryBytes += read;
                _total += read;
                if (entryBytes > entryLimit) throw RatioExceeded($"the entry '{entryName}'", compressedBytes);
                if (_total > archiveLimit) throw RatioExceeded("the archive", _archiveBytes);
                if (_total > _limits.MaxUnpackedBytes) throw UnpackedSizeExceeded(_total, _limits);
                output.Write(buffer, 0, read);
            }
        }

        /// <summary>A stored entry already on disk: its bytes count toward the unpacked size (its ratio is 1).</summary>
        public void Count(string entryName, long bytes)
        {
            _total += bytes;
            if (_total > _limits.MaxUnpackedBytes) throw UnpackedSizeExceeded(_total, _limits);
        }

        private long RatioLimit(long compressedBytes)
        {
            var limit = compressedBytes * _limits.MaxCompressionRatio;
            return Math.Max(PackageLimits.RatioExemptBytes, limit >= long.MaxValue ? long.MaxValue : (long)limit);
        }

        private PackageLimitExceededException RatioExceeded(string what, long compressedBytes) =>
            new(PackageLimit.CompressionRatio,
                $"{char.ToUpperInvariant(what[0])}{what.Substring(1)} inflates to more than {_limits.MaxCompressionRatio.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)} times its compressed size of {PackageLimits.FormatBytes(compressedBytes)} (compression ratio limit; a zip bomb?). Nothing was extracted.");
    }
}
