using System.Text.Json;
using System.Text.Json.Serialization;
using SleapRtc.Protocol.Logging;

namespace SleapRtc.Worker.Jobs;

/// <summary>What a finished job left for collection; written as <see cref="JobResultStore.ManifestName"/> in its folder.</summary>
public sealed class KeptResults
{
    public string JobId { get; set; } = "";
    /// <summary>Succeeded, Failed or Cancelled (JobStates).</summary>
    public string State { get; set; } = "";
    public string? Error { get; set; }
    public string? PackageName { get; set; }
    /// <summary>Unix milliseconds.</summary>
    public long FinishedAt { get; set; }
    /// <summary>File names in the job folder, in the order they are sent (result archive first, job log last).</summary>
    public string[] Files { get; set; } = Array.Empty<string>();
    public long Bytes { get; set; }
}

/// <summary>
/// The finished jobs' results a worker keeps until they are collected or expire: each in its job folder
/// (job_&lt;id&gt;/ under the working directory) with a manifest, held by the folder's lock so no other worker
/// removes it. Retention: older than <see cref="Retention"/> (from the job's end) is removed, and while the
/// total exceeds <see cref="QuotaBytes"/> the oldest go first. A worker that starts in the same working directory
/// adopts the results a stopped or killed one left (<see cref="LoadExisting"/>), so a restart loses nothing.
/// </summary>
public sealed class JobResultStore : IDisposable
{
    public const string ManifestName = ".sleaprtc-results.json";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly string _jobsDirectory;
    private readonly ILogSink _log;

    public JobResultStore(string jobsDirectory, TimeSpan retention, long quotaBytes, ILogSink? log = null)
    {
        _jobsDirectory = jobsDirectory;
        Retention = retention;
        QuotaBytes = quotaBytes;
        _log = log ?? Log.Null;
    }

    public TimeSpan Retention { get; }
    public long QuotaBytes { get; }

    /// <summary>Results left the store (collected, expired, over quota).</summary>
    public event Action<KeptResults>? Removed;

    /// <summary>The stale-folder cleanup on start leaves folders with a manifest to this store (which judges their age and size).</summary>
    public static IJobFolderRetention KeepsFolder { get; } = new KeepManifested();

    public long TotalBytes { get { lock (_gate) return _entries.Values.Sum(e => e.Results.Bytes); } }

    public bool Contains(string jobId) { lock (_gate) return _entries.ContainsKey(jobId); }

    public DateTimeOffset ExpiresAt(KeptResults results) => DateTimeOffset.FromUnixTimeMilliseconds(results.FinishedAt) + Retention;

    /// <summary>Keeps <paramref name="files"/> (already in <paramref name="jobFolder"/>) and takes over the folder's lock.</summary>
    public KeptResults Keep(string jobFolder, KeptResults results, FolderLock? folderLock)
    {
        results.Bytes = results.Files.Sum(f => new FileInfo(Path.Combine(jobFolder, f)).Length);
        File.WriteAllText(Path.Combine(jobFolder, ManifestName), JsonSerializer.Serialize(results, Json));
        lock (_gate) _entries[results.JobId] = new Entry(jobFolder, results, folderLock);
        Enforce(DateTimeOffset.UtcNow);
        return results;
    }

