using System.Diagnostics;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Dtls;

namespace SleapRtc.Client.Jobs;

/// <summary>What Submit-SleapTraining can set. Give a <see cref="Worker"/>, or a session string, or room credentials.</summary>
public sealed class SubmissionOptions
{
    /// <summary>The training package (Submit-SleapTraining); inference builds its own package and leaves this empty.</summary>
    public string PackagePath { get; init; } = "";
    /// <summary>Under which folder the job's own folder (<see cref="JobOutputFolder"/>) is made; default the current directory.</summary>
    public string? OutputPath { get; init; }
    /// <summary>Credentials already resolved by the caller; when set, the worker's, session string's and room fields below only pick the worker.</summary>
    public ResolvedRoom? Room { get; init; }
    /// <summary>A discovered worker (pipeline input); its Server/Token/RoomId are used unless given explicitly.</summary>
    public WorkerInfo? Worker { get; init; }
    public string? SessionString { get; init; }
    public string? RoomId { get; init; }
    public string? Token { get; init; }
    public string? Server { get; init; }
    public string? WorkerId { get; init; }
    /// <summary>Pick the worker with the most GPU memory; a busy refusal moves on to the next best.</summary>
    public bool AutoSelect { get; init; }
    public long MinGpuMemoryMB { get; init; }
    /// <summary>Asks the user when no worker, id or auto-selection is given; null makes that an error.</summary>
    public IWorkerChooser? Chooser { get; init; }
    public TimeSpan ChooserTimeout { get; init; } = WorkerSelection.DefaultPromptTimeout;
    public CredentialStore? CredentialStore { get; init; }

    public required IPeerConnectionFactory PeerConnectionFactory { get; init; }
    public PeerConnectionOptions? PeerConnection { get; init; }
    public ClientConnectionOptions Connection { get; init; } = new();
    public ClientJobOptions Job { get; init; } = new();
    /// <summary>Offer to open channel: longer than this and the worker is unreachable.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>What the hello asks of the worker: the job id, trainer overrides, a package on its data root, a checkpoint to resume.</summary>
    public JobRequest Request { get; init; } = new();
    /// <summary>-Queue: wait in the room's queue for a matching worker (MinGpuMemoryMB, a pinned worker) instead of needing a free one now.</summary>
    public QueueOptions? Queue { get; init; }
    /// <summary>An upload or results download cut off mid-file resumes over a new connection this many times (our workers only).</summary>
    public TransferRetryPolicy Retry { get; init; } = TransferRetryPolicy.Default;
}

/// <summary>What a queue ticket adds to a submission: its priority and the tags its worker must carry.</summary>
public sealed class QueueOptions
{
    /// <summary>-100..100; higher runs first, first come first served within a priority.</summary>
    public int Priority { get; init; }
    public string[] Tags { get; init; } = Array.Empty<string>();
}

/// <summary>
/// One Submit-SleapTraining: resolve the room, choose the worker, connect (offer, answer, channel
/// "my-data-channel"), run the job and return the result. Busy refusals surface the worker's message;
/// with AutoSelect the next best worker is tried. Cancellation stops the job on the worker.
/// </summary>
public sealed class TrainingSubmission
{
    public const string ChannelLabel = "my-data-channel";
    /// <summary>How many of the worker's last log lines a result keeps, to explain a failure without -Verbose.</summary>
    public const int LogTailLength = 20;
    private readonly SubmissionOptions _options;
    private readonly ILogSink _log;
    private readonly Queue<string> _logTail = new();
    private readonly Stopwatch _clock = new();
    private string? _workerId;
    private ClientJobSession? _session;
    /// <summary>Set while a retry resumes the cut-off upload of this package (the next session's hello says so).</summary>
    private TransferPoint? _resumeUpload;

    public TrainingSubmission(SubmissionOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _log = options.Connection.Log;
    }

    public event Action<SubmissionProgress>? ProgressChanged;
    public event Action<string>? LogLine;

