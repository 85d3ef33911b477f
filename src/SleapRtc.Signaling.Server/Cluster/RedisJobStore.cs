using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// Job records and queued tickets in the Redis that instances share (one hash, <c>sleaprtc:jobs</c>: job id →
/// queue order and the record's wire JSON), so the instance that takes over the job queue
/// (<see cref="QueueLeadership"/>) loads what the previous one wrote. Written through, each change before the queue goes
/// on (<see cref="Jobs.JobPersistence"/>), so a ticket answered by an instance killed right after is not lost.
/// A Redis restarted empty has no records left (the rooms and peers come back from the instances; the history does not).
/// </summary>
internal sealed class RedisJobStore(RedisBackplane redis) : IJobStore
{
    private RedisKey Key => redis.Prefix + "jobs";

    public IReadOnlyList<StoredJob> LoadAll()
    {
        var entries = redis.Run(db => db.HashGetAll(Key));
        var jobs = new List<StoredJob>(entries.Length);
        foreach (var entry in entries)
        {
            var text = (string?)entry.Value ?? "";
            var newline = text.IndexOf('\n');
            // An entry that no longer reads as a record is skipped rather than failing the takeover.
            if (newline <= 0 || !long.TryParse(text.Substring(0, newline), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var order)) continue;
            if (JobRecord.FromWire(text.Substring(newline + 1)) is { JobId.Length: > 0 } record) jobs.Add(new StoredJob(record, order));
        }
        return jobs;
    }

    public void Write(IReadOnlyCollection<StoredJob> upserts, IReadOnlyCollection<string> deletes)
    {
        if (upserts.Count == 0 && deletes.Count == 0) return;
        redis.Run(db =>
        {
            var transaction = db.CreateTransaction();
            if (upserts.Count > 0)
            {
                _ = transaction.HashSetAsync(Key, upserts.Select(job => new HashEntry(job.Record.JobId,
                    job.QueueOrder.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n" + job.Record.ToWire())).ToArray());
            }
            if (deletes.Count > 0) _ = transaction.HashDeleteAsync(Key, deletes.Select(id => (RedisValue)id).ToArray());
            return transaction.Execute();
        });
    }
}
