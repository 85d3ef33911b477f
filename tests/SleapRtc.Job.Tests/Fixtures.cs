using System.IO.Compression;
using System.Text;

namespace SleapRtc.Job.Tests;

/// <summary>Paths of the stand-in tools in tests/fixtures and helpers that build training packages.</summary>
internal static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string SleapNn => Path.Combine(RepoRoot, "tests", "fixtures", "sleap-nn");
    public static string NvidiaSmi => Path.Combine(RepoRoot, "tests", "fixtures", "nvidia-smi");

    public static string NewTempDirectory(string purpose)
    {
        var path = Path.Combine(Path.GetTempPath(), "sleaprtc-tests", purpose + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>
    /// A package shaped like SLEAP's export: a zip holding folder &lt;name&gt;/ with train-script.sh, one JSON
    /// config per entry and a labels file. Config contents that are not JSON make the stand-in trainer fail.
    /// </summary>
    public static string BuildPackage(string directory, string name, IReadOnlyDictionary<string, string> configs,
        string scriptCommand = "sleap-nn train", int extraBytes = 0, bool topFolder = true)
    {
        var zipPath = Path.Combine(directory, name + ".zip");
        using var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create);
        var prefix = topFolder ? name + "/" : "";
        var script = new StringBuilder("#!/bin/bash\n");
        foreach (var (configName, content) in configs)
        {
            script.Append(scriptCommand).Append(" --config-name ").Append(configName).Append(" --config-dir .\n");
            Write(zip, prefix + configName, Encoding.UTF8.GetBytes(content));
        }
        Write(zip, prefix + "train-script.sh", Encoding.UTF8.GetBytes(script.ToString()));
        var labels = new byte[Math.Max(16, extraBytes)];
        new Random(42).NextBytes(labels);
        Write(zip, prefix + "labels.v001.pkg.slp", labels, CompressionLevel.NoCompression);
        return zipPath;
    }

    /// <summary>Polls until the condition holds; throws after the room fixture's wait so no test hangs.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + RoomFixture.Wait;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(20);
        }
    }

    public static string Config(int epochs) => "{\"trainer_config\": {\"max_epochs\": " + epochs + "}}";

    private static void Write(ZipArchive zip, string name, byte[] content, CompressionLevel level = CompressionLevel.Fastest)
    {
        var entry = zip.CreateEntry(name, level);
        using var stream = entry.Open();
        stream.Write(content);
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("SleapRtc.sln not found above the test binaries.");
    }
}
