using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Monitor;

/// <summary>What the monitor reads from the room job queue (issue 12): the waiting tickets and the recent records.</summary>
public interface IMonitorJobSource
{
    /// <summary>The room's waiting tickets in queue order, at most <paramref name="max"/>:
    /// <c>{job_id, position, priority, package_name, submitter, created_at, submitter_present, requirements}</c>.</summary>
    JsonArray QueueView(string roomId, int max);

    /// <summary>Number of waiting tickets in the room.</summary>
    int WaitingCount(string roomId);

    /// <summary>The room's records that are not waiting (assigned, running, finished), newest first.</summary>
    IReadOnlyList<JobRecord> RecentJobs(string roomId, int max);
}
