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
}
