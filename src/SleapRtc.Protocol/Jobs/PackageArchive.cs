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
/// other special files; entries are streamed to disk one by one.
/// </summary>
public static class PackageArchive
{
    private const int UnixFileTypeMask = 0xF000;
    private const int UnixRegularFile = 0x8000;
    private const int UnixDirectory = 0x4000;

    /// <returns>The full paths of the files written.</returns>
    public static IReadOnlyList<string> ExtractSafely(string zipPath, string destinationDirectory, CancellationToken cancellationToken = default)
    {
        var root = Path.GetFullPath(destinationDirectory);
        var rootWithSeparator = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        using var archive = ZipFile.OpenRead(zipPath);

        var plan = new List<(ZipArchiveEntry Entry, string Target, bool IsDirectory)>(archive.Entries.Count);
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
            plan.Add((entry, target, normalized.EndsWith('/')));
        }

        Directory.CreateDirectory(root);
        var written = new List<string>();
        foreach (var (entry, target, isDirectory) in plan)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (isDirectory)
            {
                Directory.CreateDirectory(target);
                continue;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using (var input = entry.Open())
            using (var output = new FileStream(target, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                input.CopyTo(output);
            written.Add(target);
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
}
