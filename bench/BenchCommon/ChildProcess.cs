using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;

namespace SleapRtc.Bench.Common;

/// <summary>
/// A process a bench (or a test using a bench's child modes) starts: a bench program again in a child mode, or a
/// helper, optionally inside a named network namespace. It talks in stdout lines: first a ready line ("READY ..."
/// or a helper's own tag), then events. Closing stdin asks it to stop; <see cref="KillHard"/> is kill -9.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly BlockingCollection<string> _lines = new();
    private readonly ConcurrentQueue<string> _transcript = new();
    private readonly Task _pump;
    private bool _disposed;

    private ChildProcess(Process process, string name)
    {
        Process = process;
        Name = name;
        _pump = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                _transcript.Enqueue(line);
                Line?.Invoke(line);
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
    /// <summary>What followed the ready tag on its line.</summary>
    public string Ready { get; private set; } = "";
    /// <summary>Every stdout line, raised on the reading thread.</summary>
    public event Action<string>? Line;

    /// <summary>Starts <paramref name="command"/> in <paramref name="netns"/> (null: this namespace) and waits for its ready line.</summary>
    public static ChildProcess Start(string name, string? netns, IReadOnlyDictionary<string, string>? environment, string readyTag, TimeSpan timeout,
        params string[] command)
    {
        var start = new ProcessStartInfo(netns is null ? command[0] : "/usr/sbin/ip")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (netns is not null) foreach (var a in new[] { "netns", "exec", netns, command[0] }) start.ArgumentList.Add(a);
        foreach (var a in command.Skip(1)) start.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;
        var child = new ChildProcess(Process.Start(start)!, name);
        child.Ready = child.WaitFor(readyTag, timeout);
        return child;
    }

    /// <summary>
    /// Starts the bench <paramref name="program"/> (its assembly) again in a child mode, inside <paramref name="netns"/>
    /// (null: this namespace), and waits for its READY line.
    /// </summary>
    public static ChildProcess StartProgram(Assembly program, string name, string? netns, IReadOnlyDictionary<string, string>? environment,
        params string[] arguments) =>
        Start(name, netns, environment, "READY", TimeSpan.FromSeconds(60), ProgramCommand(program).Concat(arguments).ToArray());

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

    /// <summary>kill -9 of this process alone: it gets no chance to clean up or say goodbye.</summary>
    public void KillHard()
    {
        try { Process.Kill(entireProcessTree: false); } catch (InvalidOperationException) { }
        Process.WaitForExit(10_000);
    }

    /// <summary>Closes stdin (the stop request) and waits for the exit.</summary>
    public bool Stop(TimeSpan timeout)
    {
        try { Process.StandardInput.Close(); } catch (IOException) { }
        return Process.WaitForExit((int)timeout.TotalMilliseconds);
    }

    /// <summary>
    /// How to start the program again: its apphost when this process is that apphost, else the dotnet host with its
    /// dll (under dotnet run or dotnet test, or when a test references the bench).
    /// </summary>
    private static string[] ProgramCommand(Assembly program)
    {
        var dll = program.Location;
        var self = Environment.ProcessPath ?? "dotnet";
        var selfName = Path.GetFileNameWithoutExtension(self);
        if (selfName == Path.GetFileNameWithoutExtension(dll)) return new[] { self };
        var dotnet = selfName == "dotnet" ? self : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        // Referenced from a test project, the dll lies among the test's files: any runtimeconfig there names the same runtime.
        var config = Path.ChangeExtension(dll, ".runtimeconfig.json");
        if (!File.Exists(config)) config = Directory.GetFiles(Path.GetDirectoryName(dll)!, "*.runtimeconfig.json").First();
        return new[] { dotnet, "exec", "--runtimeconfig", config, dll };
    }

    /// <summary>Asks the process to stop (stdin closed) and gives it 20 s before it and its children are killed.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!Stop(TimeSpan.FromSeconds(20)))
        {
            try { Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Process.WaitForExit(5000);
        }
        _pump.Wait(TimeSpan.FromSeconds(5));
        Process.Dispose();
    }
}
