using SleapRtc.Protocol.Logging;

namespace SleapRtc.Worker.Jobs;

/// <summary>A job folder no live worker holds: left behind by a worker that was killed or crashed.</summary>
public sealed record StaleJobFolder(string Path, DateTime LastWriteTimeUtc);

/// <summary>
/// Decides which stale job folders a starting worker keeps. Today nothing is kept (a killed job's package and
/// partial models are of no use to anyone); a results-retention policy of the job queue plugs in here.
/// </summary>
public interface IJobFolderRetention
{
    bool Keep(StaleJobFolder folder);
}

public static class JobFolderRetention
{
    /// <summary>Every stale folder is removed.</summary>
    public static IJobFolderRetention KeepNothing { get; } = new Nothing();

    /// <summary>Keeps a folder when either policy keeps it.</summary>
    public static IJobFolderRetention Either(IJobFolderRetention first, IJobFolderRetention second) => new Any(first, second);

    private sealed class Any : IJobFolderRetention
    {
        private readonly IJobFolderRetention _first, _second;
        public Any(IJobFolderRetention first, IJobFolderRetention second) { _first = first; _second = second; }
        public bool Keep(StaleJobFolder folder) => _first.Keep(folder) || _second.Keep(folder);
    }

    private sealed class Nothing : IJobFolderRetention
    {
        public bool Keep(StaleJobFolder folder) => false;
    }
}

/// <summary>
/// Who owns which job folder. A running job holds an exclusive lock on a marker file in its folder, and a worker
/// on one in its working directory, for as long as they live; the operating system releases the lock when the
/// process dies however it dies, so a folder whose marker can be locked by someone else belongs to no one.
/// </summary>
public sealed class FolderLock : IDisposable
{
    public const string JobMarker = ".sleaprtc-job.lock";
    public const string WorkerMarker = ".sleaprtc-worker.lock";
    /// <summary>Job folders are named job_&lt;12 hex&gt;; nothing else in a working directory is ever touched.</summary>
    public const string JobFolderPrefix = "job_";
    /// <summary>The folders of the default working directory, &lt;temp&gt;/SleapRtc/worker-&lt;peer id&gt;.</summary>
    public const string WorkerFolderPrefix = "worker-";
    /// <summary>A job folder without a marker may be one being created this instant; only older ones are stale.</summary>
    private static readonly TimeSpan UnmarkedGrace = TimeSpan.FromMinutes(1);

    private readonly FileStream _marker;
    private readonly string _folder;
    private readonly bool _removeFolderWhenEmpty;

    private FolderLock(FileStream marker, string folder, bool removeFolderWhenEmpty)
    {
        _marker = marker;
        _folder = folder;
        _removeFolderWhenEmpty = removeFolderWhenEmpty;
    }

    /// <summary>Creates the folder if needed and holds its marker until disposed (which removes the marker again).</summary>
    /// <exception cref="IOException">Another live process holds the folder.</exception>
    public static FolderLock Acquire(string folder, string marker, bool removeFolderWhenEmpty = false)
    {
        Directory.CreateDirectory(folder);
        // FileShare.None is an exclusive lock on every platform (flock on Unix), released when the process dies.
        var stream = new FileStream(Path.Combine(folder, marker), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        var pid = System.Text.Encoding.ASCII.GetBytes(ProcessId() + "\n");
        stream.SetLength(0);
        stream.Write(pid, 0, pid.Length);
        stream.Flush();
        return new FolderLock(stream, folder, removeFolderWhenEmpty);
    }

    /// <summary>True when a live process holds the folder's marker.</summary>
    public static bool IsHeld(string folder, string marker)
    {
        var path = Path.Combine(folder, marker);
        if (!File.Exists(path)) return false;
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; } // not ours to judge
    }

    public void Dispose()
    {
        // Deleted while still locked, so no other process ever judges a half-released marker.
        try { File.Delete(_marker.Name); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        _marker.Dispose();
        if (!_removeFolderWhenEmpty) return;
        try { if (!Directory.EnumerateFileSystemEntries(_folder).Any()) Directory.Delete(_folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Removes the job folders under <paramref name="jobsDirectory"/> that no live job holds, except those the
    /// retention keeps; with <paramref name="siblingWorkers"/>, also those of dead workers' default folders next
    /// to it (each default working directory is new per start, so nothing else would ever find them).
    /// </summary>
    /// <returns>The folders removed.</returns>
    public static IReadOnlyList<string> RemoveStaleJobFolders(string jobsDirectory, IJobFolderRetention retention, bool siblingWorkers, ILogSink log)
    {
        var removed = new List<string>();
        RemoveStaleIn(jobsDirectory, retention, log, removed);
        var parent = Path.GetDirectoryName(Path.GetFullPath(jobsDirectory).TrimEnd(Path.DirectorySeparatorChar));
        if (siblingWorkers && parent is not null) RemoveDeadWorkerFolders(parent, jobsDirectory, retention, log, removed);
        if (removed.Count > 0) log.Write(LogLevel.Information, "worker", $"removed {removed.Count} folder(s) left by a worker that did not stop cleanly");
        return removed;
    }

    private static void RemoveDeadWorkerFolders(string parent, string jobsDirectory, IJobFolderRetention retention, ILogSink log, List<string> removed)
    {
        foreach (var worker in SafeEnumerate(parent, WorkerFolderPrefix + "*"))
        {
            if (PathsEqual(worker, jobsDirectory) || IsHeld(worker, WorkerMarker)) continue;
            RemoveStaleIn(worker, retention, log, removed);
            if (Directory.EnumerateFileSystemEntries(worker).All(e => Path.GetFileName(e) == WorkerMarker) && TryDelete(worker, log))
                removed.Add(worker);
        }
    }

    private static void RemoveStaleIn(string directory, IJobFolderRetention retention, ILogSink log, List<string> removed)
    {
        foreach (var job in SafeEnumerate(directory, JobFolderPrefix + "*"))
        {
            var info = new DirectoryInfo(job);
            var marked = File.Exists(Path.Combine(job, JobMarker));
            if (!marked && DateTime.UtcNow - info.LastWriteTimeUtc < UnmarkedGrace) continue;
            if (marked && IsHeld(job, JobMarker)) continue;
            if (retention.Keep(new StaleJobFolder(job, info.LastWriteTimeUtc))) continue;
            if (TryDelete(job, log)) removed.Add(job);
        }
    }

    private static IEnumerable<string> SafeEnumerate(string directory, string pattern)
    {
        try { return Directory.Exists(directory) ? Directory.GetDirectories(directory, pattern) : Array.Empty<string>(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Array.Empty<string>(); }
    }

    private static bool TryDelete(string folder, ILogSink log)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write(LogLevel.Warning, "worker", $"could not remove the stale folder {folder}: {e.Message}");
            return false;
        }
    }

    private static bool PathsEqual(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(b).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal);

    private static int ProcessId()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.Id;
    }
}
