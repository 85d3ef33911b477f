using System.Threading.Channels;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Jobs;

/// <summary>
/// Writes job changes to the store behind the queue: the queue hands over a copy of each changed record and goes
/// on; one writer drains whatever has gathered, keeps the last copy per job, and writes the lot in one transaction.
/// So a thousand hand-outs a second cost a few commits, not a thousand, and no peer's message waits for the disk.
/// What a crash can lose is the last batch (tens of milliseconds); a stop flushes everything.
/// </summary>
internal sealed class JobPersistence : IAsyncDisposable
{
    private readonly IJobStore _store;
    private readonly ILogSink _log;
    private readonly Channel<(string JobId, StoredJob? Job)> _changes =
        Channel.CreateUnbounded<(string, StoredJob?)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    private readonly bool _writeThrough;

    /// <param name="writeThrough">Write each change before returning instead of behind: for a store shared by instances
    /// (Redis, a fraction of a millisecond a write), where an instance killed right after answering must not lose a
    /// ticket the next instance running the queue is to find.</param>
    public JobPersistence(IJobStore store, ILogSink log, bool writeThrough = false)
    {
        _store = store;
        _log = log;
        _writeThrough = writeThrough;
        _writer = writeThrough ? Task.CompletedTask : Task.Run(WriteLoopAsync);
    }

    /// <summary>Records the job's current state (the caller passes a copy it will not change).</summary>
    public void Save(StoredJob job)
    {
        if (_writeThrough) WriteNow([job], []);
        else _changes.Writer.TryWrite((job.Record.JobId, job));
    }

    public void Delete(string jobId)
    {
        if (_writeThrough) WriteNow([], [jobId]);
        else _changes.Writer.TryWrite((jobId, null));
    }

    private void WriteNow(IReadOnlyCollection<StoredJob> upserts, IReadOnlyCollection<string> deletes)
    {
        try { _store.Write(upserts, deletes); }
        catch (Exception e)
        {
            _log.Write(LogLevel.Error, "jobs", $"Writing job record(s) failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task WriteLoopAsync()
    {
        var latest = new Dictionary<string, StoredJob?>(StringComparer.Ordinal);
        while (await _changes.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (_changes.Reader.TryRead(out var change)) latest[change.JobId] = change.Job;
            try
            {
                _store.Write(latest.Values.OfType<StoredJob>().ToList(), latest.Where(c => c.Value is null).Select(c => c.Key).ToList());
            }
            catch (Exception e)
            {
                // The live queue goes on; what was not written is lost only if the server also stops before the next change of those jobs.
                _log.Write(LogLevel.Error, "jobs", $"Writing {latest.Count} job record(s) failed: {e.GetType().Name}: {e.Message}");
            }
            latest.Clear();
        }
    }

    /// <summary>Writes everything still pending, then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _changes.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }
}