    internal void RaiseProgress(SubmissionProgress progress) => ProgressChanged?.Invoke(progress);
    internal void RaiseLogLine(string line) => LogLine?.Invoke(line);
    /// <summary>Decisions worth telling the user ("Selected worker ...", "Worker X is busy, trying Y").</summary>
    public event Action<string>? StatusMessage;

    /// <summary>From sending the offer to the data channel being open, for the last connection made.</summary>
    public TimeSpan? ConnectTime { get; private set; }

    /// <summary>Which candidates carried the last connection ("relay 10.0.0.9:50012 (turn tcp) -> host 10.1.0.5:41234").</summary>
    public string? CandidatePair { get; private set; }

    /// <summary>From the start of <see cref="RunAsync"/> (credentials, sign-in, discovery, offer) to the data channel being open.</summary>
    public TimeSpan? TimeToChannelOpen { get; private set; }

    /// <summary>
    /// Runs the submission. A job the worker ran returns a result even when it failed (Status Failed, with the trainer's
    /// exit code and the worker's last log lines); errors are thrown for what kept the job from running at all.
    /// </summary>
    public Task<TrainingResult> RunAsync(CancellationToken cancellationToken) =>
        RunTrainingAsync(_options.Request with { ReturnWhenAccepted = false },
            (session, worker, packagePath, outputPath, clock, ct) => TrainAsync(session, worker, packagePath, outputPath, clock, ct), cancellationToken);

    /// <summary>
    /// -NoWait: runs the submission (the queue wait included) until the worker has accepted the package, then leaves the
    /// job to the worker and returns its handle. Needs one of our workers (a classic one keeps no job without its client).
    /// </summary>
    public Task<JobInfo> HandOverAsync(CancellationToken cancellationToken) =>
        RunTrainingAsync(_options.Request with { ReturnWhenAccepted = true },
            async (session, worker, packagePath, _, clock, ct) =>
            {
                await session.RunAsync(packagePath, Path.GetTempPath(), ct).ConfigureAwait(false);
                return HandedOverJob(session, worker, packagePath, clock);
            }, cancellationToken);

    private async Task<T> RunTrainingAsync<T>(JobRequest request, Func<ClientJobSession, WorkerInfo, string, string, Stopwatch, CancellationToken, Task<T>> job,
        CancellationToken cancellationToken)
    {
        // A package on the worker's data root is a relative name there, never a local file.
        var packagePath = request.WorkerPackagePath ?? Path.GetFullPath(_options.PackagePath);
        var outputPath = Path.GetFullPath(_options.OutputPath ?? Directory.GetCurrentDirectory());
        if (request.WorkerPackagePath is { } remote) SubmissionPreflight.CheckWorkerPackagePath(remote);
        else SubmissionPreflight.CheckPackage(packagePath);
        if (request.ResumeFromFolder is { } checkpoint) SubmissionPreflight.CheckResumeFolder(checkpoint);
        SubmissionPreflight.CheckOutputPath(outputPath);
        Func<ClientRoomConnection, CancellationToken, Task<IReadOnlyList<WorkerInfo>>>? queued =
            _options.Queue is { } queue ? (connection, ct) => WaitForTicketAsync(connection, queue, request, packagePath, "train", ct) : null;
        return await RunOnWorkerAsync("training", (channel, worker, clock, ct) =>
        {
            var useExtensions = JobExtensions.IsAdvertised(worker.Properties);
            if (!useExtensions && request.NeedsExtensions) throw new JobOptionUnsupportedException(worker.PeerId, request.FirstExtensionOption()!);
            var session = new ClientJobSession(channel, worker.PeerId, useExtensions, _options.Job, _log) { Request = RequestFor(request) };
            Follow(session);
            session.LogLine += l =>
            {
                RememberLogLine(l);
                LogLine?.Invoke(l);
            };
            return job(session, worker, packagePath, outputPath, clock, ct);
        }, cancellationToken, queued).ConfigureAwait(false);
    }

