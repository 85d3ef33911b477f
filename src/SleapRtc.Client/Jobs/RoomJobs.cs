using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// A room's job records on its signaling server (Get-SleapJob, Wait-SleapJob, Stop-SleapJob, Receive-SleapJob):
/// one registered client connection, the server's job_list / job_cancel answered as <see cref="JobInfo"/>.
/// A job id of another room is not found, exactly like an unknown one (the server answers per room).
/// </summary>
public sealed class RoomJobs : IAsyncDisposable
{
    /// <summary>How often Wait-SleapJob asks the server.</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromSeconds(1);

    private readonly ClientRoomConnection _connection;

    private RoomJobs(ClientRoomConnection connection) => _connection = connection;

    public ResolvedRoom Room => _connection.Room;

    /// <summary>Joins the room as a client; throws <see cref="JobQueueUnsupportedException"/> when the server keeps no records.</summary>
    public static async Task<RoomJobs> OpenAsync(ResolvedRoom room, ClientConnectionOptions? options, CancellationToken cancellationToken)
    {
        var connection = await ClientRoomConnection.ConnectAsync(room, options ?? new ClientConnectionOptions(), cancellationToken).ConfigureAwait(false);
        if (!connection.Signaling.ServerSupportsJobQueue)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new JobQueueUnsupportedException(connection.Room.Server ?? "");
        }
        return new RoomJobs(connection);
    }

    /// <summary>The room's jobs, newest first; <paramref name="state"/> (a <see cref="JobStates"/> name) narrows the list.</summary>
    public async Task<IReadOnlyList<JobInfo>> ListAsync(string? jobId, string? state, CancellationToken cancellationToken)
    {
        var records = await Ask(s => s.ListJobsAsync(jobId, state is null ? null : JobStates.Normalize(state) ?? state, cancellationToken)).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        return records.Select(r => Carried(JobRecords.ToJobInfo(r, now))).ToList();
    }

    /// <summary>One job; <see cref="JobNotFoundException"/> when the room has none with that id.</summary>
    public async Task<JobInfo> GetAsync(string jobId, CancellationToken cancellationToken)
    {
        var jobs = await ListAsync(jobId, null, cancellationToken).ConfigureAwait(false);
        return jobs.FirstOrDefault(j => j.JobId == jobId) ?? throw new JobNotFoundException(jobId, Room.RoomId);
    }

    /// <summary>
    /// Cancels a queued ticket at once, or asks the worker to stop a running job (<paramref name="keepCheckpoint"/>: stop
    /// early and keep the best checkpoint as the job's result). Returns the record as the server answered it.
    /// </summary>
    public async Task<JobInfo> CancelAsync(string jobId, bool keepCheckpoint, CancellationToken cancellationToken)
    {
        try
        {
            var record = await _connection.Signaling.CancelJobAsync(jobId, keepCheckpoint, cancellationToken).ConfigureAwait(false);
            return Carried(JobRecords.ToJobInfo(record, DateTimeOffset.UtcNow));
        }
        catch (SignalingException e) when (e.Code == JobQueueMessages.JobNotFound)
        {
            throw new JobNotFoundException(jobId, Room.RoomId);
        }
        catch (SignalingException e)
        {
            throw new SignalingUnavailableException(_connection.Server, e.Message, e);
        }
    }

    /// <summary>
    /// Polls until the job is finished (Succeeded, Failed, Cancelled) and returns it; <paramref name="polled"/> sees each
    /// answer (progress display). <paramref name="timeout"/> elapsing throws <see cref="JobWaitTimeoutException"/>.
    /// </summary>
    public async Task<JobInfo> WaitAsync(string jobId, TimeSpan timeout, TimeSpan pollInterval, Action<JobInfo>? polled, CancellationToken cancellationToken)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? DateTimeOffset.MaxValue : DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var job = await GetAsync(jobId, cancellationToken).ConfigureAwait(false);
            polled?.Invoke(job);
            if (job.IsFinished) return job;
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero) throw new JobWaitTimeoutException(jobId, job.State, timeout);
            await Task.Delay(left < pollInterval ? left : pollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The room's registered connection, for a collection that offers to the job's worker through it.</summary>
    internal ClientRoomConnection Connection => _connection;

    /// <summary>The room's credentials travel with the job, as they do with a discovered worker.</summary>
    private JobInfo Carried(JobInfo job)
    {
        job.Server = _connection.Server;
        job.Token = Room.Token;
        if (string.IsNullOrEmpty(job.RoomId)) job.RoomId = Room.RoomId;
        return job;
    }

    private async Task<T> Ask<T>(Func<SignalingClient, Task<T>> request)
    {
        try { return await request(_connection.Signaling).ConfigureAwait(false); }
        catch (SignalingException e) { throw new SignalingUnavailableException(_connection.Server, e.Message, e); }
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}

/// <summary>Server records (<see cref="JobRecord"/>, Unix ms) as the public <see cref="JobInfo"/> users see.</summary>
public static class JobRecords
{
    /// <summary>A new job id as our clients make them (the worker adopts it): "job_" and 12 lowercase hex digits.</summary>
    public static string NewJobId() => JobIds.New();

    public static JobInfo ToJobInfo(JobRecord record, DateTimeOffset now)
    {
        var started = Time(record.StartedAt);
        var finished = Time(record.FinishedAt);
        return new JobInfo
        {
            JobId = record.JobId,
            State = record.State,
            RoomId = record.RoomId,
            Kind = record.Kind,
            WorkerId = record.WorkerId,
            MachineId = record.MachineId,
            PackageName = record.PackageName,
            PackageSha256 = record.PackageSha256,
            ChannelAuth = ChannelAuthStatus.Describe(record.ChannelAuth),
            Submitter = record.Submitter,
            Priority = record.Priority,
            Position = record.State == JobStates.Queued ? record.Position : null,
            ConfigName = record.Progress?.ConfigName,
            Epoch = record.Progress?.Epoch ?? 0,
            EpochCount = record.Progress?.EpochCount ?? 0,
            Loss = record.Progress?.Loss,
            CreatedAt = Time(record.CreatedAt) ?? DateTimeOffset.FromUnixTimeMilliseconds(0),
            AssignedAt = Time(record.AssignedAt),
            StartedAt = started,
            FinishedAt = finished,
            Duration = started is { } s ? (finished ?? (JobStates.IsFinished(record.State) ? s : now)) - s : null,
            Error = record.Error,
            ResultsAvailable = record.ResultsAvailable,
            ResultsExpireAt = Time(record.ResultsExpireAt),
            Overrides = Overrides(record.Overrides),
        };
    }

    private static DateTimeOffset? Time(long? unixMs) => unixMs is { } ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    private static IDictionary<string, object?> Overrides(TrainingOverrides? overrides)
    {
        var shown = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (overrides is null) return shown;
        if (overrides.MaxEpochs is { } epochs) shown["MaxEpochs"] = epochs;
        if (overrides.BatchSize is { } batch) shown["BatchSize"] = batch;
        if (overrides.LearningRate is { } rate) shown["LearningRate"] = rate;
        if (overrides.RunName is { } name) shown["RunName"] = name;
        if (overrides.ResumeFrom is { } resume) shown["ResumeFrom"] = resume;
        return shown;
    }
}
