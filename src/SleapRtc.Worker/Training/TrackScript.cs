using System.Text.RegularExpressions;

namespace SleapRtc.Worker.Training;

/// <summary>One "sleap-nn track" command of a track-script.sh: its arguments (after "track") and its output file.</summary>
public sealed record TrackCommand(IReadOnlyList<string> Arguments, string OutputPath);

/// <summary>The script names a path outside the unpacked package, or is otherwise unusable.</summary>
public sealed class UnsafeTrackScriptException : Exception
{
    public UnsafeTrackScriptException(string message) : base(message) { }
}

/// <summary>
/// Reads the inference commands of a classic track package's track-script.sh. Like train-script.sh it is
/// parsed, never run by a shell. Accepted spellings: "sleap-nn track" and "sleap-nn-track". Every path the
/// worker hands the tracker must resolve inside the package folder: absolute paths, ".." and options that
/// point elsewhere are refused. When a command names no output (-o), the worker adds
/// "&lt;data stem&gt;.predictions.slp", the name classic's result glob looks for.
/// </summary>
public static class TrackScript
{
    public const string FileName = "track-script.sh";
    public const string PredictionsSuffix = ".predictions.slp";
    private static readonly Regex Command = new(@"^\s*(?:sleap-nn\s+track|sleap-nn-track)(?:\s+(?<args>.*))?$", RegexOptions.CultureInvariant);
    private static readonly HashSet<string> DataOptions = new(StringComparer.Ordinal) { "--data_path", "--data-path", "-i" };
    private static readonly HashSet<string> OutputOptions = new(StringComparer.Ordinal) { "-o", "--output_path", "--output-path", "--output" };

    /// <param name="scriptText">The script's contents.</param>
    /// <param name="packageDirectory">The unpacked package; every path must stay inside it.</param>
    public static IReadOnlyList<TrackCommand> Parse(string scriptText, string packageDirectory)
    {
        var root = Path.GetFullPath(packageDirectory);
        var commands = new List<TrackCommand>();
        foreach (var line in TrainScript.JoinContinuations(scriptText))
        {
            var match = Command.Match(line);
            if (!match.Success) continue;
            var args = TrainScript.Tokenize(match.Groups["args"].Value);
            string? data = null, output = null;
            for (var i = 0; i < args.Count; i++)
            {
                var (option, value, inline) = SplitOption(args, i);
                if (DataOptions.Contains(option) && value is not null) data = value;
                if (OutputOptions.Contains(option) && value is not null) output = value;
                if (!inline && value is not null && (DataOptions.Contains(option) || OutputOptions.Contains(option))) i++;
            }
            foreach (var token in args) RequireInside(root, token);
            if (data is null) throw new UnsafeTrackScriptException($"A '{line.Trim()}' line names no --data_path.");
            var arguments = new List<string> { "track" };
            arguments.AddRange(args);
            if (output is null)
            {
                output = StemOf(data) + PredictionsSuffix;
                arguments.Add("-o");
                arguments.Add(output);
            }
            commands.Add(new TrackCommand(arguments, Path.GetFullPath(Path.Combine(root, output))));
        }
        return commands;
    }

    private static (string Option, string? Value, bool Inline) SplitOption(IReadOnlyList<string> args, int i)
    {
        var token = args[i];
        var equals = token.StartsWith("--", StringComparison.Ordinal) ? token.IndexOf('=') : -1;
        if (equals > 0) return (token.Substring(0, equals), token.Substring(equals + 1), true);
        return (token, i + 1 < args.Count ? args[i + 1] : null, false);
    }

    /// <summary>Any token that reads as a path (or an option's "=path") must resolve inside the package.</summary>
    private static void RequireInside(string root, string token)
    {
        var value = token.StartsWith("--", StringComparison.Ordinal) && token.IndexOf('=') is > 0 and var eq ? token.Substring(eq + 1) : token;
        if (value.Length == 0 || (value.StartsWith('-') && !value.Contains('/') && !value.Contains('\\'))) return;
        var normalized = value.Replace('\\', '/');
        var rooted = normalized.StartsWith('/') || normalized.StartsWith('~') || (normalized.Length >= 2 && normalized[1] == ':');
        var escapes = normalized.Split('/').Any(s => s == "..");
        var full = rooted ? value : Path.GetFullPath(Path.Combine(root, normalized));
        var inside = !rooted && !escapes && (full == root || full.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal));
        if (!inside)
            throw new UnsafeTrackScriptException($"{FileName} names '{value}', which is outside the package; paths must be relative to the package folder.");
    }

    private static string StemOf(string dataPath)
    {
        var name = Path.GetFileName(dataPath.Replace('\\', '/'));
        var stem = Path.GetFileNameWithoutExtension(name);
        return stem.Length == 0 ? "predictions" : stem;
    }
}
