using System.Globalization;
using System.IO.Compression;
using System.Text;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Jobs;

/// <summary>What to infer: the models, the data and the tracker options (sleap-nn track's own names).</summary>
public sealed class InferenceRequest
{
    /// <summary>Trained model folders (each holds a training_config and a checkpoint).</summary>
    public IReadOnlyList<string> ModelPaths { get; init; } = Array.Empty<string>();
    /// <summary>A .slp labels file or a video.</summary>
    public required string DataPath { get; init; }
    /// <summary>Frame ranges, sleap-nn's syntax: "0-100,200-300".</summary>
    public string? Frames { get; init; }
    public bool OnlySuggestedFrames { get; init; }
    public int? BatchSize { get; init; }
    public double? PeakThreshold { get; init; }
    /// <summary>Send to this inference space: it keeps the models, so the request carries only the data.</summary>
    public string? Space { get; init; }
}

/// <summary>
/// Builds the classic track package (§5.3): the data file, each model folder under models/&lt;name&gt;/ and a
/// track-script.sh with one "sleap-nn track" command. Unlike classic, the zip holds a top folder named like the
/// zip (classic workers look there, so they find the script) and the output is "&lt;data stem&gt;.predictions.slp"
/// (the name classic workers search for); both fix classic defects without changing the wire.
/// </summary>
public static class TrackPackage
{
    public const string ZipName = "track_package.zip";
    private static readonly string TopFolder = Path.GetFileNameWithoutExtension(ZipName);

    /// <summary>Writes the package into <paramref name="directory"/> and returns its path. Files stream into the zip; nothing is copied first.</summary>
    public static string Build(InferenceRequest request, string directory)
    {
        var zipPath = Path.Combine(directory, ZipName);
        var dataName = FileMetaInfo.WireSafeName(Path.GetFileName(request.DataPath));
        using var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create);
        // Video and labels are already compressed; storing them keeps a 1 GB upload from burning CPU.
        zip.CreateEntryFromFile(request.DataPath, TopFolder + "/" + dataName, CompressionLevel.NoCompression);
        var modelNames = new List<string>();
        foreach (var model in request.ModelPaths)
        {
            var name = UniqueName(Path.GetFileName(Path.GetFullPath(model).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)), modelNames);
            modelNames.Add(name);
            // The folder itself, so a model folder with no files still exists on the worker (the tracker reads the folder).
            zip.CreateEntry($"{TopFolder}/models/{name}/");
            foreach (var file in Directory.EnumerateFiles(model, "*", SearchOption.AllDirectories))
            {
                var relative = file.Substring(Path.GetFullPath(model).TrimEnd(Path.DirectorySeparatorChar).Length + 1).Replace('\\', '/');
                zip.CreateEntryFromFile(file, $"{TopFolder}/models/{name}/{relative}", CompressionLevel.Fastest);
            }
        }
        var script = zip.CreateEntry(TopFolder + "/track-script.sh");
        using (var writer = new StreamWriter(script.Open(), new UTF8Encoding(false)) { NewLine = "\n" })
            writer.Write(Script(request, dataName, modelNames));
        return zipPath;
    }

    /// <summary>The script text: one command with classic "\" continuations, paths relative to the package folder.</summary>
    public static string Script(InferenceRequest request, string dataName, IReadOnlyList<string> modelNames)
    {
        var lines = new List<string> { "sleap-nn track", $"--data_path {Quote(dataName)}" };
        lines.AddRange(modelNames.Select(m => $"--model_paths {Quote("models/" + m)}"));
        lines.Add($"-o {Quote(Path.GetFileNameWithoutExtension(dataName) + ".predictions.slp")}");
        if (request.OnlySuggestedFrames) lines.Add("--only_suggested_frames");
        if (!string.IsNullOrWhiteSpace(request.Frames)) lines.Add("--frames " + request.Frames!.Replace(" ", ""));
        if (request.BatchSize is { } batch) lines.Add("--batch_size " + batch.ToString(CultureInfo.InvariantCulture));
        if (request.PeakThreshold is { } peak) lines.Add("--peak_threshold " + peak.ToString("R", CultureInfo.InvariantCulture));
        return "#!/bin/bash\n" + string.Join(" \\\n  ", lines) + "\n";
    }

    // Classic splits on whitespace without quoting; quote only when a name needs it (our worker understands quotes).
    private static string Quote(string value) => value.Any(char.IsWhiteSpace) ? "\"" + value + "\"" : value;

    private static string UniqueName(string name, ICollection<string> taken)
    {
        if (name.Length == 0) name = "model";
        var candidate = name;
        for (var i = 2; taken.Contains(candidate); i++) candidate = name + "_" + i.ToString(CultureInfo.InvariantCulture);
        return candidate;
    }
}
