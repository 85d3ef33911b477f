namespace SleapRtc.Worker.Training;

/// <summary>A path from a package (train-script.sh, OUTPUT_DIR) that would make the trainer read or write outside it.</summary>
public sealed class PathOutsidePackageException : Exception
{
    public PathOutsidePackageException(string what, string value, string reason)
        : base($"The {what} '{value}' was refused: {reason}. Paths the trainer gets must stay inside the package.")
    {
        What = what;
        Value = value;
        Reason = reason;
    }

    /// <summary>Why it was refused ("absolute paths are not allowed", "'x' is a symbolic link", ...).</summary>
    public string Reason { get; }
    public string What { get; }
    public string Value { get; }
}

/// <summary>
/// Confines every path the worker hands the trainer to the unpacked package: relative, no '..' out of it, and
/// no symbolic link on the way (the package itself cannot hold links, but its folder could be reached through
/// one, or gain one later), so "--config-name ../../../etc/passwd" or an absolute path never reaches sleap-nn.
/// </summary>
public static class PackagePaths
{
    /// <summary>Config files may be named without their extension; the trainer then tries these.</summary>
    private static readonly string[] ConfigExtensions = { "", ".yaml", ".yml", ".json" };

    /// <summary>The full path of <paramref name="relativePath"/> inside <paramref name="packageRoot"/>.</summary>
    /// <exception cref="PathOutsidePackageException">It is absolute, leaves the package or passes a symbolic link.</exception>
    public static string Resolve(string packageRoot, string relativePath, string what)
    {
        var normalized = relativePath.Replace('\\', '/');
        if (normalized.Length == 0) throw new PathOutsidePackageException(what, relativePath, "it is empty");
        if (normalized.StartsWith('/') || normalized.StartsWith('~') || (normalized.Length >= 2 && normalized[1] == ':'))
            throw new PathOutsidePackageException(what, relativePath, "absolute paths are not allowed");
        var root = Path.GetFullPath(packageRoot).TrimEnd(Path.DirectorySeparatorChar);
        var full = Path.GetFullPath(Path.Combine(root, normalized));
        if (full != root && !full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new PathOutsidePackageException(what, relativePath, "it points outside the package");

        // Walk down from the root: any existing link on the way could lead anywhere.
        var current = root;
        foreach (var segment in full.Substring(root.Length).Split(new[] { Path.DirectorySeparatorChar }, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, segment);
            if (IsLink(current)) throw new PathOutsidePackageException(what, relativePath, $"'{segment}' is a symbolic link");
        }
        return full;
    }

    /// <summary>Checks a train-script config name and the files the trainer may take for it (name plus a config extension).</summary>
    public static void CheckConfig(string workDirectory, string configName)
    {
        var full = Resolve(workDirectory, configName, "config name");
        foreach (var extension in ConfigExtensions)
            if (extension.Length > 0 && IsLink(full + extension))
                throw new PathOutsidePackageException("config name", configName, $"'{Path.GetFileName(full + extension)}' is a symbolic link");
    }

    private static bool IsLink(string path)
    {
        try
        {
            if (!File.Exists(path) && !Directory.Exists(path)) return LinkWithoutTarget(path);
            return (File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
    }

    // A dangling link exists as an entry even though neither File.Exists nor Directory.Exists sees it.
    private static bool LinkWithoutTarget(string path)
    {
        var parent = Path.GetDirectoryName(path);
        if (parent is null || !Directory.Exists(parent)) return false;
        var name = Path.GetFileName(path);
        return Directory.EnumerateFileSystemEntries(parent, name).Any(e => Path.GetFileName(e) == name);
    }
}