    /// <summary>The kept results of <paramref name="jobId"/>, leased so retention leaves them alone until the lease ends.</summary>
    public bool TryOpen(string jobId, out KeptResults? results, out string? folder, out IDisposable? lease)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(jobId, out var entry))
            {
                entry.Leases++;
                (results, folder, lease) = (entry.Results, entry.Folder, new Lease(this, entry));
                return true;
            }
        }
        (results, folder, lease) = (null, null, null);
        return false;
    }

    /// <summary>Deletes a job's results (after a successful collection, or when they are no longer wanted).</summary>
    public void Remove(string jobId)
    {
        Entry? entry;
        lock (_gate)
        {
            if (!_entries.TryGetValue(jobId, out entry)) return;
            _entries.Remove(jobId);
        }
        Delete(entry);
    }

    /// <summary>Removes what expired, then the oldest while over the quota (results being collected are skipped, and the newest
    /// results stay even when they alone exceed the quota: removing the job that just ended would help no one).</summary>
    /// <returns>The job ids removed.</returns>
    public IReadOnlyList<string> Enforce(DateTimeOffset now)
    {
        var removed = new List<Entry>();
        lock (_gate)
        {
            var oldestFirst = _entries.Values.Where(e => e.Leases == 0).OrderBy(e => e.Results.FinishedAt).ToList();
            foreach (var entry in oldestFirst.Where(e => ExpiresAt(e.Results) <= now)) removed.Add(entry);
            var total = _entries.Values.Sum(e => e.Results.Bytes) - removed.Sum(e => e.Results.Bytes);
            var newest = _entries.Values.OrderBy(e => e.Results.FinishedAt).LastOrDefault();
            foreach (var entry in oldestFirst.Except(removed).Where(e => e != newest))
            {
                if (total <= QuotaBytes) break;
                removed.Add(entry);
                total -= entry.Results.Bytes;
            }
            foreach (var entry in removed) _entries.Remove(entry.Results.JobId);
        }
        foreach (var entry in removed)
        {
            _log.Write(LogLevel.Information, "worker", $"results of {entry.Results.JobId} removed ({(ExpiresAt(entry.Results) <= now ? "expired" : "over the results quota")})");
            Delete(entry);
        }
        return removed.Select(e => e.Results.JobId).ToList();
    }

    /// <summary>Adopts the kept results in the working directory that no live worker holds (a restart in the same directory).</summary>
    public void LoadExisting()
    {
        if (!Directory.Exists(_jobsDirectory)) return;
        foreach (var folder in Directory.GetDirectories(_jobsDirectory, FolderLock.JobFolderPrefix + "*"))
        {
            var manifest = Path.Combine(folder, ManifestName);
            if (!File.Exists(manifest) || FolderLock.IsHeld(folder, FolderLock.JobMarker)) continue;
            try
            {
                var results = JsonSerializer.Deserialize<KeptResults>(File.ReadAllText(manifest), Json);
                if (results is null || results.JobId != Path.GetFileName(folder) || results.Files.Any(f => !File.Exists(Path.Combine(folder, f)))) continue;
                var folderLock = FolderLock.Acquire(folder, FolderLock.JobMarker);
                lock (_gate) _entries[results.JobId] = new Entry(folder, results, folderLock);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
                _log.Write(LogLevel.Warning, "worker", $"kept results in {folder} could not be read: {e.Message}");
            }
        }
        Enforce(DateTimeOffset.UtcNow);
    }

    /// <summary>Releases the folders (they stay on disk for the next worker in this directory).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var entry in _entries.Values) entry.Lock?.Dispose();
            _entries.Clear();
        }
    }

    private void Delete(Entry entry)
    {
        entry.Lock?.Dispose();
        try { if (Directory.Exists(entry.Folder)) Directory.Delete(entry.Folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Write(LogLevel.Warning, "worker", $"could not remove the results folder {entry.Folder}: {e.Message}");
        }
        Removed?.Invoke(entry.Results);
    }

    private sealed class Entry
    {
        public Entry(string folder, KeptResults results, FolderLock? folderLock) { Folder = folder; Results = results; Lock = folderLock; }
        public string Folder { get; }
        public KeptResults Results { get; }
        public FolderLock? Lock { get; }
        public int Leases;
    }

    private sealed class Lease : IDisposable
    {
        private readonly JobResultStore _store;
        private Entry? _entry;
        public Lease(JobResultStore store, Entry entry) { _store = store; _entry = entry; }
        public void Dispose()
        {
            var entry = Interlocked.Exchange(ref _entry, null);
            if (entry is null) return;
            lock (_store._gate) entry.Leases--;
        }
    }

    private sealed class KeepManifested : IJobFolderRetention
    {
        public bool Keep(StaleJobFolder folder) => File.Exists(Path.Combine(folder.Path, ManifestName));
    }
}
