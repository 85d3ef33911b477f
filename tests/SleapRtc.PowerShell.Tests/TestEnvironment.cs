using System.Runtime.CompilerServices;

namespace SleapRtc.PowerShell.Tests;

internal static class TestEnvironment
{
    /// <summary>Saved room credentials go to a private folder for this test run, never the user's real one.</summary>
    public static string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "sleaprtc-pstests-" + Guid.NewGuid().ToString("N"));

    public static string Fixture(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", name);

    /// <summary>A package shaped like SLEAP's export: &lt;name&gt;/train-script.sh, one JSON config per entry, a labels file.</summary>
    public static string BuildPackage(string directory, string name, params (string Config, int Epochs)[] configs) =>
        BuildPackage(directory, name, 0, configs);

    /// <param name="labelsBytes">Size of a random (incompressible) labels file; 0 for a small text one.</param>
    public static string BuildPackage(string directory, string name, int labelsBytes, params (string Config, int Epochs)[] configs)
    {
        Directory.CreateDirectory(directory);
        var zipPath = Path.Combine(directory, name + ".zip");
        using var zip = System.IO.Compression.ZipFile.Open(zipPath, System.IO.Compression.ZipArchiveMode.Create);
        var script = new System.Text.StringBuilder("#!/bin/bash\n");
        foreach (var (config, epochs) in configs)
        {
            script.Append("sleap-nn train --config-name ").Append(config).Append(" --config-dir .\n");
            Write(zip, $"{name}/{config}", "{\"trainer_config\": {\"max_epochs\": " + epochs + "}}");
        }
        Write(zip, $"{name}/train-script.sh", script.ToString());
        if (labelsBytes > 0)
        {
            var labels = new byte[labelsBytes];
            new Random(7).NextBytes(labels);
            using var stream = zip.CreateEntry($"{name}/labels.v001.pkg.slp", System.IO.Compression.CompressionLevel.NoCompression).Open();
            stream.Write(labels);
        }
        else
        {
            Write(zip, $"{name}/labels.v001.pkg.slp", new string('x', 4096));
        }
        return zipPath;
    }

    private static void Write(System.IO.Compression.ZipArchive zip, string entryName, string content)
    {
        using var writer = new StreamWriter(zip.CreateEntry(entryName).Open());
        writer.Write(content);
    }

    public static string NewDirectory(string purpose)
    {
        var path = Path.Combine(DataDirectory, purpose + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    [ModuleInitializer]
    internal static void Initialize()
    {
        Directory.CreateDirectory(DataDirectory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(DataDirectory, recursive: true); }
            catch (IOException) { } // a worker still holding a file: the OS temp cleaner gets it later
            catch (UnauthorizedAccessException) { }
        };
        Environment.SetEnvironmentVariable("SLEAP_RTC_DATA_DIR", DataDirectory);
        // WebRTC candidates on loopback only: tests never use a real interface.
        Environment.SetEnvironmentVariable("SLEAP_RTC_LOCAL_ADDRESSES", "127.0.0.1");
        // The stand-in trainer: fast epochs.
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.02");
        foreach (var name in new[] { "SLEAP_RTC_SIGNALING_URL", "SLEAP_RTC_SIGNALING_WS", "SLEAP_RTC_SIGNALING_HTTP", "SLEAP_RTC_ROOM_ID", "SLEAP_RTC_ROOM_TOKEN" })
            Environment.SetEnvironmentVariable(name, null);
    }
}