    /// <summary>
    /// A queued ticket may wait for hours: its connection re-registers under the same peer id when the server restarts
    /// or the network drops, so the server keeps the ticket (it does for a while) and the assignment still reaches us.
    /// </summary>
    private ClientConnectionOptions ConnectionOptions() =>
        _options.Queue is null || _options.Connection.Signaling is not null
            ? _options.Connection
            : new ClientConnectionOptions
            {
                Log = _options.Connection.Log,
                Signaling = new SignalingClientOptions { AutoReconnect = true, MaxReconnectDelay = TimeSpan.FromSeconds(5) },
            };

    /// <summary>
    /// -Queue: puts the ticket in the room's queue, reports its position while it waits, and returns the worker the server
    /// reserved for it (our workers only: the server hands tickets to nothing else). Ctrl+C while queued withdraws the ticket.
    /// <paramref name="kind"/> is the record's kind ("train", or "track" for Submit-SleapInference); the job then says
    /// <paramref name="request"/>'s job id in its hello, so the worker's reports move this ticket's record.
    /// </summary>
    internal async Task<IReadOnlyList<WorkerInfo>> WaitForTicketAsync(ClientRoomConnection connection, QueueOptions queue, JobRequest request,
        string packagePath, string kind, CancellationToken cancellationToken)
    {
        var signaling = connection.Signaling;
        if (!signaling.ServerSupportsJobQueue) throw new JobQueueUnsupportedException(connection.Server);
        var jobId = request.JobId;
        var assigned = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnAssigned(TicketAssignment a) { if (a.JobId == jobId) assigned.TrySetResult(a.WorkerId); }
        void OnPosition(TicketPosition p) { if (p.JobId == jobId) ReportQueued(p.Position); }
        signaling.TicketAssigned += OnAssigned;
        signaling.TicketPositionChanged += OnPosition;
        try
        {
            JobRecord ticket;
            try
            {
                ticket = await signaling.SubmitTicketAsync(Ticket(connection.Room, queue, request, packagePath, kind), cancellationToken).ConfigureAwait(false);
            }
            catch (SignalingException e) when (e.Code == JobQueueMessages.TicketRejected)
            {
                throw new TicketRejectedException(connection.Room.RoomId, e.Error?.Describe() ?? e.Message);
            }
            catch (SignalingException e)
            {
                throw new SignalingUnavailableException(connection.Server, e.Message, e);
            }
            Tell($"Queued as job {jobId} in room {connection.Room.RoomId}" + (ticket.Position is { } at ? $", position {at}." : "."));
            if (ticket.Position is { } position && !assigned.Task.IsCompleted) ReportQueued(position);
            string workerId;
            try
            {
                workerId = await WaitForAssignmentAsync(signaling, jobId, assigned.Task, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await WithdrawTicketAsync(signaling, jobId).ConfigureAwait(false);
                throw;
            }
            Tell($"Job {jobId} got worker {workerId}.");
            // The server reserved it for us and hands tickets only to our workers: no discovery round trip before the offer.
            var worker = new WorkerInfo { PeerId = workerId, RoomId = connection.Room.RoomId, Server = connection.Server, Token = connection.Room.Token };
            worker.Properties[JobExtensions.MetadataProperty] = JobExtensions.Version;
            return new[] { worker };
        }
        finally
        {
            signaling.TicketAssigned -= OnAssigned;
            signaling.TicketPositionChanged -= OnPosition;
        }
    }

    /// <summary>
    /// The assignment push, or the end of the ticket without one: the server tells no submitter that its ticket was
    /// cancelled (Stop-SleapJob from anywhere) or failed (assignments lapsed), so the record is looked at now and then.
    /// A lost connection is ridden out: it re-registers, and the next look tells.
    /// </summary>
    private static async Task<string> WaitForAssignmentAsync(SignalingClient signaling, string jobId, Task<string> assigned, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.WhenAny(assigned, Task.Delay(TicketCheckInterval, cancellationToken)).ConfigureAwait(false);
            if (assigned.IsCompleted) return await assigned.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            IReadOnlyList<JobRecord> records;
            try { records = await signaling.ListJobsAsync(jobId, null, cancellationToken).ConfigureAwait(false); }
            catch (SignalingException) { continue; }
            if (records.FirstOrDefault(r => r.JobId == jobId) is { } record && JobStates.IsFinished(record.State) && !assigned.IsCompleted)
                throw new QueuedJobEndedException(jobId, record.State, record.Error);
        }
    }

