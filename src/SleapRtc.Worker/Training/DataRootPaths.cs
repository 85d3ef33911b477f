namespace SleapRtc.Worker.Training;

/// <summary>A hello's worker_package_path that the worker refuses (outside the data root, missing, or no data root).</summary>
public sealed class BadWorkerPathException : Exception
{
    public BadWorkerPathException(string message) : base(message) { }
}

/// <summary>
/// Resolves a package name a client gives for a worker started with -DataRoot: relative, no '..', not absolute, no
/// symbolic link or junction on the way (so nothing outside the root is reachable), and an existing zip file. Only
/// reads the file system: a refused name touches nothing.
/// </summary>
public static class DataRootPaths
{
    /// <summary>Where the results of each job are also kept under the data root: &lt;root&gt;/jobs/&lt;job id&gt;.</summary>
    public const string JobsFolder = "jobs";

    /// <returns>The full path of the package.</returns>
    /// <exception cref="BadWorkerPathException">The worker has no data root, or the name is unsafe or missing.</exception>
    public static string ResolvePackage(string? dataRoot, string relativePath)
    {
        if (dataRoot is null)
            throw new BadWorkerPathException("This worker has no data root (start it with Start-SleapWorker -DataRoot); upload the package instead.");
        if (string.IsNullOrWhiteSpace(relativePath) || relativePath.IndexOf('\0') >= 0)
            throw new BadWorkerPathException("The worker package path is empty.");
        if (relativePath.Replace('\\', '/').Split('/').Any(s => s == ".."))
            throw new BadWorkerPathException($"The worker package path '{relativePath}' was refused: '..' is not allowed; name a file under the worker's data root.");
        string full;
        try
        {
            full = PackagePaths.Resolve(dataRoot, relativePath, "worker package path");
        }
        catch (PathOutsidePackageException e)
        {
            throw new BadWorkerPathException($"The worker package path '{relativePath}' was refused: {e.Reason}; name a file under the worker's data root.");
        }
        if (!File.Exists(full))
            throw new BadWorkerPathException($"The worker package path '{relativePath}' does not exist under the worker's data root.");
        return full;
    }
}
