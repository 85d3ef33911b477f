namespace SleapRtc.Signaling.Jobs;

/// <summary>
/// Limits and timings of the room job queue (issue 12). Defaults suit a lab server; tests shorten the timings.
/// Every count an untrusted peer could inflate has a bound here (see README, security model).
/// </summary>
public sealed class JobQueueOptions
{
    /// <summary>Queued tickets one room may hold; more are refused with TICKET_REJECTED.</summary>
    public int MaxQueuedPerRoom { get; set; } = 10_000;

    /// <summary>Queued tickets one submitter (peer id) may hold in its room.</summary>
    public int MaxQueuedPerSubmitter { get; set; } = 1_000;

    /// <summary>Unfinished jobs one worker may hold records for (direct jobs it reports plus its assigned ticket).</summary>
    public int MaxActiveJobsPerWorker { get; set; } = 16;

    /// <summary>Finished records kept per room (the oldest go first); see also <see cref="FinishedRetention"/>.</summary>
    public int MaxFinishedPerRoom { get; set; } = 10_000;

    /// <summary>How long finished records are kept.</summary>
    public TimeSpan FinishedRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long an assigned submitter has to offer to its worker before the ticket goes back to the head of its priority.</summary>
    public TimeSpan AssignmentTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Times a ticket goes back to the queue after its submitter let an assignment time out; then it fails.</summary>
    public int MaxAssignmentRetries { get; set; } = 2;

    /// <summary>How long a disconnected submitter's queued tickets wait for it to register again before they are cancelled.</summary>
    public TimeSpan SubmitterGrace { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long after its worker's connection ended an uploading or running job may still be re-reported before it fails.</summary>
    public TimeSpan WorkerLostGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>After a server start, how long running jobs wait for their worker to re-report them before they fail ("worker lost").</summary>
    public TimeSpan RecoveryGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often timeouts, graces and retention are checked.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Position pushes to submitters are gathered this long, so one assignment in a queue of thousands is not thousands of messages.</summary>
    public TimeSpan PositionPushDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>job_update messages one worker may send per second on average (progress; a burst of <see cref="UpdateBurst"/> is allowed).
    /// State changes always pass unless the worker is far beyond this.</summary>
    public double UpdatesPerSecond { get; set; } = 5;

    public int UpdateBurst { get; set; } = 20;

    /// <summary>Records one job_list answer carries at most (newest first).</summary>
    public int MaxListedJobs { get; set; } = 1_000;
}
