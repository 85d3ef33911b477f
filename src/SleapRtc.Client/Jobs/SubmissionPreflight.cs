using System.IO.Compression;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// What can be checked before connecting to anyone: the package is a zip a worker can train, and the models will
/// have somewhere to go. Failing here costs nothing and leaves nothing behind; failing after the upload costs the
/// upload, a worker's time and an empty output folder.
/// </summary>
public static class SubmissionPreflight
{
    /// <summary>The script a SLEAP training export carries; workers refuse packages without it.</summary>
    public const string TrainScriptName = "train-script.sh";

    /// <exception cref="PackageNotFoundException">There is no file at <paramref name="packagePath"/>.</exception>
    /// <exception cref="InvalidTrainingPackageException">Not a zip, or no train script in its top two levels.</exception>
    public static void CheckPackage(string packagePath)
    {
        if (!File.Exists(packagePath)) throw new PackageNotFoundException(packagePath);
        try
        {
            using var zip = ZipFile.OpenRead(packagePath);
            // Workers look at the top level and in one folder below it (SLEAP's "<name>/train-script.sh").
            var hasScript = zip.Entries.Any(e =>
                string.Equals(e.Name, TrainScriptName, StringComparison.Ordinal)
                && e.FullName.Split(new[] { '/', '\\' }, StringSplitOptions.RemoveEmptyEntries).Length <= 2);
            if (!hasScript) throw new InvalidTrainingPackageException(packagePath, $"the zip has no {TrainScriptName}");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidTrainingPackageException(packagePath, "it is not a zip file", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidTrainingPackageException(packagePath, "it cannot be read (" + e.Message + ")", e);
        }
    }

    /// <summary>
    /// The output path is, or can become, a folder this process may write to. Nothing is created: the job's folder
    /// appears only when results arrive. Writability is proved by creating and deleting a probe file in the nearest
    /// existing folder, the only test that holds for ACLs, read-only mounts and permissions alike.
    /// </summary>
    /// <exception cref="OutputPathNotWritableException">A file is in the way, or the folder cannot be written.</exception>
    public static void CheckOutputPath(string outputPath)
    {
        var existing = outputPath;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing))
                throw new OutputPathNotWritableException(outputPath, $"'{existing}' is a file, not a folder");
            var parent = Path.GetDirectoryName(existing);
            if (string.IsNullOrEmpty(parent)) throw new OutputPathNotWritableException(outputPath, "none of its folders exists");
            existing = parent!;
        }
        var probe = Path.Combine(existing, ".sleaprtc-write-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OutputPathNotWritableException(outputPath, $"'{existing}' cannot be written ({e.Message})", e);
        }
    }

    /// <summary>
    /// A -WorkerPackagePath names a package under the worker's data root: relative, without "..", in either separator
    /// style (the worker may run another OS). The worker checks again (existence, links out); this refuses what can
    /// never be right before anything connects.
    /// </summary>
    /// <exception cref="InvalidWorkerPackagePathException">Empty, absolute, or climbing out with "..".</exception>
    public static void CheckWorkerPackagePath(string relativePath)
    {
        if (string.IsNullOrWhiteSpace(relativePath)) throw new InvalidWorkerPackagePathException(relativePath, "it is empty");
        var absolute = relativePath[0] is '/' or '\\' || (relativePath.Length >= 2 && relativePath[1] == ':') || Path.IsPathRooted(relativePath);
        if (absolute) throw new InvalidWorkerPackagePathException(relativePath, "it is absolute; name it relative to the worker's data root");
        if (relativePath.Split('/', '\\').Any(segment => segment == ".."))
            throw new InvalidWorkerPackagePathException(relativePath, "it climbs out of the data root with '..'");
    }

    /// <exception cref="CheckpointNotFoundException">-ResumeFrom is not an existing folder.</exception>
    public static void CheckResumeFolder(string folder)
    {
        if (!Directory.Exists(folder)) throw new CheckpointNotFoundException(folder);
    }
}

/// <summary>A -WorkerPackagePath that can never name a package under a worker's data root.</summary>
public sealed class InvalidWorkerPackagePathException : SleapRtcException
{
    public InvalidWorkerPackagePathException(string path, string why)
        : base("InvalidWorkerPackagePath", SleapRtcErrorKind.InvalidArgument,
            $"-WorkerPackagePath '{path}' is not allowed: {why}.",
            "Give the package's path relative to the worker's -DataRoot, for example 'lab/labels.v001.pkg.zip'.")
    {
    }
}

/// <summary>-ResumeFrom names no folder.</summary>
public sealed class CheckpointNotFoundException : SleapRtcException
{
    public CheckpointNotFoundException(string folder)
        : base("CheckpointNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"The checkpoint folder '{folder}' does not exist.",
            "Pass the model folder of an earlier run (it holds best.ckpt), as Submit-SleapTraining or Receive-SleapJob returned it.")
    {
    }
}
