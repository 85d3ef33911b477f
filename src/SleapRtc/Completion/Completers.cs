using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Completion;

/// <summary>Completes -RoomId from the rooms saved on this machine and the rooms of workers in this session.</summary>
public sealed class RoomIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var rooms = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var room in ModuleData.Credentials().List())
            rooms[room.RoomId] = DescribeRoom(room);
        foreach (var known in KnownPeers.RoomsOfThisSession())
            rooms.TryAdd(known, $"room of a worker started in this session");
        return CompletionText.Matching(wordToComplete, rooms);
    }

    private static string DescribeRoom(RoomCredentials room)
    {
        var name = string.IsNullOrEmpty(room.Name) ? room.RoomId : room.Name;
        return room.Server is null ? name : $"{name} on {room.Server}";
    }
}

/// <summary>Completes -WorkerId with the peer ids of workers known in the room named by -RoomId (or any room).</summary>
public sealed class WorkerIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var roomId = fakeBoundParameters.Contains("RoomId") ? fakeBoundParameters["RoomId"]?.ToString() : null;
        var peers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var worker in KnownPeers.Workers(roomId))
            peers[worker.PeerId] = $"{worker.GpuModel} ({worker.GpuMemoryMB} MB), {worker.Status}";
        return CompletionText.Matching(wordToComplete, peers);
    }
}

/// <summary>Completes -PackagePath with *.zip files and the folders that may contain them.</summary>
public sealed class PackagePathCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var word = wordToComplete.Trim('\'', '"');
        var currentDirectory = SessionLocation.Current();
        var typedDirectory = Path.GetDirectoryName(word) ?? "";
        var searchDirectory = Path.GetFullPath(Path.Combine(currentDirectory, typedDirectory));
        if (!Directory.Exists(searchDirectory)) yield break;
        var prefix = Path.GetFileName(word);

        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        foreach (var directory in Directory.EnumerateDirectories(searchDirectory).OrderBy(d => d, StringComparer.Ordinal))
        {
            var name = Path.GetFileName(directory);
            if (!name.StartsWith(prefix, comparison)) continue;
            var text = Path.Combine(typedDirectory, name) + Path.DirectorySeparatorChar;
            yield return new CompletionResult(CompletionText.Quote(text), name, CompletionResultType.ProviderContainer, directory);
        }
        foreach (var file in Directory.EnumerateFiles(searchDirectory, "*.zip").OrderBy(f => f, StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (!name.StartsWith(prefix, comparison)) continue;
            var text = Path.Combine(typedDirectory, name);
            if (typedDirectory.Length == 0) text = "." + Path.DirectorySeparatorChar + name;
            yield return new CompletionResult(CompletionText.Quote(text), name, CompletionResultType.ProviderItem, file);
        }
    }
}

internal static class CompletionText
{
    public static IEnumerable<CompletionResult> Matching(string wordToComplete, IDictionary<string, string> candidates)
    {
        var pattern = new WildcardPattern(wordToComplete.Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        foreach (var pair in candidates)
        {
            if (pattern.IsMatch(pair.Key))
                yield return new CompletionResult(Quote(pair.Key), pair.Key, CompletionResultType.ParameterValue, pair.Value);
        }
    }

    /// <summary>Quotes text that the parser would otherwise split or interpret.</summary>
    public static string Quote(string text) =>
        text.IndexOfAny(new[] { ' ', '\t', '$', '`', '\'', '"', ';', '(', ')', '{', '}', '@', '&', '#', ',' }) >= 0
            ? "'" + text.Replace("'", "''") + "'"
            : text;
}

/// <summary>The current file-system location of the calling runspace (completers run on the pipeline thread).</summary>
internal static class SessionLocation
{
    public static string Current()
    {
        try
        {
            using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
            var path = ps.AddScript("$ExecutionContext.SessionState.Path.CurrentFileSystemLocation.ProviderPath").Invoke()
                .FirstOrDefault()?.BaseObject as string;
            if (!string.IsNullOrEmpty(path)) return path!;
        }
        catch (Exception ex) when (ex is PSInvalidOperationException or InvalidOperationException) { }
        return Environment.CurrentDirectory;
    }
}
