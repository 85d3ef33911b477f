using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SleapRtc.Worker.Training;

/// <summary>
/// Asks a trainer to stop early the way sleap-nn (Lightning) understands: SIGINT, which ends the epoch loop and leaves
/// the best checkpoint written so far. The signal goes to every process of the tree, because the trainer is often
/// started through a wrapper script (pyenv, conda) that would not pass it on. Windows has no SIGINT for a process
/// without a console of its own: there the watchdog's kill ends it, and the checkpoints already on disk are kept.
/// </summary>
internal static class ProcessSignals
{
    private const int SigInt = 2;

    public static void InterruptTree(Process process)
    {
        if (OperatingSystem.IsWindows()) return;
        int root;
        try
        {
            if (process.HasExited) return;
            root = process.Id;
        }
        catch (InvalidOperationException) { return; }
        foreach (var pid in Descendants(root).Prepend(root))
        {
            try { _ = kill(pid, SigInt); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return; }
        }
    }

    /// <summary>The process ids below <paramref name="root"/>, read from /proc (Linux); elsewhere none, and only the root is signalled.</summary>
    private static IEnumerable<int> Descendants(int root)
    {
        if (!Directory.Exists("/proc")) return Array.Empty<int>();
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so read after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat.Substring(stat.LastIndexOf(')') + 2).Split(' ');
                if (fields.Length > 1 && int.TryParse(fields[1], out var parent))
                {
                    if (!children.TryGetValue(parent, out var list)) children[parent] = list = new List<int>();
                    list.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        var result = new List<int>();
        var pending = new Stack<int>(new[] { root });
        while (pending.Count > 0)
        {
            if (!children.TryGetValue(pending.Pop(), out var list)) continue;
            foreach (var child in list) { result.Add(child); pending.Push(child); }
        }
        return result;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
