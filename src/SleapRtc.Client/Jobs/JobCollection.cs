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
/// SLEAPRTC_COLLECTED. A clean close afterwards tells the worker the results arrived; it then deletes its copy.
/// </summary>
public static class JobCollection
{
    /// <summary>Longest silence from the worker while collecting before it counts as lost.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    /// <exception cref="JobResultsNotFoundException">The worker holds no results for <paramref name="jobId"/>.</exception>
    public static async Task<CollectedJob> CollectAsync(ResolvedRoom room, string workerId, string jobId, string outputDirectory,
        WorkerChannelOptions options, CancellationToken cancellationToken)
    {
        await using var connection = await WorkerChannel.OpenAsync(room, workerId, Protocol.Signaling.JobQueueMessages.CollectPurpose, options, cancellationToken).ConfigureAwait(false);
        return await ReceiveAsync(connection.Channel, workerId, jobId, outputDirectory, DefaultIdleTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The collection on an already open channel (the caller closes it afterwards; a clean close confirms delivery).</summary>
    public static async Task<CollectedJob> ReceiveAsync(IDataChannel channel, string workerId, string jobId, string outputDirectory,
        TimeSpan idleTimeout, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(outputDirectory);
        var done = new TaskCompletionSource<CollectedJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        var files = new List<string>();
        FileReceiver? current = null;
        var lastHeard = Environment.TickCount64;
        void OnMessage(DataChannelMessage message)
        {
            Interlocked.Exchange(ref lastHeard, Environment.TickCount64);
            try
            {
                if (!message.IsText)
                {
                    if (!JobMessages.IsKeepAlive(message.Binary.Span)) current?.Write(message.Binary.Span);
                    return;
                }
                var (type, args) = JobMessages.Parse(message.Text!);
                switch (type)
                {
                    case JobMessages.FileMeta when FileMetaInfo.TryParse(args[0], out var meta) && meta is not null:
                        var name = FileMetaInfo.WireSafeName(meta.Name);
                        if (name.Length == 0 || name is "." or "..") name = "results.bin";
                        var path = Path.Combine(outputDirectory, name);
                        if (File.Exists(path)) File.Delete(path);
                        current = new FileReceiver(meta with { Name = name }, path);
                        break;
                    case JobMessages.Sha256:
                        current?.ExpectSha256(args.FirstOrDefault() ?? "");
                        break;
                    case JobMessages.EndOfFile when current is not null:
                        current.Complete();
                        files.Add(current.Path);
                        current.Dispose();
                        current = null;
                        break;
                    case JobMessages.Collected:
                        var summary = JsonDocument.Parse(args.FirstOrDefault() ?? "{}").RootElement;
                        var state = summary.TryGetProperty("state", out var s) ? s.GetString() ?? "" : "";
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
            catch (Exception e) when (e is IOException or FileChecksumException or JsonException or InvalidOperationException)
            {
                done.TrySetException(e is FileChecksumException ? new JobFailedException(workerId, JobErrorCodes.ChecksumMismatch, e.Message) : e);
            }
        }
        void OnClosed(Exception? error) => done.TrySetException(new WorkerLostException(workerId, "collect", "the data channel closed"));
        channel.MessageReceived += OnMessage;
        channel.Closed += OnClosed;
        try
        {
            channel.Send(JobMessages.Format(JobMessages.Hello, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["version"] = JobExtensions.Version, ["features"] = JobExtensions.AllFeatures, ["job_id"] = jobId, ["mode"] = JobExtensions.Handshake.ModeCollect,
            })));
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
            if (current is not null) { current.Abort(); current.Dispose(); }
        }
    }
}
