using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Jobs;

/// <summary>
/// One training job on the worker side of a data channel, in the classic order: receive the package
/// (streamed to disk), unpack it safely, train every config of train-script.sh, stream the output, send
/// the zipped models back. Classic clients and ours are both served; extensions only after a hello.
/// With our clients (issue 12) the job is detached from the channel once the package is unpacked and checked:
/// the worker says SLEAPRTC_ACCEPTED and from then the job runs to its end whether or not the client stays; its
/// results are kept in the <see cref="JobResultStore"/> unless they reached the client.
/// </summary>
/// <remarks>A received package (uploaded, or a file under the worker's data root which is never moved or deleted).</remarks>
public sealed partial class WorkerJobSession
{
    private readonly IDataChannel _channel;
    private readonly WorkerJobOptions _options;
    private readonly ILogSink _log;
    private readonly FrameWriter _writer;
    private readonly TaskCompletionSource<ReceivedPackage> _packageReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _abort = new();
    private readonly object _gate = new();
    private FileReceiver? _receiver;
    private string _outputDirectory = "models";
    private string? _packageType;
    private volatile bool _extensions;
    private readonly ChannelLiveness _liveness;
    private WorkerJobEnd? _abortReason;
    private string _jobDirectory;
    private FolderLock? _jobFolderLock;
    /// <summary>Set once the package is unpacked and checked: from then a closing channel no longer ends the job.</summary>
    private volatile bool _accepted;
    /// <summary>The client left after <see cref="_accepted"/>: nothing more is sent, the results are kept.</summary>
    private volatile bool _clientGone;
    private volatile bool _closedCleanly;
    private TrainingOverrides? _overrides;
    /// <summary>The resume checkpoint zip (resume-&lt;folder&gt;.zip), received before the package.</summary>
    private string? _resumeZip;
    private bool _receivingResume;
    /// <summary>A package under the data root (hello worker_package_path), ready once the client's OUTPUT_DIR arrived.</summary>
    private string? _workerPackage;
    private readonly CancellationTokenSource _stopEarly = new();
    private volatile bool _resultsKept;
    private StreamWriter? _jobLog;
    private readonly JobRecord _record;
    /// <summary>The client announced the resume feature: an upload cut off mid-file is kept for it (see <see cref="TryParkUpload"/>).</summary>
    private volatile bool _clientResumes;
    /// <summary>SLEAPRTC_TRANSFER_FROM: the byte the client's next FILE_META starts at (resumed uploads).</summary>
    private long _transferFrom;
    /// <summary>This session continues a kept upload: <see cref="_receiver"/> holds its first bytes.</summary>
    private bool _resumedUpload;
    /// <summary>The partial upload went to the host to keep: the folder is not removed with the session.</summary>
    private bool _parked;

    /// <summary>Starts listening on the channel at once; call <see cref="RunAsync"/> to run the job.</summary>
    public WorkerJobSession(IDataChannel channel, WorkerJobOptions options, ILogSink? log = null)
    {
        _channel = channel;
        _options = options;
        _log = log ?? Log.Null;
        JobId = JobIds.New();
        _jobDirectory = Path.Combine(options.JobsDirectory, JobId);
        _record = new JobRecord { JobId = JobId, State = JobStates.Uploading, ChannelAuth = options.ChannelAuth };
        _writer = ChannelDelivery.WriterFor(channel, options.HighWaterMark);
        _liveness = new ChannelLiveness(options.KeepAliveInterval, options.IdleTimeout, options.HeartbeatInterval, options.HeartbeatTimeout);
        Progress = new JobProgress { JobId = JobId, Phase = "upload" };
        // Listen from the moment the channel exists: the client starts sending as soon as it is open,
        // possibly before RunAsync is called, and a message with no listener is lost.
        _channel.MessageReceived += OnMessage;
        _channel.Closed += OnClosed;
    }

    /// <summary>The worker's id for the job, or the client's (hello job_id) when it is well formed and new on this worker.</summary>
    public string JobId { get; private set; }
    public JobProgress Progress { get; }
    public bool ExtensionsEnabled => _extensions;
    /// <summary>True once the job runs to its end whatever the client does (SLEAPRTC_ACCEPTED was sent).</summary>
    public bool Accepted => _accepted;

