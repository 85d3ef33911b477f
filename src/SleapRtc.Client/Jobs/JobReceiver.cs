using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// Receive-SleapJob: downloads the results a worker keeps for a finished job, from any machine with the room's
/// credentials. Looks the job up on the server (which worker, whether results are kept), collects them from that worker
/// (<see cref="JobCollection"/>: allowed while it trains another job, reserves nothing) into the job's own folder
/// under the output path (<see cref="JobOutputFolder"/>, as a submission would have), and unpacks the result archive
/// there as a submission does; the worker's job log stays beside the models.
/// </summary>
public sealed class JobReceiver
{
    private readonly ResolvedRoom _room;
    private readonly WorkerChannelOptions _options;

    public JobReceiver(ResolvedRoom room, WorkerChannelOptions options)
    {
        _room = room ?? throw new ArgumentNullException(nameof(room));
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>Decisions worth telling the user ("Collecting job ... from worker ...").</summary>
    public event Action<string>? StatusMessage;

    /// <summary>Download progress, and the retries (with the byte they resume at) after a lost connection.</summary>
    public event Action<SubmissionProgress>? ProgressChanged;

    /// <exception cref="JobNotFoundException">The room has no such job.</exception>
    /// <exception cref="JobResultsUnavailableException">Not finished yet, or its worker no longer keeps the results.</exception>
    public async Task<TrainingResult> ReceiveAsync(string jobId, string outputRoot, CancellationToken cancellationToken)
    {
        outputRoot = Path.GetFullPath(outputRoot);
        SubmissionPreflight.CheckOutputPath(outputRoot);
        JobInfo job;
        await using (var jobs = await RoomJobs.OpenAsync(_room, _options.Connection, cancellationToken).ConfigureAwait(false))
            job = await jobs.GetAsync(jobId, cancellationToken).ConfigureAwait(false);
        if (!job.IsFinished) throw new JobResultsUnavailableException(jobId, job.State, "it has not finished yet.");
        if (!job.ResultsAvailable || string.IsNullOrEmpty(job.WorkerId))
            throw new JobResultsUnavailableException(jobId, job.State, "its worker keeps no results for it (collected already, expired, or the job produced none).");

        StatusMessage?.Invoke($"Collecting job {jobId} ({job.State}) from worker {job.WorkerId}...");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var folder = JobOutputFolder.Create(outputRoot, job.PackageName ?? jobId, jobId, DateTimeOffset.Now);
        try
        {
            var collected = await JobCollection.CollectAsync(_room, job.WorkerId!, jobId, folder, _options, cancellationToken,
                progress: p => ProgressChanged?.Invoke(p)).ConfigureAwait(false);
            var extracted = new List<string>();
            foreach (var archive in collected.Files.Where(f => f.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)))
            {
                extracted.AddRange(PackageArchive.ExtractSafely(archive, folder, cancellationToken: cancellationToken));
                File.Delete(archive);
            }
            return new TrainingResult
            {
                JobId = jobId,
                WorkerId = job.WorkerId!,
                Status = job.State,
                OutputPath = folder,
                ModelPaths = TrainingSubmission.TopLevelEntries(folder, extracted),
                Duration = job.Duration ?? clock.Elapsed,
                PackagePath = job.PackageName,
                Error = job.Error,
            };
        }
        catch (JobResultsNotFoundException e)
        {
            RemoveIfEmpty(folder);
            throw new JobResultsUnavailableException(jobId, job.State, $"worker {e.WorkerId} no longer keeps its results.");
        }
        catch
        {
            RemoveIfEmpty(folder);
            throw;
        }
    }

    /// <summary>A collection that brought nothing leaves nothing behind, as a failed submission does.</summary>
    private static void RemoveIfEmpty(string folder)
    {
        try { if (!Directory.EnumerateFileSystemEntries(folder).Any()) Directory.Delete(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
