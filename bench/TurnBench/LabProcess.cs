using System.Collections.Concurrent;
using System.Diagnostics;

namespace SleapRtc.TurnLab;

/// <summary>
/// A process of the lab (this program in a child mode, or a helper) started inside one named network namespace,
/// talking in stdout lines: the first "READY ..." (or "ready") line, then events. Closing stdin asks it to stop.
/// </summary>
public sealed class LabProcess : IDisposable
{
    private readonly BlockingCollection<string> _lines = new();
    private readonly ConcurrentQueue<string> _transcript = new();

    private LabProcess(Process process, string name)
    {
        Process = process;
        Name = name;
        _ = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                _transcript.Enqueue(line);
                _lines.Add(line);
            }
            _lines.CompleteAdding();
        });
        _ = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line) _transcript.Enqueue("stderr: " + line);
        });
    }

    public Process Process { get; }
    public string Name { get; }

    /// <summary>Starts <paramref name="command"/> in <paramref name="netns"/> (null: this namespace) and waits for its ready line.</summary>
    public static LabProcess Start(string name, string? netns, IReadOnlyDictionary<string, string>? environment, string readyTag, TimeSpan timeout,
        params string[] command)
    {
        var start = new ProcessStartInfo(netns is null ? command[0] : "/usr/sbin/ip")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (netns is not null) foreach (var a in new[] { "netns", "exec", netns, command[0] }) start.ArgumentList.Add(a);
        foreach (var a in command.Skip(1)) start.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;
        var process = new LabProcess(Process.Start(start)!, name);
        process.Ready = process.WaitFor(readyTag, timeout);
        return process;
    }

    /// <summary>This program again in a child mode, inside <paramref name="netns"/>.</summary>
    public static LabProcess StartChild(string name, string? netns, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var host = Environment.ProcessPath!;
        var prefix = Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? new[] { host, typeof(LabProcess).Assembly.Location }
            : new[] { host };
        // Started from a test host, this assembly is a dll next to the tests: run it with dotnet.
        if (Path.GetFileNameWithoutExtension(host) != "dotnet" && !host.EndsWith("TurnBench", StringComparison.Ordinal))
            prefix = new[] { "dotnet", typeof(LabProcess).Assembly.Location };
        return Start(name, netns, environment, "READY", TimeSpan.FromSeconds(60), prefix.Concat(arguments).ToArray());
    }

    /// <summary>What followed the ready tag on its line.</summary>
    public string Ready { get; private set; } = "";

    /// <summary>The rest of the next line that starts with the tag; earlier lines are skipped.</summary>
    public string WaitFor(string tag, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!_lines.TryTake(out var line, TimeSpan.FromMilliseconds(100)))
            {
                if (_lines.IsCompleted) break;
                continue;
            }
            if (line == tag) return "";
            if (line.StartsWith(tag + " ", StringComparison.Ordinal)) return line.Substring(tag.Length + 1);
        }
        throw new TimeoutException($"no {tag} line from {Name} within {timeout.TotalSeconds:0} s:\n{Transcript()}");
    }

    public string Transcript() => string.Join("\n", _transcript.TakeLast(80));

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { Process.StandardInput.Close(); } catch (IOException) { }
        if (!Process.WaitForExit(5000))
        {
            try { Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Process.WaitForExit(5000);
        }
        Process.Dispose();
    }
}