    /// <summary>The job's record changed state (Uploading, Running, Succeeded/Failed/Cancelled): a copy, for the server.</summary>
    public event Action<JobRecord>? StateChanged;

    /// <summary>The package arrived and training starts: the host sets status busy.</summary>
    public event Action? JobStarted;
    /// <summary>Structured progress changed (raised often; subscribers rate-limit).</summary>
    public event Action<JobProgress>? ProgressChanged;
    /// <summary>A trainer output line or a worker message about the job.</summary>
    public event Action<string>? LogLine;

    /// <summary>Ends the job from the host side (worker stopping).</summary>
    public void Stop() => Abort(WorkerJobEnd.Stopped);

    /// <summary>The peer connection failed or closed: the client is gone (an accepted job carries on).</summary>
    public void PeerLost() => Abort(WorkerJobEnd.ClientGone);

    /// <summary>Stops the job (job_cancel from the server). With <paramref name="keepCheckpoint"/> a training job stops early
    /// like classic JOB_STOP (SIGINT, best checkpoint kept as its result, state Cancelled); otherwise the trainer is killed.</summary>
    public void Cancel(bool keepCheckpoint)
    {
        if (keepCheckpoint && _accepted && _packageType != JobMessages.TrackPackage)
        {
            Emit("Stop requested; the trainer stops early and keeps its best checkpoint.");
            try { _stopEarly.Cancel(); } catch (ObjectDisposedException) { }
            return;
        }
        Emit("Cancel requested; stopping the trainer.");
        Abort(WorkerJobEnd.Cancelled);
    }