    /// <summary>How often a waiting ticket's record is checked for an end nobody announced.</summary>
    private static readonly TimeSpan TicketCheckInterval = TimeSpan.FromSeconds(3);

    private JobRecord Ticket(ResolvedRoom room, QueueOptions queue, JobRequest request, string packagePath, string kind) => new()
    {
        JobId = request.JobId,
        RoomId = room.RoomId,
        Kind = kind,
        PackageName = request.WorkerPackagePath ?? Path.GetFileName(packagePath),
        PackageSha256 = request.WorkerPackagePath is null ? FileSha256(packagePath) : null,
        PackageBytes = request.WorkerPackagePath is null ? new FileInfo(packagePath).Length : 0,
        Priority = queue.Priority,
        Requirements = new TicketRequirements
        {
            MinGpuMemoryMb = _options.MinGpuMemoryMB,
            Tags = queue.Tags,
            WorkerId = _options.Worker?.PeerId ?? _options.WorkerId ?? room.WorkerPeerId,
        },
        Overrides = request.Overrides is { IsEmpty: false } overrides ? overrides : null,
    };

    /// <summary>Best effort: a stopped submission should not leave its ticket to take a worker later.</summary>
    private async Task WithdrawTicketAsync(SignalingClient signaling, string jobId)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { await signaling.CancelJobAsync(jobId, keepCheckpoint: false, limit.Token).ConfigureAwait(false); }
        catch (Exception e) when (e is SignalingException or OperationCanceledException or IOException or InvalidOperationException)
        {
            _log.Write(LogLevel.Warning, "client", $"could not withdraw ticket {jobId}: {e.Message}");
        }
    }

    private static string FileSha256(string path)
    {
        using var sha = System.Security.Cryptography.SHA256.Create();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return string.Concat(sha.ComputeHash(stream).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    private JobInfo HandedOverJob(ClientJobSession session, WorkerInfo worker, string packagePath, Stopwatch clock)
    {
        var now = DateTimeOffset.UtcNow;
        var request = session.Request;
        return JobRecords.ToJobInfo(new JobRecord
        {
            JobId = session.JobId,
            RoomId = worker.RoomId,
            State = JobStates.Running,
            WorkerId = worker.PeerId,
            PackageName = request.WorkerPackagePath ?? Path.GetFileName(packagePath),
            Priority = _options.Queue?.Priority ?? 0,
            Overrides = request.Overrides,
            CreatedAt = (now - clock.Elapsed).ToUnixTimeMilliseconds(),
            StartedAt = now.ToUnixTimeMilliseconds(),
        }, now);
    }

    private void ReportQueued(int position) => ProgressChanged?.Invoke(new SubmissionProgress { Phase = SubmissionPhase.Queued, QueuePosition = position });

    /// <summary>
    /// Resolves the room, chooses the worker (busy refusals move AutoSelect on to the next best), opens the data
    /// channel and runs <paramref name="job"/> on it; the channel is closed afterwards. Shared by training and inference.
    /// </summary>
    /// <param name="chooseTarget">Overrides how the target is found (an inference space's holder); null chooses a worker as training does.</param>
    internal async Task<T> RunOnWorkerAsync<T>(string jobKind, Func<IDataChannel, WorkerInfo, Stopwatch, CancellationToken, Task<T>> job, CancellationToken cancellationToken,
        Func<ClientRoomConnection, CancellationToken, Task<IReadOnlyList<WorkerInfo>>>? chooseTarget = null)
    {
        var clock = _clock;
        clock.Restart();
        var room = ResolveRoom();
        Report(SubmissionPhase.Discovering, null);
        await using var connection = await ClientRoomConnection.ConnectAsync(room, ConnectionOptions(), cancellationToken).ConfigureAwait(false);
        var candidates = chooseTarget is null
            ? await ChooseCandidatesAsync(connection, room, cancellationToken).ConfigureAwait(false)
            : await chooseTarget(connection, cancellationToken).ConfigureAwait(false);

        WorkerBusyException? lastBusy = null;
        foreach (var worker in candidates)
        {
            try
            {
                return await SubmitToAsync(connection, worker, jobKind, job, clock, cancellationToken).ConfigureAwait(false);
            }
            catch (WorkerBusyException busy) when (_options.AutoSelect)
            {
                lastBusy = busy;
                Tell($"Worker {worker.PeerId} is {busy.CurrentStatus}; trying the next best worker.");
            }
        }
        throw lastBusy is null
            ? NoWorkersAvailableException.EmptyRoom(room.RoomId, _options.MinGpuMemoryMB)
            : NoWorkersAvailableException.AllBusy(room.RoomId, candidates.Count);
    }

    /// <summary>
    /// What is known of a job that was stopped before it finished (Stop-Job, Ctrl+C): Status Cancelled, the worker, the
    /// job id if the worker had assigned one, and its last log lines.
    /// </summary>
    public TrainingResult CancelledResult() => new()
    {
        JobId = _session?.JobId ?? "",
        WorkerId = _workerId ?? "",
        Status = "Cancelled",
        PackagePath = Path.GetFullPath(_options.PackagePath),
        Duration = _clock.Elapsed,
        Error = "The job was cancelled before it finished.",
        LastLogLines = LogTail(),
    };

    private void RememberLogLine(string line)
    {
        lock (_logTail)
        {
            _logTail.Enqueue(line);
            while (_logTail.Count > LogTailLength) _logTail.Dequeue();
        }
    }

    private string[] LogTail()
    {
        lock (_logTail) return _logTail.ToArray();
    }

    private ResolvedRoom ResolveRoom()
    {
        if (_options.Room is { } resolved) return resolved;
        if (_options.Worker is { } w && string.IsNullOrEmpty(_options.SessionString))
        {
            return CredentialResolver.Resolve(_options.RoomId ?? w.RoomId, _options.Token ?? w.Token, _options.Server ?? w.Server, null, _options.CredentialStore);
        }
        return CredentialResolver.Resolve(_options.RoomId, _options.Token, _options.Server, _options.SessionString, _options.CredentialStore);
    }

    /// <summary>The worker(s) to try, best first: one for a direct target, the ranked room for AutoSelect.</summary>
    private async Task<IReadOnlyList<WorkerInfo>> ChooseCandidatesAsync(ClientRoomConnection connection, ResolvedRoom room, CancellationToken cancellationToken)
    {
        var targetId = _options.Worker?.PeerId ?? _options.WorkerId ?? room.WorkerPeerId;
        if (targetId is not null && !_options.AutoSelect)
        {
            // Direct: no selection, but read its metadata to know whether it speaks our extensions.
            var everyone = await connection.DiscoverWorkersAsync(new WorkerFilter { Status = null }, cancellationToken).ConfigureAwait(false);
            var known = everyone.FirstOrDefault(w => w.PeerId == targetId);
            if (known is null && _options.WorkerId is not null) throw new WorkerNotFoundException(targetId, room.RoomId);
            return new[] { known ?? new WorkerInfo { PeerId = targetId, RoomId = room.RoomId, Server = connection.Server, Token = room.Token } };
        }

        var filter = new WorkerFilter { MinGpuMemoryMB = _options.MinGpuMemoryMB };
        var available = await connection.DiscoverWorkersAsync(filter, cancellationToken).ConfigureAwait(false);
        if (_options.AutoSelect)
        {
            var ranked = WorkerSelection.RankByGpuMemory(available);
            if (ranked.Count == 0) throw await connection.ExplainNoneAvailableAsync(_options.MinGpuMemoryMB, cancellationToken).ConfigureAwait(false);
            Tell($"Found {ranked.Count} available worker(s). Auto-selecting the one with the most GPU memory: {ranked[0].PeerId} ({ranked[0].GpuModel}, {ranked[0].GpuMemoryMB} MB)");
            return ranked;
        }
        if (_options.Chooser is null)
            throw new SleapRtcException("WorkerSelectionRequired", SleapRtcErrorKind.InvalidArgument,
                "No worker was chosen and there is no interactive host to ask.",
                "Use -AutoSelect to pick the worker with the most GPU memory, -WorkerId to name one, or pipe a worker from Get-SleapWorker.");
        if (available.Count == 0) throw await connection.ExplainNoneAvailableAsync(_options.MinGpuMemoryMB, cancellationToken).ConfigureAwait(false);
        async Task<IReadOnlyList<WorkerInfo>> RefreshAsync(CancellationToken token)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            return await connection.DiscoverWorkersAsync(filter, timeout.Token).ConfigureAwait(false);
        }
        return new[] { await WorkerSelection.SelectInteractiveAsync(_options.Chooser, available, RefreshAsync, _options.ChooserTimeout, room.RoomId, cancellationToken).ConfigureAwait(false) };
    }

    /// <summary>
    /// Runs the job on the worker; when the connection is lost mid-upload and the worker can resume (our workers, issue 16),
    /// reconnects (offer purpose "resume") up to <see cref="SubmissionOptions.Retry"/> times and sends only what the worker
    /// does not hold yet.
    /// </summary>
    private async Task<T> SubmitToAsync<T>(ClientRoomConnection connection, WorkerInfo worker, string jobKind,
        Func<IDataChannel, WorkerInfo, Stopwatch, CancellationToken, Task<T>> job, Stopwatch clock, CancellationToken cancellationToken)
    {
        _resumeUpload = null;
        var retry = 0;
        while (true)
        {
            try
            {
                return await ConnectAndRunAsync(connection, worker, jobKind, job, clock, _resumeUpload is null ? null : JobQueueMessages.ResumePurpose, cancellationToken).ConfigureAwait(false);
            }
            catch (SleapRtcException e) when (e is WorkerLostException or WorkerUnreachableException or WorkerBusyException
                && retry < _options.Retry.MaxRetries && ResumableUpload(e) is { } upload)
            {
                // A worker that left the room (stopped, killed) keeps nothing to resume: say what happened at once.
                if (!await StillInRoomAsync(connection, worker.PeerId, cancellationToken).ConfigureAwait(false)) throw;
                retry++;
                _resumeUpload = upload;
                var delay = _options.Retry.Delay(retry);
                Tell($"{e.Message.TrimEnd('.')}. Resuming the upload of {upload.Name} in {delay.TotalSeconds:0.#} s (retry {retry} of {_options.Retry.MaxRetries}).");
                ProgressChanged?.Invoke(new SubmissionProgress
                {
                    Phase = SubmissionPhase.Uploading, WorkerId = worker.PeerId, BytesTotal = upload.Size, BytesDone = Interlocked.Read(ref _lastUploadedBytes),
                    RetryAttempt = retry, MaxRetries = _options.Retry.MaxRetries,
                });
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private long _lastUploadedBytes;

    private static async Task<bool> StillInRoomAsync(ClientRoomConnection connection, string workerId, CancellationToken cancellationToken)
    {
        try
        {
            var everyone = await connection.DiscoverWorkersAsync(new WorkerFilter { Status = null }, cancellationToken).ConfigureAwait(false);
            return everyone.Any(w => w.PeerId == workerId);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return true; // the signaling server did not answer (it may be back for the retry): try anyway
        }
    }

    /// <summary>The request for the next session: after a cut-off upload, the same job id (the worker adopted it) and the
    /// package to resume.</summary>
    internal JobRequest RequestFor(JobRequest request) =>
        _resumeUpload is { } resume && _session is { } cut ? request with { JobId = cut.JobId, ResumeUpload = resume } : request;

    /// <summary>The session now running (training or inference): its progress is raised here and its state decides a retry.</summary>
    internal void Follow(ClientJobSession session)
    {
        _session = session;
        session.ProgressChanged += p =>
        {
            if (p.Phase == SubmissionPhase.Uploading) Interlocked.Exchange(ref _lastUploadedBytes, p.BytesDone);
            ProgressChanged?.Invoke(p);
        };
    }

    /// <summary>
    /// The package whose upload a lost connection cut off, when a new connection can resume it: our worker announced the
    /// feature, the package was not yet accepted, it is a plain package (not on the worker's data root, no checkpoint sent
    /// before it). A connection that fails while resuming is retried alike.
    /// </summary>
    private TransferPoint? ResumableUpload(SleapRtcException failure)
    {
        // Past the last chunk but before SLEAPRTC_ACCEPTED the worker may still lack the end of the package (it sat in the
        // send buffer when the link went down): that counts as cut off too.
        if (_session is not { WorkerResumes: true, PackageAccepted: false, Phase: SubmissionPhase.Uploading or SubmissionPhase.Training } session) return null;
        if (session.Request.WorkerPackagePath is not null || session.Request.ResumeFromFolder is not null) return null;
        // Busy or unreachable only count while resuming: on a first connection they are the answer.
        if (failure is not WorkerLostException && _resumeUpload is null) return null;
        return ClientJobSession.UploadPoint(session.PackagePath);
    }

    private async Task<T> ConnectAndRunAsync<T>(ClientRoomConnection connection, WorkerInfo worker, string jobKind,
        Func<IDataChannel, WorkerInfo, Stopwatch, CancellationToken, Task<T>> job, Stopwatch clock, string? purpose, CancellationToken cancellationToken)
    {
        Report(SubmissionPhase.Connecting, worker.PeerId);
        _workerId = worker.PeerId;
        Tell(purpose is null ? $"Connecting to worker {worker.PeerId}..." : $"Reconnecting to worker {worker.PeerId}...");
        var peer = WorkerChannel.CreatePeer(connection, _options.PeerConnectionFactory, _options.PeerConnection);
        var workerLost = false;
        try
        {
            var (channel, connectTime) = await WorkerChannel.OfferAsync(connection, peer, worker.PeerId, purpose,
                WorkerChannel.MustAuthenticate(connection, worker), _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            ConnectTime = connectTime;
            CandidatePair = peer.SelectedCandidatePair?.ToString();
            _log.Write(LogLevel.Information, "client", $"data channel to {worker.PeerId} open after {connectTime.TotalMilliseconds:F0} ms over {CandidatePair ?? "an unknown path"}");
            TimeToChannelOpen = clock.Elapsed;
            Tell($"Connection established. Starting {jobKind} job...");
            try
            {
                return await job(channel, worker, clock, cancellationToken).ConfigureAwait(false);
            }
            catch (WorkerLostException)
            {
                workerLost = true;
                throw;
            }
            finally
            {
                // A vanished worker cannot take part in a graceful close; waiting for it would only delay the error.
                if (!workerLost)
                {
                    try { await channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
                    catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
                }
            }
        }
        finally
        {
            // A graceful shutdown waits for a vanished worker in vain (seconds): let it finish behind the error.
            if (workerLost) _ = peer.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            else await peer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<TrainingResult> TrainAsync(ClientJobSession session, WorkerInfo worker, string packagePath, string outputPath, Stopwatch clock, CancellationToken cancellationToken)
    {
        ClientJobOutcome outcome;
        try
        {
            outcome = await session.RunAsync(packagePath, outputPath, cancellationToken).ConfigureAwait(false);
        }
        catch (WorkerLostException lost) when (session is { WorkerResumes: true, PackageAccepted: true, Phase: SubmissionPhase.Downloading }
            && _options.Retry.MaxRetries > 0)
        {
            // Issue 16: the link went down mid-download; the worker keeps the accepted job's results, so a collection
            // continues the archive from the bytes already here.
            Tell($"{lost.Message.TrimEnd('.')}. Collecting the rest of the results from worker {worker.PeerId}.");
            outcome = await CollectRestAsync(session, worker, cancellationToken).ConfigureAwait(false);
        }
        catch (JobFailedException refused)
        {
            // The worker got the package but could not run it: still a job of this worker, reported as a result.
            return new TrainingResult
            {
                JobId = session.JobId, WorkerId = worker.PeerId, Status = "Failed", Duration = clock.Elapsed,
                PackagePath = packagePath, Error = refused.Message, LastLogLines = LogTail(), CandidatePair = CandidatePair,
            };
        }
        var succeeded = outcome.FailedConfigs.Count == 0 && outcome.Configs.Count > 0;
        var jobFolder = outcome.OutputPath;
        return new TrainingResult
        {
            JobId = session.JobId,
            WorkerId = worker.PeerId,
            Status = succeeded ? "Succeeded" : "Failed",
            OutputPath = jobFolder,
            ModelPaths = jobFolder is null ? Array.Empty<string>() : TopLevelEntries(jobFolder, outcome.ExtractedFiles),
            Duration = clock.Elapsed,
            Configs = outcome.Configs.ToArray(),
            PackagePath = packagePath,
            UploadedBytes = outcome.UploadedBytes,
            UploadMBps = outcome.UploadMBps,
            CandidatePair = CandidatePair,
            ExitCode = outcome.FirstExitCode,
            LastLogLines = succeeded ? Array.Empty<string>() : LogTail(),
            Error = succeeded ? null : outcome.Configs.Count == 0
                ? "The worker trained no config."
                : $"{outcome.FailedConfigs.Count} of {outcome.Configs.Count} configs failed: {string.Join(", ", outcome.FailedConfigs)}",
        };
    }

    /// <summary>The results download continued as a collection (same job folder), with the retries of <see cref="SubmissionOptions.Retry"/>.</summary>
    private async Task<ClientJobOutcome> CollectRestAsync(ClientJobSession session, WorkerInfo worker, CancellationToken cancellationToken)
    {
        var partial = session.PartialResults;
        var folder = session.OutputFolder ?? JobOutputFolder.Create(Path.GetFullPath(_options.OutputPath ?? Directory.GetCurrentDirectory()),
            session.PackagePath, session.JobId, DateTimeOffset.Now);
        var options = new WorkerChannelOptions
        {
            PeerConnectionFactory = _options.PeerConnectionFactory, PeerConnection = _options.PeerConnection, Connection = _options.Connection,
            ConnectTimeout = _options.ConnectTimeout, Retry = _options.Retry,
            IdleTimeout = _options.Job.HeartbeatTimeout > TimeSpan.Zero ? _options.Job.HeartbeatTimeout + _options.Job.HeartbeatTimeout : JobCollection.DefaultIdleTimeout,
        };
        var partials = partial is null ? new List<PartialFile>() : new List<PartialFile> { partial };
        ProgressChanged?.Invoke(new SubmissionProgress
        {
            Phase = SubmissionPhase.Downloading, WorkerId = worker.PeerId, BytesDone = partial?.Bytes ?? 0, BytesTotal = partial?.Size ?? 0,
            RetryAttempt = 1, MaxRetries = _options.Retry.MaxRetries,
        });
        await Task.Delay(_options.Retry.Delay(1), cancellationToken).ConfigureAwait(false);
        var collected = await JobCollection.CollectAsync(ResolveRoom(), worker.PeerId, session.JobId, folder, options, cancellationToken, partials,
            p => ProgressChanged?.Invoke(p)).ConfigureAwait(false);
        return session.CompleteFromCollection(collected.Files, folder, cancellationToken);
    }

    internal static string[] TopLevelEntries(string outputPath, IReadOnlyList<string> files) =>
        files.Select(f => Path.GetRelativePath(outputPath, f).Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)[0])
            .Distinct(StringComparer.Ordinal)
            .Select(first => Path.Combine(outputPath, first))
            .ToArray();


    private void Report(SubmissionPhase phase, string? workerId) => ProgressChanged?.Invoke(new SubmissionProgress { Phase = phase, WorkerId = workerId });

    private void Tell(string message)
    {
        _log.Write(LogLevel.Information, "client", message);
        StatusMessage?.Invoke(message);
    }
}
