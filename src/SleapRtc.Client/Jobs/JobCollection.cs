using System.Text.Json;
using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;

namespace SleapRtc.Client.Jobs;

/// <summary>What a collection brought back: the job's state on the worker and the files received (full paths).</summary>
public sealed record CollectedJob(string JobId, string WorkerId, string State, IReadOnlyList<string> Files);

/// <summary>The worker holds no results for the job: it never ran there, they were collected already, or they expired.</summary>
public sealed class JobResultsNotFoundException : SleapRtcException
{
    public JobResultsNotFoundException(string jobId, string workerId, string detail)
        : base("JobNotFound", SleapRtcErrorKind.ObjectNotFound, $"Worker {workerId} has no results for job {jobId}: {detail}",
            "Check the job id with Get-SleapJob; results are kept until collected or until the worker's retention expires them.")
    {
        JobId = jobId;
        WorkerId = workerId;
    }

    public string JobId { get; }
    public string WorkerId { get; }
}

/// <summary>
/// Collects a finished job's kept results from the worker that ran it (issue 12), from any machine with the room's
/// credentials, even while that worker trains another job: offer with purpose "collect", SLEAPRTC_HELLO with mode
/// "collect" and the job id, then every kept file (FILE_META, chunks, SHA-256 checked, END_OF_FILE) into
/// <c>outputDirectory</c> as it was sent (the result archive trained_&lt;package&gt;.zip and job.log), until
/// SLEAPRTC_COLLECTED, which the collector echoes to say the results arrived (the worker then deletes its copy).
/// </summary>
public static class JobCollection
{
    /// <summary>Longest silence from the worker while collecting before it counts as lost.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Collects the job's results; a connection lost mid-file is retried over a new connection (<see cref="WorkerChannelOptions.Retry"/>)
    /// and each file continues from the bytes already on disk (issue 16).
    /// </summary>
    /// <param name="partials">Files a cut-off transfer left (a submission's results download); updated as files arrive or are cut off.</param>
    /// <param name="progress">Download progress (bytes of the file arriving), and the retries while reconnecting.</param>
    /// <exception cref="JobResultsNotFoundException">The worker holds no results for <paramref name="jobId"/>.</exception>
    public static async Task<CollectedJob> CollectAsync(ResolvedRoom room, string workerId, string jobId, string outputDirectory,
        WorkerChannelOptions options, CancellationToken cancellationToken, List<PartialFile>? partials = null, Action<SubmissionProgress>? progress = null)
    {
        partials ??= new List<PartialFile>();
        var retry = 0;
        try
        {
            while (true)
            {
                try
                {
                    await using var connection = await WorkerChannel.OpenAsync(room, workerId, Protocol.Signaling.JobQueueMessages.CollectPurpose, options, cancellationToken).ConfigureAwait(false);
                    return await ReceiveAsync(connection.Channel, workerId, jobId, outputDirectory, options.IdleTimeout, cancellationToken, partials, progress).ConfigureAwait(false);
                }
                // A connection lost mid-collection is retried; an unreachable worker only once it was reached before (an
                // offline worker is an answer, not a glitch).
                catch (SleapRtcException e) when (retry < options.Retry.MaxRetries
                    && (e is WorkerLostException || e is WorkerUnreachableException && (partials.Count > 0 || retry > 0)))
                {
                    retry++;
                    var held = partials.Count > 0 ? partials[^1] : null;
                    options.Connection.Log.Write(Protocol.Logging.LogLevel.Information, "client",
                        $"{e.Message.TrimEnd('.')}; resuming the collection of {jobId} (retry {retry} of {options.Retry.MaxRetries})");
                    progress?.Invoke(new SubmissionProgress
                    {
                        Phase = SubmissionPhase.Downloading, WorkerId = workerId, BytesDone = held?.Bytes ?? 0, BytesTotal = held?.Size ?? 0,
                        RetryAttempt = retry, MaxRetries = options.Retry.MaxRetries,
                    });
                    await Task.Delay(options.Retry.Delay(retry), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            // Given up (or stopped): what a cut-off transfer left goes.
            foreach (var partial in partials) TryDelete(partial.Path);
            partials.Clear();
            throw;
        }
    }

    /// <summary>The collection on an already open channel (the caller closes it afterwards).</summary>
    /// <param name="partials">Files held in part: named in the hello (with their prefix SHA-256) so the worker sends only the
    /// rest; a file cut off on this connection is added (kept on disk), a completed one removed.</param>
    public static async Task<CollectedJob> ReceiveAsync(IDataChannel channel, string workerId, string jobId, string outputDirectory,
        TimeSpan idleTimeout, CancellationToken cancellationToken, List<PartialFile>? partials = null, Action<SubmissionProgress>? progress = null)
    {
        Directory.CreateDirectory(outputDirectory);
        partials ??= new List<PartialFile>();
        var done = new TaskCompletionSource<CollectedJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        var files = new List<string>();
        FileReceiver? current = null;
        string? currentTarget = null;
        long transferFrom = 0;
        var lastHeard = Environment.TickCount64;
        long lastReport = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long startedAt = 0;
        void Report(bool force)
        {
            if (progress is null || current is null) return;
            var now = Environment.TickCount64;
            if (!force && now - lastReport < 200) return;
            lastReport = now;
            var rate = (current.BytesReceived - startedAt) / Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
            progress(new SubmissionProgress
            {
                Phase = SubmissionPhase.Downloading, WorkerId = workerId, BytesDone = current.BytesReceived, BytesTotal = current.Meta.Size,
                MegabytesPerSecond = rate / 1048576.0, ResumedAt = startedAt > 0 ? startedAt : null,
                EstimatedRemaining = rate > 0 ? TimeSpan.FromSeconds((current.Meta.Size - current.BytesReceived) / rate) : null,
            });
        }
        void OnMessage(DataChannelMessage message)
        {
            Interlocked.Exchange(ref lastHeard, Environment.TickCount64);
            try
            {
                if (!message.IsText)
                {
                    if (!JobMessages.IsKeepAlive(message.Binary.Span) && current is not null)
                    {
                        current.Write(message.Binary.Span);
                        Report(force: false);
                    }
                    return;
                }
                var (type, args) = JobMessages.Parse(message.Text!);
                switch (type)
                {
                    case JobMessages.TransferFrom:
                        transferFrom = long.Parse(args.FirstOrDefault() ?? "0", System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case JobMessages.FileMeta when FileMetaInfo.TryParse(args[0], out var meta) && meta is not null:
                        var name = FileMetaInfo.WireSafeName(meta.Name);
                        if (name.Length == 0 || name is "." or "..") name = "results.bin";
                        var path = Path.Combine(outputDirectory, name);
                        var held = partials.FirstOrDefault(p => p.Name == name && p.Size == meta.Size);
                        var from = transferFrom;
                        transferFrom = 0;
                        if (held is not null) partials.Remove(held);
                        if (from > 0)
                        {
                            // The worker checked the prefix we named: continue the partial file where it stands.
                            if (held is null || held.Bytes < from) throw new InvalidOperationException($"The worker resumes {name} at byte {from}, which this collector does not hold.");
                            current = FileReceiver.Resume(meta with { Name = name }, held.Path, from);
                        }
                        else
                        {
                            if (held is not null) TryDelete(held.Path);
                            var receiving = PartialPath(outputDirectory, name);
                            if (File.Exists(receiving)) File.Delete(receiving);
                            current = new FileReceiver(meta with { Name = name }, receiving);
                        }
                        currentTarget = path;
                        startedAt = from;
                        clock.Restart();
                        Report(force: true);
                        break;
                    case JobMessages.Sha256:
                        current?.ExpectSha256(args.FirstOrDefault() ?? "");
                        break;
                    case JobMessages.EndOfFile when current is not null:
                        current.Complete();
                        Report(force: true);
                        current.Dispose();
                        // A file completed on an earlier connection was resumed where it lies (at its full size).
                        if (!string.Equals(Path.GetFullPath(current.Path), Path.GetFullPath(currentTarget!), StringComparison.Ordinal))
                        {
                            if (File.Exists(currentTarget!)) File.Delete(currentTarget!);
                            File.Move(current.Path, currentTarget!);
                        }
                        files.Add(currentTarget!);
                        current = null;
                        break;
                    case JobMessages.Collected:
                        var summary = JsonDocument.Parse(args.FirstOrDefault() ?? "{}").RootElement;
                        var state = summary.TryGetProperty("state", out var s) ? s.GetString() ?? "" : "";
                        // The echo tells the worker every file arrived and checked out: it deletes its copy.
                        channel.Send(JobMessages.Format(JobMessages.Collected, JsonSerializer.Serialize(new Dictionary<string, string> { ["job_id"] = jobId })));
                        done.TrySetResult(new CollectedJob(jobId, workerId, state, files.ToArray()));
                        break;
                    case JobMessages.Error:
                        var code = args.FirstOrDefault() ?? JobErrorCodes.Internal;
                        var detail = args.ElementAtOrDefault(1) ?? "no detail";
                        done.TrySetException(code == JobErrorCodes.JobNotFound
                            ? new JobResultsNotFoundException(jobId, workerId, detail)
                            : new JobFailedException(workerId, code, detail));
                        break;
                }
            }
            catch (Exception e) when (e is IOException or FileChecksumException or JsonException or InvalidOperationException or FormatException)
            {
                done.TrySetException(e is FileChecksumException ? new JobFailedException(workerId, JobErrorCodes.ChecksumMismatch, e.Message) : e);
            }
        }
        void OnClosed(Exception? error) => done.TrySetException(new WorkerLostException(workerId, "collect", "the data channel closed"));
        channel.MessageReceived += OnMessage;
        channel.Closed += OnClosed;
        try
        {
            channel.Send(JobExtensions.HelloMessage(new JobExtensions.Handshake
            {
                JobId = jobId, Mode = JobExtensions.Handshake.ModeCollect,
                Partials = partials.Count == 0 ? null : partials.Select(p => new TransferPoint
                {
                    Name = p.Name, Size = p.Size, Offset = p.Bytes, PrefixSha256 = TransferResume.PrefixSha256(p.Path, p.Bytes, cancellationToken),
                }).ToArray(),
            }));
            while (!done.Task.IsCompleted)
            {
                await Task.WhenAny(done.Task, Task.Delay(250, cancellationToken)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                if (Environment.TickCount64 - Interlocked.Read(ref lastHeard) > idleTimeout.TotalMilliseconds)
                    done.TrySetException(new WorkerLostException(workerId, "collect", $"nothing received for {idleTimeout.TotalSeconds:0} s"));
            }
            return await done.Task.ConfigureAwait(false);
        }
        finally
        {
            channel.MessageReceived -= OnMessage;
            channel.Closed -= OnClosed;
            var lost = done.Task.Exception?.InnerException is WorkerLostException;
            if (current is not null)
            {
                // Lost mid-file: keep what arrived for the next connection to continue (the caller removes it when it gives up).
                var held = lost ? current.Park() : 0;
                if (held > 0) partials.Add(new PartialFile(current.Meta.Name, current.Meta.Size, current.Path, held));
                else current.Abort();
                current.Dispose();
            }
            // Files that arrived whole before the connection went are held whole: the worker then sends none of their bytes.
            if (lost)
                foreach (var file in files)
                    partials.Add(new PartialFile(Path.GetFileName(file), new FileInfo(file).Length, file, new FileInfo(file).Length));
        }
    }

    /// <summary>Where a file is received before it is complete and checked (beside its final name, which it then takes).</summary>
    private static string PartialPath(string folder, string name) => Path.Combine(folder, "." + name + ".partial");

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
