using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace SleapRtc.Soak;

/// <summary>
/// One sample of a process's resources: RSS as found, then, after a full compacting collection in the process, its
/// RSS again, the managed heap (live objects), the memory the GC keeps committed and the methods jitted so far
/// (code the JIT recompiles at higher tiers as a run goes on is native memory no collection returns); open file
/// descriptors and threads from /proc.
/// </summary>
public readonly record struct ResourceSample(double RssMB, double RssAfterGcMB, double RssAnonMB, double RssFileMB, double ManagedHeapMB,
    double GcCommittedMB, int JittedMethods, int OpenFiles, int Threads)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"RSS {RssMB:0.0} MB ({RssAfterGcMB:0.0} after GC: {RssAnonMB:0.0} anon + {RssFileMB:0.0} file), heap {ManagedHeapMB:0.00} MB (GC committed {GcCommittedMB:0.0}), {JittedMethods} methods jitted, {OpenFiles} fds, {Threads} threads");
}

/// <summary>
/// This program started again in a child mode (server, worker, client), talking over stdout lines: the first
/// "READY ..." line, then events. Closing stdin asks it to stop; <see cref="KillHard"/> is kill -9.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly BlockingCollection<string> _lines = new();
    private readonly ConcurrentQueue<string> _transcript = new();
    private readonly Task _pump;

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
    /// <summary>What followed READY on the first line.</summary>
    public string Ready { get; private set; } = "";
    /// <summary>Every stdout line, raised on the reading thread.</summary>
    public event Action<string>? Line;

    /// <summary>Starts this program in a child mode and waits for its READY line.</summary>
    public static ChildProcess Start(string name, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var (host, prefix) = SelfCommand();
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in prefix.Concat(arguments)) start.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;
        var child = new ChildProcess(Process.Start(start)!, name);
        child.Ready = child.WaitFor("READY", TimeSpan.FromSeconds(60));
        return child;
    }

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

    public string Transcript() => string.Join("\n", _transcript.TakeLast(60));

    /// <summary>kill -9: the process gets no chance to clean up or say goodbye.</summary>
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

    /// <summary>Samples a child in the server or worker mode (those answer "GC"); see <see cref="ResourceSample"/>.</summary>
    public ResourceSample Sample()
    {
        var before = ProcStatus(Process.Id);
        Process.StandardInput.WriteLine("GC");
        Process.StandardInput.Flush();
        var heap = WaitFor("HEAP", TimeSpan.FromSeconds(60)).Split(' ');
        var after = ProcStatus(Process.Id);
        return new ResourceSample(before.Rss, after.Rss, after.Anon, after.File, MB(heap[0]), MB(heap[1]), int.Parse(heap[2], CultureInfo.InvariantCulture),
            Directory.GetFileSystemEntries($"/proc/{Process.Id}/fd").Length, after.Threads);
    }

    private static double MB(string bytes) => long.Parse(bytes, CultureInfo.InvariantCulture) / 1e6;

    /// <summary>RSS (MB), split into anonymous memory (heaps, jitted code, stacks) and file pages (the runtime's and the
    /// program's mapped images), and the thread count.</summary>
    private static (double Rss, double Anon, double File, int Threads) ProcStatus(int pid)
    {
        double rss = 0, anon = 0, file = 0;
        var threads = 0;
        foreach (var line in System.IO.File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line) / 1024.0;
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = Kb(line) / 1024.0;
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal)) file = Kb(line) / 1024.0;
            else if (line.StartsWith("Threads:", StringComparison.Ordinal)) threads = (int)Kb(line);
        }
        return (rss, anon, file, threads);
    }

    private static long Kb(string statusLine) =>
        long.Parse(statusLine.Substring(statusLine.IndexOf(':') + 1).Trim().Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>How to start this program again: its apphost, or the dotnet host with its dll (under dotnet run, dotnet test).</summary>
    private static (string Host, string[] Prefix) SelfCommand()
    {
        var dll = typeof(ChildProcess).Assembly.Location;
        var self = Environment.ProcessPath ?? "dotnet";
        var selfName = Path.GetFileNameWithoutExtension(self);
        if (selfName == Path.GetFileNameWithoutExtension(dll)) return (self, Array.Empty<string>());
        var dotnet = selfName == "dotnet" ? self : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        // Referenced from a test project, the dll lies among the test's files: any runtimeconfig there names the same runtime.
        var config = Path.ChangeExtension(dll, ".runtimeconfig.json");
        if (!File.Exists(config)) config = Directory.GetFiles(Path.GetDirectoryName(dll)!, "*.runtimeconfig.json").First();
        return (dotnet, new[] { "exec", "--runtimeconfig", config, dll });
    }

    public void Dispose()
    {
        if (!Stop(TimeSpan.FromSeconds(20))) KillHard();
        _pump.Wait(TimeSpan.FromSeconds(5));
        Process.Dispose();
    }
}