    public async Task<WorkerJobOutcome> RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _abort.Token);
        // An accepted job no longer depends on the client, so its silence is no longer judged.
        var keepAlive = _liveness.RunAsync(_writer, () => !_accepted, () =>
        {
            // With heartbeats a silence is reported every tick; once the client is known gone there is nothing to add.
            if (_clientGone) return;
            Emit(_accepted ? $"The client sent nothing for {_liveness.SilenceLimit.TotalSeconds:0} s."
                : $"The client sent nothing for {_liveness.SilenceLimit.TotalSeconds:0} s; ending the job.");
            Abort(WorkerJobEnd.ClientGone);
        }, linked.Token);
        var configs = new List<string>();
        var failed = 0;
        try
        {
            if (_channel.State is DataChannelState.Closed or DataChannelState.Closing) Abort(WorkerJobEnd.ClientGone);
            var package = await _packageReady.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            JobStarted?.Invoke();
            if (_packageType == JobMessages.TrackPackage) return Finish(await RunTrackAsync(package, linked.Token).ConfigureAwait(false));
            var workDirectory = Unpack(package, TrainScript.FileName);
            configs.AddRange(ReadConfigs(workDirectory));
            var resumeCheckpoint = UnpackResumeCheckpoint();
            Accept();
            failed = await TrainAllAsync(workDirectory, configs, resumeCheckpoint, linked.Token).ConfigureAwait(false);
            var stoppedEarly = _stopEarly.IsCancellationRequested;
            var end = stoppedEarly ? WorkerJobEnd.Cancelled : failed == 0 ? WorkerJobEnd.Succeeded : WorkerJobEnd.Failed;
            var error = stoppedEarly ? "Stopped early on request; the best checkpoint so far is the result"
                : failed == 0 ? null : $"{failed} of {configs.Count} configs failed";
            _writer.TrySendText(JobMessages.TrainingJobsDone);
            await DeliverResultsAsync(workDirectory, package.Name, end, error, linked.Token).ConfigureAwait(false);
            SetPhase(end == WorkerJobEnd.Succeeded ? "done" : end == WorkerJobEnd.Cancelled ? "cancelled" : "failed");
            return Finish(new WorkerJobOutcome(JobId, end, configs, failed, error));
        }
        catch (OperationCanceledException)
        {
            var reason = _abortReason ?? WorkerJobEnd.Stopped;
            if (reason == WorkerJobEnd.ClientGone && TryParkUpload() is { } parked) return parked;
            if (reason == WorkerJobEnd.Cancelled) _writer.TrySendText(_extensions ? JobMessages.Cancelled : "Job cancelled.\n");
            SetPhase(reason == WorkerJobEnd.Cancelled ? "cancelled" : "failed");
            return Finish(new WorkerJobOutcome(JobId, reason, configs, failed, reason switch
            {
                WorkerJobEnd.Cancelled => "Job cancelled",
                WorkerJobEnd.ClientGone => "The client disconnected",
                _ => "The worker stopped",
            }));
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException && _channel.State != DataChannelState.Open && !_accepted)
        {
            // A send raced the close notification: the client is gone.
            Abort(WorkerJobEnd.ClientGone);
            SetPhase("failed");
            return Finish(new WorkerJobOutcome(JobId, WorkerJobEnd.ClientGone, configs, failed, "The client disconnected"));
        }
        catch (JobFailureException failure)
        {
            Emit($"ERROR: {failure.Message}");
            if (_extensions) _writer.TrySendText(JobExtensions.ErrorMessage(failure.Code, failure.Message));
            // Classic track clients know only INFERENCE_ERROR (ours read the coded error above first).
            if (_packageType == JobMessages.TrackPackage) _writer.TrySendText(InferenceErrorMessage(failure.Message));
            SetPhase("failed");
            await WaitForClientToFinishAsync(linked.Token).ConfigureAwait(false);
            return Finish(new WorkerJobOutcome(JobId, WorkerJobEnd.Failed, configs, failed, failure.Message));
        }
        finally
        {
            // The outcome is decided; stop the keep-alive loop before waiting for it.
            _accepted = false;
            Abort(WorkerJobEnd.Stopped);
            await keepAlive.ConfigureAwait(false);
            Abandon();
        }
    }

    /// <summary>The package is unpacked and checked: from here the job runs to its end (our clients are told so).</summary>
    private void Accept()
    {
        if (!_extensions) return; // a classic client cannot come back for its results: its job ends with its channel, as before
        _accepted = true;
        _writer.TrySendText(JobMessages.Format(JobMessages.Accepted, System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["job_id"] = JobId })));
        if (_abortReason == WorkerJobEnd.ClientGone || _channel.State != DataChannelState.Open) _clientGone = true;
        Emit($"Job {JobId} accepted: it runs to its end whether or not the client stays connected.");
        lock (_gate)
        {
            _record.State = JobStates.Running;
            _record.StartedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        }
        RaiseStateChanged();
    }

    /// <summary>The end of the job for the server's record (and the results' availability).</summary>
    private WorkerJobOutcome Finish(WorkerJobOutcome outcome)
    {
        lock (_gate)
        {
            _record.State = outcome.End switch
            {
                WorkerJobEnd.Succeeded => JobStates.Succeeded,
                WorkerJobEnd.Cancelled => JobStates.Cancelled,
                _ => JobStates.Failed,
            };
            _record.Error = outcome.Error;
            _record.FinishedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            _record.ResultsAvailable = _resultsKept && _options.Results?.Contains(JobId) == true;
            _record.Progress = JobReporter.ToRecordProgress(Progress);
        }
        RaiseStateChanged();
        return outcome;
    }

    /// <summary>The record as it stands (a copy).</summary>
    public JobRecord SnapshotRecord() { lock (_gate) return _record.Clone(); }

    private void RaiseStateChanged()
    {
        JobRecord copy;
        lock (_gate) copy = _record.Clone();
        StateChanged?.Invoke(copy);
    }

    /// <summary>Stops listening and removes everything the job wrote (also for a session that never ran).</summary>
    public void Abandon()
    {
        Abort(WorkerJobEnd.Stopped);
        _channel.MessageReceived -= OnMessage;
        _channel.Closed -= OnClosed;
        lock (_gate) { _receiver?.Abort(); _receiver?.Dispose(); _receiver = null; }
        CloseJobLog();
        if (!_resultsKept && !_parked) DeleteJobDirectory();
    }

    private void OnMessage(DataChannelMessage message)
    {
        _liveness.Heard();
        try
        {
            if (message.IsText) OnText(message.Text!);
            else OnBinary(message.Binary.Span);
        }
        catch (FileChecksumException e)
        {
            Fail(JobErrorCodes.ChecksumMismatch, e.Message);
        }
        catch (IOException e)
        {
            Fail(JobErrorCodes.Internal, "The worker could not store the upload: " + e.Message);
        }
    }

    private void OnBinary(ReadOnlySpan<byte> frame)
    {
        if (JobMessages.IsKeepAlive(frame)) return;
        lock (_gate)
        {
            if (_receiver is null || _packageReady.Task.IsCompleted) return;
            _receiver.Write(frame);
            Progress.Phase = "upload";
        }
    }

    private void OnText(string text)
    {
        var (type, args) = JobMessages.Parse(text);
        switch (type)
        {
            case JobMessages.Hello:
                OnHello(JobExtensions.ParseHandshake(args.FirstOrDefault() ?? ""));
                break;
            case JobMessages.Heartbeat:
                break; // OnMessage already noted that the client is alive

            case JobMessages.PackageType:
                _packageType = args.FirstOrDefault();
                if (_packageType is not (JobMessages.TrainPackage or JobMessages.TrackPackage))
                    Fail(JobErrorCodes.BadPackage, $"This worker runs training and track packages only (got '{_packageType}').");
                break;
            case JobMessages.OutputDir:
                // "." is what classic track clients send (the package folder itself).
                _outputDirectory = args.FirstOrDefault()?.Trim() == "." ? "." : SafeRelativeDirectory(args.FirstOrDefault()) ?? "models";
                // OUTPUT_DIR is the last setting a client sends before its upload: a data-root package is ready now.
                if (_workerPackage is { } onDataRoot && !_packageReady.Task.IsCompleted)
                {
                    EnsureJobFolder();
                    SetUploading(Path.GetFileName(onDataRoot), new FileInfo(onDataRoot).Length);
                    _packageReady.TrySetResult(new ReceivedPackage(onDataRoot, Path.GetFileName(onDataRoot), Owned: false));
                }
                break;
            case JobMessages.TransferFrom:
                if (!long.TryParse(args.FirstOrDefault(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var from))
                    Fail(JobErrorCodes.BadPackage, "SLEAPRTC_TRANSFER_FROM needs a byte offset.");
                else lock (_gate) _transferFrom = from;
                break;
            case JobMessages.FileMeta:
                BeginFile(args[0]);
                break;
            case JobMessages.Sha256:
                lock (_gate) _receiver?.ExpectSha256(args.FirstOrDefault() ?? "");
                break;
            case JobMessages.EndOfFile:
                lock (_gate)
                {
                    if (_receiver is null || _packageReady.Task.IsCompleted) return;
                    _receiver.Complete();
                    if (_receivingResume)
                    {
                        // The resume checkpoint came first; the package follows on the next FILE_META.
                        _resumeZip = _receiver.Path;
                        _receiver.Dispose();
                        _receiver = null;
                        _receivingResume = false;
                        return;
                    }
                    _record.PackageSha256 = _receiver.Sha256;
                    _packageReady.TrySetResult(new ReceivedPackage(_receiver.Path, _receiver.Meta.Name, Owned: true, _receiver.SplitEntries.ToArray()));
                }
                break;
            case JobMessages.UpstreamJobStop:
                // Classic JOB_STOP: stop early and keep the best checkpoint (sleap-rtc 0.0.7 sends SIGINT).
                Cancel(keepCheckpoint: true);
                break;
            case JobMessages.Cancel or JobMessages.UpstreamJobCancel:
                Emit("Cancel requested by the client; stopping the trainer.");
                Abort(WorkerJobEnd.Cancelled);
                break;
            default:
                _log.Write(LogLevel.Debug, "worker-job", $"ignored message type '{Truncate(type)}'");
                break;
        }
    }

    /// <summary>Our client's hello: the job id to adopt, its training overrides and a data-root package, all checked here.</summary>
    private void OnHello(JobExtensions.Handshake? hello)
    {
        _extensions = true;
        _clientResumes = hello?.Has(JobExtensions.FeatureResume) == true;
        var resumed = hello is { JobId: { } resumeId, ResumeUpload: { } upload } && _options.ClaimParkedUpload?.Invoke(resumeId, upload) is { } kept && ResumeUpload(kept);
        if (!resumed && hello?.JobId is { } wanted && IsAdoptable(wanted)) AdoptJobId(wanted);
        _writer.SendText(JobExtensions.WelcomeMessage(JobId));
        if (hello?.Has(JobExtensions.FeatureHeartbeat) == true) _liveness.EnableHeartbeat();
        if (_options.ResumeOnly && !resumed)
        {
            Fail(JobErrorCodes.ResumeUnavailable, "This worker keeps a partial upload for another job (or another file) and is reserved for it; submit again later or to another worker.");
            return;
        }
        if (hello is null) return;
        if (hello.ResumeUpload is { } asked)
        {
            // Where the upload stands: the kept bytes (their SHA-256 lets the client check they are its file's), or nothing.
            TransferPoint point;
            lock (_gate) point = _receiver?.Point ?? new TransferPoint { Name = FileMetaInfo.WireSafeName(asked.Name), Size = asked.Size };
            _writer.SendText(JobExtensions.TransferAtMessage(point));
        }
        if (hello.Mode == JobExtensions.Handshake.ModeCollect)
        {
            Fail(JobErrorCodes.BadPackage, "This connection runs jobs; a collection needs a connection offered with purpose \"collect\" (Receive-SleapJob).");
            return;
        }
        if (TrainingOverrideRules.Check(hello.Overrides) is { } bad)
        {
            Fail(JobErrorCodes.BadOverride, "The training overrides were refused: " + bad);
            return;
        }
        _overrides = hello.Overrides is { IsEmpty: false } o ? o : null;
        lock (_gate) _record.Overrides = _overrides;
        if (hello.WorkerPackagePath is { } relative)
        {
            try { _workerPackage = DataRootPaths.ResolvePackage(_options.DataRoot, relative); }
            catch (BadWorkerPathException e) { Fail(JobErrorCodes.BadWorkerPath, e.Message); }
        }
    }

    /// <summary>A client job id is taken when well formed and unknown here (not running, not kept, no folder).</summary>
    private bool IsAdoptable(string jobId) =>
        JobIds.IsWellFormed(jobId) && jobId != JobId && !Directory.Exists(Path.Combine(_options.JobsDirectory, jobId))
        && _options.IsJobIdInUse?.Invoke(jobId) != true;

    private void AdoptJobId(string jobId)
    {
        lock (_gate)
        {
            if (_jobFolderLock is not null) return; // too late: the folder is named already
            JobId = jobId;
            _jobDirectory = Path.Combine(_options.JobsDirectory, jobId);
            Progress.JobId = jobId;
            _record.JobId = jobId;
        }
    }

    private void BeginFile(string argument)
    {
        if (!FileMetaInfo.TryParse(argument, out var meta) || meta is null)
        {
            Fail(JobErrorCodes.BadPackage, "The FILE_META message could not be read (expected name:size:flag).");
            return;
        }
        var name = FileMetaInfo.WireSafeName(meta.Name);
        bool resume;
        long resumedAt = 0;
        lock (_gate)
        {
            var from = _transferFrom;
            _transferFrom = 0;
            if (_resumedUpload && _receiver is { } held)
            {
                _resumedUpload = false;
                if (from > 0 && from == held.BytesReceived && name == held.Meta.Name && meta.Size == held.Meta.Size) resumedAt = from;
                else
                {
                    // The client starts over (its file's start differs from what is kept): the kept bytes go.
                    held.Abort();
                    held.Dispose();
                    _receiver = null;
                }
            }
            if (resumedAt == 0 && from != 0)
            {
                Fail(JobErrorCodes.BadPackage, $"The upload was to resume at byte {from}, but this worker holds no part of '{meta.Name}' for the job.");
                return;
            }
        }
        if (resumedAt > 0)
        {
            SetUploading(name, meta.Size);
            Emit($"Resuming package {meta.Name} at {resumedAt / 1048576.0:F1} of {meta.Size / 1048576.0:F1} MB");
            return;
        }
        lock (_gate)
        {
            if (_receiver is not null || _packageReady.Task.IsCompleted || _workerPackage is not null) return; // one package per job, as classic
            if (name.Length == 0 || name == "." || name == "..") name = "package.zip";
            resume = _resumeZip is null && _overrides?.ResumeFrom is { } folder && name == TrainingOverrideRules.ResumeFileName(folder);
            _receivingResume = resume;
            EnsureJobFolder();
            // The package's large stored entries (a video in a track package) go straight to the package folder: written once.
            _receiver = new FileReceiver(meta with { Name = name }, Path.Combine(_jobDirectory, resume ? Path.Combine("resume", name) : name),
                resume ? null : new ZipEntrySplitter(PackageFolder));
            if (!resume) Progress.PackageName = name;
        }
        if (!resume) SetUploading(name, meta.Size);
        Emit(resume ? $"Receiving the resume checkpoint {meta.Name} ({meta.Size / (1024.0 * 1024.0):F1} MB)"
            : $"Receiving package {meta.Name} ({meta.Size / (1024.0 * 1024.0):F1} MB)");
    }

    /// <summary>
    /// A resume hello claimed a kept upload: this session takes over its job id, folder (and lock), record and log, and
    /// continues its partial package; the next FILE_META (after SLEAPRTC_TRANSFER_FROM) appends to it.
    /// </summary>
    /// <returns>False when the partial could not be opened (it is discarded and the job starts over).</returns>
    private bool ResumeUpload(ParkedUpload kept)
    {
        FileReceiver receiver;
        try
        {
            receiver = FileReceiver.Resume(kept.Meta, kept.PartialPath, kept.Bytes,
                splitter: new ZipEntrySplitter(Path.Combine(kept.JobDirectory, "package")), splitEntries: kept.SplitEntries);
        }
        catch (IOException e)
        {
            _log.Write(LogLevel.Warning, "worker-job", $"the kept upload of {kept.JobId} could not be reopened ({e.Message}); starting over");
            kept.Discard();
            return false;
        }
        lock (_gate)
        {
            JobId = kept.JobId;
            _jobDirectory = kept.JobDirectory;
            _jobFolderLock = kept.TakeFolderLock();
            Progress.JobId = kept.JobId;
            Progress.PackageName = kept.Meta.Name;
            _record.JobId = kept.JobId;
            _record.PackageName = kept.Record.PackageName;
            _record.PackageBytes = kept.Record.PackageBytes;
            _record.Kind = kept.Record.Kind;
            _receiver = receiver;
            _resumedUpload = true;
            try { _jobLog = new StreamWriter(new FileStream(Path.Combine(_jobDirectory, JobLogName), FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true }; }
            catch (IOException) { }
        }
        Emit($"The client came back for job {JobId}: {kept.Bytes / 1048576.0:F1} of {kept.Meta.Size / 1048576.0:F1} MB of {kept.Meta.Name} are kept.");
        return true;
    }

    /// <summary>
    /// The client left mid-upload: with a client that can resume, the bytes that arrived, the job folder and its id are
    /// handed to the host (<see cref="WorkerJobOptions.ParkUpload"/>) rather than removed, and the job's record stays
    /// "uploading" (no end is reported).
    /// </summary>
    /// <returns>The session's outcome, or null when nothing is kept (the job ends as before).</returns>
    private WorkerJobOutcome? TryParkUpload()
    {
        if (!_extensions || !_clientResumes || _options.ParkUpload is not { } park || _overrides?.ResumeFrom is not null) return null;
        ParkedUpload kept;
        lock (_gate)
        {
            if (_receiver is not { } receiver || _receivingResume || _packageReady.Task.IsCompleted || _accepted) return null;
            var held = receiver.Park();
            var split = receiver.SplitEntries.ToArray(); // complete only once the writer drained (Park)
            receiver.Dispose();
            _receiver = null;
            if (held <= 0) return null;
            kept = new ParkedUpload(JobId, _options.ClientPeerId, _jobDirectory, _jobFolderLock, receiver.Meta, receiver.Path, held, _record.Clone()) { SplitEntries = split };
            _jobFolderLock = null;
            _parked = true;
        }
        Emit($"The client left after {kept.Bytes / 1048576.0:F1} of {kept.Meta.Size / 1048576.0:F1} MB; the partial upload is kept " +
             $"{_options.PartialUploadRetention.TotalMinutes:0.#} min for it to resume.");
        CloseJobLog();
        park(kept);
        return new WorkerJobOutcome(JobId, WorkerJobEnd.ClientGone, Array.Empty<string>(), 0,
            "The client disconnected mid-upload; the partial upload is kept for it to resume", UploadParked: true);
    }

    /// <summary>The signaling peer id of this session's client (<see cref="WorkerJobOptions.ClientPeerId"/>).</summary>
    public string? ClientPeerId => _options.ClientPeerId;

    /// <summary>True while the package is arriving from a client that can resume it (a resume offer from that client may take over).</summary>
    public bool IsReceivingResumableUpload
    {
        get { lock (_gate) return _clientResumes && _receiver is not null && !_receivingResume && !_packageReady.Task.IsCompleted && !_accepted; }
    }

    /// <summary>Creates the job folder, held by its lock until the folder is removed or its results are kept.</summary>
    private void EnsureJobFolder()
    {
        lock (_gate)
        {
            if (_jobFolderLock is not null) return;
            // Held until the folder is removed: a worker starting meanwhile in the same directory leaves it alone.
            _jobFolderLock = FolderLock.Acquire(_jobDirectory, FolderLock.JobMarker);
            _jobLog = new StreamWriter(new FileStream(Path.Combine(_jobDirectory, JobLogName), FileMode.Create, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        }
    }

    private void SetUploading(string packageName, long bytes)
    {
        lock (_gate)
        {
            _record.PackageName = packageName;
            _record.PackageBytes = bytes;
            _record.Kind = _packageType == JobMessages.TrackPackage ? "track" : "train";
        }
        RaiseStateChanged();
    }

    private void OnClosed(Exception? error)
    {
        _closedCleanly = error is null;
        Abort(WorkerJobEnd.ClientGone);
    }

    private void Abort(WorkerJobEnd reason)
    {
        if (reason == WorkerJobEnd.ClientGone && _accepted)
        {
            // Accepted: the job no longer needs its client; only what is sent to it stops.
            if (!_clientGone) Emit("The client left; the job carries on and its results are kept for collection.");
            _clientGone = true;
            return;
        }
        lock (_gate) _abortReason ??= reason;
        try { _abort.Cancel(); } catch (ObjectDisposedException) { }
    }

    private void Fail(string code, string message)
    {
        _packageReady.TrySetException(new JobFailureException(code, message));
    }




    private void Emit(string line)
    {
        _log.Write(LogLevel.Information, "worker-job", line);
        AppendJobLog(line);
        LogLine?.Invoke(line);
    }

    /// <summary>The job's log (worker notes and trainer lines), kept with its results.</summary>
    public const string JobLogName = "job.log";

    private void AppendJobLog(string line)
    {
        lock (_gate)
        {
            try { _jobLog?.WriteLine(line); }
            catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        }
    }

    private void CloseJobLog()
    {
        lock (_gate)
        {
            try { _jobLog?.Dispose(); } catch (IOException) { }
            _jobLog = null;
        }
    }

    private void SetPhase(string phase)
    {
        Progress.Phase = phase;
        PublishProgress(force: true);
    }

    private void DeleteJobDirectory()
    {
        lock (_gate) { _jobFolderLock?.Dispose(); _jobFolderLock = null; }
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (Directory.Exists(_jobDirectory)) Directory.Delete(_jobDirectory, recursive: true);
                return;
            }
            catch (IOException) { Thread.Sleep(50); }
            catch (UnauthorizedAccessException) { Thread.Sleep(50); }
        }
        _log.Write(LogLevel.Warning, "worker-job", $"could not remove the job folder {_jobDirectory}");
    }

    /// <summary>A relative folder name inside the package, or null when the client sent anything else.</summary>
    internal static string? SafeRelativeDirectory(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        var normalized = value!.Trim().Replace('\\', '/').TrimEnd('/');
        if (normalized.Length == 0 || normalized == "." || normalized.StartsWith('/') || (normalized.Length >= 2 && normalized[1] == ':')) return null;
        return normalized.Split('/').Any(s => s == ".." || s.Length == 0) ? null : normalized;
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s.Substring(0, 40) + "...";

    /// <param name="ExtractedWhileReceived">Large stored entries already written to the package folder as they arrived.</param>
    private sealed record ReceivedPackage(string Path, string Name, bool Owned, IReadOnlyList<ZipEntrySplitter.SplitEntry>? ExtractedWhileReceived = null);

    /// <summary>Where the package is unpacked (large stored entries land there while the upload arrives).</summary>
    private string PackageFolder => Path.Combine(_jobDirectory, "package");

    private sealed class JobFailureException : Exception
    {
        public JobFailureException(string code, string message) : base(message) { Code = code; }
        public string Code { get; }
    }
}
