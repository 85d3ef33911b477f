using System.Globalization;
using SleapRtc.Bench.Common;

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
/// This program started again in a child mode (server, worker, client): the first "READY ..." line, then events
/// (see <see cref="ChildModes"/>); the server and worker modes also answer "GC" with a resource sample.
/// </summary>
public static class SoakChildProcess
{
    /// <summary>Starts this program in a child mode and waits for its READY line.</summary>
    public static ChildProcess Start(string name, IReadOnlyDictionary<string, string>? environment, params string[] arguments) =>
        ChildProcess.StartProgram(typeof(SoakChildProcess).Assembly, name, null, environment, arguments);

    /// <summary>Samples a child in the server or worker mode (those answer "GC"); see <see cref="ResourceSample"/>.</summary>
    public static ResourceSample Sample(this ChildProcess child)
    {
        var before = ProcStatus(child.Process.Id);
        child.Process.StandardInput.WriteLine("GC");
        child.Process.StandardInput.Flush();
        var heap = child.WaitFor("HEAP", TimeSpan.FromSeconds(60)).Split(' ');
        var after = ProcStatus(child.Process.Id);
        return new ResourceSample(before.Rss, after.Rss, after.Anon, after.File, MB(heap[0]), MB(heap[1]), int.Parse(heap[2], CultureInfo.InvariantCulture),
            Directory.GetFileSystemEntries($"/proc/{child.Process.Id}/fd").Length, after.Threads);
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
}
