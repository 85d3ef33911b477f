using System.Text.RegularExpressions;

namespace SleapRtc.Worker.Training;

/// <summary>
/// Reads the configs a SLEAP-exported train-script.sh trains, in order. The script is parsed, never run
/// (as classic does). Accepted spellings: "sleap-train", "sleap-nn train" and "sleap-nn-train"; the config is
/// the --config-name value, or, for the legacy "sleap-train config.json labels.slp" form, the first argument.
/// </summary>
public static class TrainScript
{
    public const string FileName = "train-script.sh";
    private static readonly Regex Command = new(@"^\s*(?:sleap-train|sleap-nn\s+train|sleap-nn-train)(?:\s+(?<args>.*))?$", RegexOptions.CultureInvariant);

    public static IReadOnlyList<string> ParseConfigs(string scriptText)
    {
        var configs = new List<string>();
        foreach (var line in JoinContinuations(scriptText))
        {
            var match = Command.Match(line);
            if (!match.Success) continue;
            var args = Tokenize(match.Groups["args"].Value);
            string? config = null;
            for (var i = 0; i < args.Count; i++)
            {
                if (args[i] == "--config-name" && i + 1 < args.Count) { config = args[i + 1]; break; }
                if (args[i].StartsWith("--config-name=", StringComparison.Ordinal)) { config = args[i].Substring("--config-name=".Length); break; }
            }
            config ??= args.FirstOrDefault(a => !a.StartsWith('-') && !a.Contains('='));
            if (!string.IsNullOrEmpty(config)) configs.Add(config!);
        }
        return configs;
    }

    /// <summary>The run name classic uses for a config: its file name without extension.</summary>
    public static string ConfigStem(string config) => Path.GetFileNameWithoutExtension(config.Replace('\\', '/'));

    internal static IEnumerable<string> JoinContinuations(string text)
    {
        var current = "";
        foreach (var raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            var line = raw.TrimEnd();
            if (line.EndsWith('\\')) { current += line.Substring(0, line.Length - 1) + " "; continue; }
            yield return current + line;
            current = "";
        }
        if (current.Length > 0) yield return current;
    }

    // Whitespace split with simple quote removal: the script is data, so no shell expansion ever happens.
    internal static List<string> Tokenize(string args)
    {
        var tokens = new List<string>();
        foreach (Match m in Regex.Matches(args, "\"([^\"]*)\"|'([^']*)'|(\\S+)"))
        {
            var token = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Success ? m.Groups[2].Value : m.Groups[3].Value;
            if (token == "#" || token.StartsWith('#')) break;
            tokens.Add(token);
        }
        return tokens;
    }
}
