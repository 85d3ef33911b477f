using System.Globalization;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// Where one job's models go: a folder of its own under the output path, named so a person can tell jobs apart
/// ("labels.v001-20261202-141503-3f9a2c1b": package, local start time, short job id). Two submissions with the same
/// -OutputPath therefore never overwrite each other's models.
/// </summary>
public static class JobOutputFolder
{
    private const int ShortIdLength = 8;

    /// <summary>The folder name for a job (without creating anything).</summary>
    public static string Name(string packagePath, string jobId, DateTimeOffset startedAt)
    {
        var package = Path.GetFileNameWithoutExtension(packagePath);
        var shortId = new string(jobId.Where(char.IsLetterOrDigit).ToArray());
        if (shortId.StartsWith("job", StringComparison.OrdinalIgnoreCase)) shortId = shortId.Substring(3);
        if (shortId.Length > ShortIdLength) shortId = shortId.Substring(0, ShortIdLength);
        return $"{package}-{startedAt.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{shortId}";
    }

    /// <summary>Creates the job's folder under <paramref name="outputRoot"/>; a numbered suffix keeps it new if the name is taken.</summary>
    public static string Create(string outputRoot, string packagePath, string jobId, DateTimeOffset startedAt)
    {
        var baseName = Path.Combine(outputRoot, Name(packagePath, jobId, startedAt));
        var path = baseName;
        for (var n = 2; Directory.Exists(path) || File.Exists(path); n++) path = baseName + "-" + n.ToString(CultureInfo.InvariantCulture);
        Directory.CreateDirectory(path);
        return path;
    }
}
