using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Client.Jobs;

/// <summary>The room has no job with that id (never existed, removed by retention, or it belongs to another room).</summary>
public sealed class JobNotFoundException : SleapRtcException
{
    public JobNotFoundException(string jobId, string roomId)
        : base("JobNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"Room '{roomId}' has no job '{jobId}'.",
            $"List the room's jobs with Get-SleapJob -RoomId {roomId}; a job of another room needs that room's credentials.")
    {
        JobId = jobId;
    }

    public string JobId { get; }
}

/// <summary>The signaling server does not announce the job queue (a classic server, or an older one of ours).</summary>
public sealed class JobQueueUnsupportedException : SleapRtcException
{
    public JobQueueUnsupportedException(string server)
        : base("JobQueueUnsupported", SleapRtcErrorKind.ResourceUnavailable,
            $"The signaling server {server} keeps no job queue or job records (it does not announce the job_queue extension).",
            "Submit without -Queue/-NoWait to a free worker, or run the room on a SleapRtc signaling server (Start-SleapSignalingServer).")
    {
    }
}

/// <summary>The server refused a ticket (limits on queued tickets, bad priority or tags); its message says which.</summary>
public sealed class TicketRejectedException : SleapRtcException
{
    public TicketRejectedException(string roomId, string reason)
        : base("TicketRejected", SleapRtcErrorKind.InvalidArgument,
            $"The server of room '{roomId}' refused the ticket: {reason}",
            "Fix what the message names (priority -100..100, fewer or shorter tags) or wait for queued jobs to finish.")
    {
    }
}

/// <summary>Receive-SleapJob on a job whose results the worker does not (or no longer) keep.</summary>
public sealed class JobResultsUnavailableException : SleapRtcException
{
    public JobResultsUnavailableException(string jobId, string state, string why)
        : base(JobStates.IsFinished(state) ? "JobResultsUnavailable" : "JobNotFinished",
            JobStates.IsFinished(state) ? SleapRtcErrorKind.ObjectNotFound : SleapRtcErrorKind.ResourceUnavailable,
            $"Job {jobId} ({state}): {why}",
            JobStates.IsFinished(state)
                ? "Results are kept until collected once or until the worker's retention removes them; submit the job again if you need them."
                : $"Wait for it first: Wait-SleapJob -JobId {jobId} | Receive-SleapJob.")
    {
        JobId = jobId;
    }

    public string JobId { get; }
}

/// <summary>A job option the chosen worker cannot honour (a classic worker takes no overrides and keeps no job handle).</summary>
public sealed class JobOptionUnsupportedException : SleapRtcException
{
    public JobOptionUnsupportedException(string workerId, string option)
        : base("JobOptionUnsupported", SleapRtcErrorKind.InvalidArgument,
            $"Worker {workerId} is a classic sleap-RTC worker: it cannot take {option}.",
            "Submit to a SleapRtc worker (Start-SleapWorker), or leave the option out.")
    {
    }
}

/// <summary>Wait-SleapJob gave up before the job finished.</summary>
public sealed class JobWaitTimeoutException : SleapRtcException
{
    public JobWaitTimeoutException(string jobId, string state, TimeSpan timeout)
        : base("JobWaitTimeout", SleapRtcErrorKind.OperationTimeout,
            $"Job {jobId} is still {state} after {timeout.TotalSeconds:0} s.",
            "Wait longer (-Timeout), or look at it with Get-SleapJob; the job itself keeps running.")
    {
        JobId = jobId;
    }

    public string JobId { get; }
}
