using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// Receive-SleapJob: downloads the results a worker keeps for a finished job, from any machine with the room's
/// credentials. Looks the job up on the server (which worker, whether results are kept), offers to that worker with
/// the collect purpose (allowed while it trains another job; reserves nothing), says hello in collect mode and receives
/// the results exactly as at the end of a job, into the job's own folder under the output path (<see cref="JobOutputFolder"/>).
/// </summary>
public sealed class JobReceiver
{
    private readonly SubmissionOptions _options;

    /// <param name="options">Room (resolved), OutputPath and the connection factories; the worker fields are not used.</param>
    public JobReceiver(SubmissionOptions options) => _options = options ?? throw new ArgumentNullException(nameof(options));

    public event Action<SubmissionProgress>? ProgressChanged;
    public event Action<string>? StatusMessage;

    public async Task<TrainingResult> ReceiveAsync(string jobId, CancellationToken cancellationToken)
    {
        var room = _options.Room ?? throw new ArgumentException("The room must be resolved.", nameof(_options));
        var outputPath = Path.GetFullPath(_options.OutputPath ?? Directory.GetCurrentDirectory());
        SubmissionPreflight.CheckOutputPath(outputPath);
        JobInfo job;
        await using (var jobs = await RoomJobs.OpenAsync(room, _options.Connection, cancellationToken).ConfigureAwait(false))
            job = await jobs.GetAsync(jobId, cancellationToken).ConfigureAwait(false);
        if (!job.IsFinished) throw new JobResultsUnavailableException(jobId, job.State, "it has not finished yet.");
        if (!job.ResultsAvailable || string.IsNullOrEmpty(job.WorkerId))
            throw new JobResultsUnavailableException(jobId, job.State, "its worker keeps no results for it (collected already, expired, or the job produced none).");

        var connector = new TrainingSubmission(_options);
        connector.ProgressChanged += p => ProgressChanged?.Invoke(p);
        connector.StatusMessage += m => StatusMessage?.Invoke(m);
        var holder = new WorkerInfo { PeerId = job.WorkerId!, RoomId = room.RoomId, Server = room.Server, Token = room.Token };
        holder.Properties[JobExtensions.MetadataProperty] = JobExtensions.Version;
        return await connector.RunOnWorkerAsync("collection",
            (channel, worker, clock, ct) => CollectAsync(channel, worker, job, outputPath, clock, ct), cancellationToken,
            (_, _) => Task.FromResult<IReadOnlyList<WorkerInfo>>(new[] { holder }), SignalingClient.CollectPurpose).ConfigureAwait(false);
    }

    private async Task<TrainingResult> CollectAsync(WebRtc.IDataChannel channel, WorkerInfo worker, JobInfo job, string outputPath,
        System.Diagnostics.Stopwatch clock, CancellationToken cancellationToken)
    {
        var session = new ClientJobSession(channel, worker.PeerId, useExtensions: true, _options.Job, _options.Connection.Log)
        {
            Request = new JobRequest { JobId = job.JobId, Collect = true },
        };
        session.ProgressChanged += p => ProgressChanged?.Invoke(p);
        ClientJobOutcome outcome;
        try
        {
            // The package name names the job's folder, as for the submission that would have downloaded it.
            outcome = await session.RunAsync(job.PackageName ?? job.JobId, outputPath, cancellationToken).ConfigureAwait(false);
        }
        catch (JobFailedException e) when (e.Code == JobErrorCodes.JobNotFound)
        {
            throw new JobResultsUnavailableException(job.JobId, job.State, $"worker {worker.PeerId} no longer keeps its results.");
        }
        var folder = outcome.OutputPath;
        return new TrainingResult
        {
            JobId = job.JobId,
            WorkerId = worker.PeerId,
            Status = job.State,
            OutputPath = folder,
            ModelPaths = folder is null ? Array.Empty<string>() : TrainingSubmission.TopLevelEntries(folder, outcome.ExtractedFiles),
            Duration = job.Duration ?? clock.Elapsed,
            Configs = outcome.Configs.ToArray(),
            PackagePath = job.PackageName,
            Error = job.Error,
        };
    }
}
