using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Store;

/// <summary>A job record as stored: the record itself plus its place in the room's queue order (meaningful while queued).</summary>
public sealed record StoredJob(JobRecord Record, long QueueOrder);

/// <summary>
/// Durable job records and queued tickets (issue 12), so a server restart loses neither. The job queue keeps the live
/// state in memory and writes changes behind in batches (<see cref="Jobs.JobPersistence"/>); this interface is the
/// storage underneath. Calls come from one writer at a time plus the load at start.
/// </summary>
public interface IJobStore
{
    /// <summary>Every stored record (the job queue loads them once, at start).</summary>
    IReadOnlyList<StoredJob> LoadAll();

    /// <summary>Inserts or replaces these records and deletes those ids, all in one transaction.</summary>
    void Write(IReadOnlyCollection<StoredJob> upserts, IReadOnlyCollection<string> deletes);
}
