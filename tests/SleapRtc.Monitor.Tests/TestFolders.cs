namespace SleapRtc.Monitor.Tests;

/// <summary>The repository's fixtures (stand-in trainer and tracker, recorded nvidia-smi), found from the test binaries.</summary>
internal static class RepoFixtures
{
    public static string Root { get; } = FindRoot();

    public static string SleapNn => Path.Combine(Root, "tests", "fixtures", "sleap-nn");
    public static string NvidiaSmi => Path.Combine(Root, "tests", "fixtures", "nvidia-smi");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("SleapRtc.sln not found above the test binaries.");
    }
}

/// <summary>A temporary folder of one test, removed with everything in it when the test ends.</summary>
internal sealed class ScratchFolder : IDisposable
{
    public ScratchFolder(string prefix)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
