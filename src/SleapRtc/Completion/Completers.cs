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
        var roomId = TypedArgument.Text(commandAst, fakeBoundParameters, "RoomId");
        var peers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var worker in KnownPeers.Workers(roomId))
            peers[worker.PeerId] = $"{worker.GpuModel} ({worker.GpuMemoryMB} MB), {worker.Status}";
        return CompletionText.Matching(wordToComplete, peers);
    }
}

/// <summary>
/// Completes -Server with the signaling servers this machine knows: the servers of this session, those saved with
/// rooms and SLEAP_RTC_SIGNALING_URL. Never file names: with nothing known the list is empty.
/// </summary>
public sealed class ServerCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var servers = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var server in SessionServers())
        {
            servers[server.LocalUrl] = $"server started in this session (port {server.Port})";
            servers.TryAdd(server.Url, $"server started in this session, as other machines reach it (port {server.Port})");
        }
        if (CredentialResolver.ServerFromEnvironment() is { } fromEnvironment) servers.TryAdd(fromEnvironment, "from the environment (SLEAP_RTC_SIGNALING_URL)");
        foreach (var room in ModuleData.Credentials().List())
        {
            if (!string.IsNullOrEmpty(room.Server)) servers.TryAdd(room.Server!, $"server of saved room {room.RoomId}");
        }
        return CompletionText.Matching(wordToComplete, servers).ToList();
    }

    internal static IReadOnlyList<RunningServer> SessionServers() =>
        SessionRegistry.Find(System.Management.Automation.Runspaces.Runspace.DefaultRunspace)?.Services<RunningServer>()
        ?? (IReadOnlyList<RunningServer>)Array.Empty<RunningServer>();
}

/// <summary>
/// Completes -Port with the ports of this session's signaling servers (and, for Start-SleapSignalingServer, the
/// default 8080 and 0 for any free port). Never file names: with nothing known the list is empty.
/// </summary>
public sealed class PortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var ports = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var server in ServerCompleter.SessionServers())
            ports[server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)] = $"server started in this session ({server.Url})";
        if (string.Equals(commandName, "Start-SleapSignalingServer", StringComparison.OrdinalIgnoreCase))
        {
            ports.TryAdd(EmbeddedServer.PreferredPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "the default port");
            ports.TryAdd("0", "any free port, chosen by the system");
        }
        return CompletionText.Matching(wordToComplete, ports).ToList();
    }
}

/// <summary>
/// The text the user typed for another parameter of the command being completed. fakeBoundParameters holds values
/// already converted by the parser, so a room id like 2e245701 arrives as the Double 2.45701E+250 and 00123456 as
/// the Int32 123456; the command's syntax tree still has the characters as typed.
/// </summary>
internal static class TypedArgument
{
    public static string? Text(CommandAst? command, IDictionary fakeBoundParameters, string parameterName)
    {
        if (command is not null)
        {
            var elements = command.CommandElements;
            for (var i = 0; i < elements.Count; i++)
            {
                if (elements[i] is not CommandParameterAst parameter || !Names(parameter, parameterName)) continue;
                var argument = parameter.Argument ?? (i + 1 < elements.Count ? elements[i + 1] as ExpressionAst : null);
                switch (argument)
                {
                    case StringConstantExpressionAst text: return text.Value;
                    case ConstantExpressionAst literal: return literal.Extent.Text;
                }
                break; // a variable or expression: its value, evaluated by the completion engine, is below
            }
        }
        return fakeBoundParameters.Contains(parameterName) ? fakeBoundParameters[parameterName]?.ToString() : null;
    }

    // -RoomId, or an unambiguous prefix of it as PowerShell accepts (-Room).
    private static bool Names(CommandParameterAst parameter, string parameterName) =>
        parameter.ParameterName.Length >= 2 && parameterName.StartsWith(parameter.ParameterName, StringComparison.OrdinalIgnoreCase);
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
