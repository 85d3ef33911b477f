using System.Diagnostics;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.WebRtc;

namespace SleapRtc.Client.Jobs;

/// <summary>How the client side of one job runs over an open data channel.</summary>
public sealed class ClientJobOptions
{
    public int ChunkSize { get; init; } = FileSender.DefaultChunkSize;
    public long HighWaterMark { get; init; } = FrameWriter.DefaultHighWaterMark;
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>A classic worker that sends nothing (not even KEEP_ALIVE) for this long is gone.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(25);
    /// <summary>With a worker that agreed on heartbeats: how often both send one, and the silence that means the worker is dead.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = ChannelLiveness.DefaultHeartbeatInterval;
    public TimeSpan HeartbeatTimeout { get; init; } = ChannelLiveness.DefaultHeartbeatTimeout;
    /// <summary>How long a cancel waits for the worker to confirm before closing anyway.</summary>
    public TimeSpan CancelGrace { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>OUTPUT_DIR sent to the worker: the folder inside the package the trainer writes to.</summary>
    public string RemoteOutputDirectory { get; init; } = "models";
    /// <summary>PACKAGE_TYPE sent to the worker: "train" (results come back zipped and are extracted) or "track"
    /// (the predictions file comes back as is).</summary>
    public string PackageType { get; init; } = JobMessages.TrainPackage;
    /// <summary>How long a resumed upload waits for the worker to say how much of the package it keeps.</summary>
    public TimeSpan ResumeAnswerTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>With a worker that agreed on feature "release": how long the session waits, once it has the job's last word,
    /// for the worker to say it is available again (SLEAPRTC_RELEASED) before it returns anyway.</summary>
    public TimeSpan ReleaseTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>Part of a file that a cut-off transfer left on disk: <paramref name="Bytes"/> of <paramref name="Size"/> bytes
/// of <paramref name="Name"/> (as the sender named it) at <paramref name="Path"/>.</summary>
public sealed record PartialFile(string Name, long Size, string Path, long Bytes);

/// <summary>What the worker sent back. <paramref name="OutputPath"/>: the job's own folder (null when no results came).
/// <paramref name="FirstExitCode"/>: the trainer's exit code for the first failed config.
/// <paramref name="HandedOver"/>: the client left once the worker accepted the package (no results yet).</summary>
public sealed record ClientJobOutcome(IReadOnlyList<string> Configs, IReadOnlyList<string> FailedConfigs, int? FirstExitCode,
    IReadOnlyList<string> ExtractedFiles, string? OutputPath, string? ResultArchiveName, long UploadedBytes, double UploadMBps,
    bool HandedOver = false);

/// <summary>
/// The client side of a training job on an open data channel: classic vocabulary out (PACKAGE_TYPE, OUTPUT_DIR,
/// FILE_META, chunks with back-pressure, END_OF_FILE, KEEP_ALIVE every 15 s), logs, progress and the result
/// archive back; the archive is extracted safely under the output path. Extensions only with our workers.
/// </summary>
public sealed partial class ClientJobSession
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(200);
    private readonly IDataChannel _channel;
    private readonly ClientJobOptions _options;
    private readonly ILogSink _log;
    private readonly FrameWriter _writer;
    private readonly string _workerId;
    private readonly bool _useExtensions;
    private readonly TaskCompletionSource<FileReceiver> _resultsReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _configs = new();
    private readonly List<string> _failedConfigs = new();
    private readonly JobProgress _job = new() { Phase = "upload" };
    private readonly object _gate = new();
    private FileReceiver? _results;
    private string _outputRoot = "";
    private string _packagePath = "";
    private string? _jobDirectory;
    private int? _firstExitCode;
    private readonly DateTimeOffset _startedAt = DateTimeOffset.Now;
    private readonly Stopwatch _downloadClock = new();
    private readonly TaskCompletionSource<bool> _accepted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _jobsDone;
    private readonly ChannelLiveness _liveness;
    private long _lastProgressTicks;
    private volatile SubmissionPhase _phase = SubmissionPhase.Uploading;
    /// <summary>The worker's SLEAPRTC_TRANSFER_AT answer to a resume hello.</summary>
    private readonly TaskCompletionSource<TransferPoint> _transferAt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _uploadResumedAt;
    private long _uploadedBytes;
    private double _uploadMBps;
    /// <summary>The worker agreed on feature "release": the job's last word is confirmed and its SLEAPRTC_RELEASED awaited.</summary>
    private volatile bool _workerReleases;
    private volatile bool _lastWordConfirmed;
    /// <summary>True on the worker's SLEAPRTC_RELEASED (it is available again); false when the channel closed first.</summary>
    private readonly TaskCompletionSource<bool> _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ClientJobSession(IDataChannel channel, string workerId, bool useExtensions, ClientJobOptions? options = null, ILogSink? log = null)
    {
        _channel = channel;
        _workerId = workerId;
        _useExtensions = useExtensions;
        _options = options ?? new ClientJobOptions();
        _log = log ?? Log.Null;
        _writer = new FrameWriter(channel.Send, frame => channel.Send(frame), () => channel.BufferedAmount, _options.HighWaterMark,
            () => channel.State == DataChannelState.Open);
        _liveness = new ChannelLiveness(_options.KeepAliveInterval, _options.IdleTimeout, _options.HeartbeatInterval, _options.HeartbeatTimeout);
    }

    public event Action<SubmissionProgress>? ProgressChanged;
    /// <summary>A worker log line (trainer output, worker notes); progress-bar updates are not raised.</summary>
    public event Action<string>? LogLine;

    /// <summary>The job id our workers assign (from their welcome); null with classic workers.</summary>
    public string? WorkerJobId { get; private set; }

    /// <summary>What this job asks of the worker (job id, overrides, -NoWait, collection); our workers only.</summary>
    public JobRequest Request { get; init; } = new();

    /// <summary>The worker's job id (ours adopt the requested one), or the requested one for classic workers (which assign none).</summary>
    public string JobId => WorkerJobId ?? Request.JobId;

    /// <summary>The file this session uploads (set by <see cref="RunAsync"/>).</summary>
    public string PackagePath => _packagePath;

    /// <summary>The worker announced the resume feature: a cut-off transfer can continue over a new connection.</summary>
    public bool WorkerResumes { get; private set; }

    /// <summary>The worker accepted the package (SLEAPRTC_ACCEPTED): the job no longer needs this connection.</summary>
    public bool PackageAccepted => _accepted.Task.IsCompletedSuccessfully;

    /// <summary>Where the session stood when it ended: uploading, training, downloading...</summary>
    public SubmissionPhase Phase => _phase;

    /// <summary>The byte this connection's upload started at (0 unless it resumed a cut-off upload).</summary>
    public long UploadResumedAt => Interlocked.Read(ref _uploadResumedAt);

    /// <summary>What the package upload sends: its wire name and size (a resume hello names them).</summary>
    public static TransferPoint UploadPoint(string packagePath)
    {
        var info = new FileInfo(packagePath);
        return new TransferPoint { Name = FileMetaInfo.WireSafeName(info.Name), Size = info.Length };
    }

    /// <summary>The job's own folder, once results began to arrive.</summary>
    public string? OutputFolder => _jobDirectory;

    /// <summary>The result file that was arriving when the connection was lost (kept on disk for a resumed collection).</summary>
    public PartialFile? PartialResults { get; private set; }

    /// <summary>
    /// Uploads the package, follows the training and extracts the results into a new folder of their own under
    /// <paramref name="outputRoot"/> (see <see cref="JobOutputFolder"/>), created only when results arrive: jobs never
    /// overwrite each other's models, and a job that returns nothing leaves nothing behind.
    /// </summary>
    public async Task<ClientJobOutcome> RunAsync(string packagePath, string outputRoot, CancellationToken cancellationToken)
    {
        _outputRoot = outputRoot;
        _packagePath = packagePath;
        using var failure = new CancellationTokenSource();
        Exception? failureReason = null;
        void FailWith(Exception e)
        {
            lock (_gate) failureReason ??= e;
            _resultsReady.TrySetException(e);
            _accepted.TrySetException(e);
            try { failure.Cancel(); } catch (ObjectDisposedException) { }
        }

        Action<DataChannelMessage> onMessage = m => OnMessage(m, FailWith);
        Action<Exception?> onClosed = _ =>
        {
            _released.TrySetResult(false);
            // Once the results are in, a worker that closes first (it released itself) takes nothing away.
            if (!_resultsReady.Task.IsCompletedSuccessfully) FailWith(new WorkerLostException(_workerId, PhaseName(), "the data channel closed"));
        };
        _channel.MessageReceived += onMessage;
        _channel.Closed += onClosed;
        using var loopStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // While we upload, a classic worker may legitimately stay silent; only judge its silence afterwards
        // (a worker that agreed on heartbeats is judged throughout).
        var keepAlive = _liveness.RunAsync(_writer, () => _phase != SubmissionPhase.Uploading,
            () =>
            {
                _log.Write(LogLevel.Warning, "client-job", $"worker {_workerId} silent for {_liveness.SilenceLimit.TotalSeconds:0} s; giving up on it");
                FailWith(new WorkerLostException(_workerId, PhaseName(), $"nothing received for {_liveness.SilenceLimit.TotalSeconds:0} s"));
            },
            loopStop.Token);
        try
        {
            if (_channel.State != DataChannelState.Open) FailWith(new WorkerLostException(_workerId, "connect", "the data channel is not open"));
            if (_useExtensions) _writer.SendText(Request.HelloMessage());
            _writer.SendText(JobMessages.Format(JobMessages.PackageType, _options.PackageType));
            _writer.SendText(JobMessages.Format(JobMessages.OutputDir, _options.RemoteOutputDirectory));
            long uploaded = 0;
            double mbps = 0;
            using (var uploadStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, failure.Token))
            {
                if (Request.ResumeFromFolder is { } checkpoint) await SendCheckpointAsync(checkpoint, uploadStop.Token).ConfigureAwait(false);
                // A package on the worker's data root is named in the hello instead of uploaded.
                if (Request.WorkerPackagePath is null)
                {
                    var startAt = Request.ResumeUpload is null ? 0 : await ResumePointAsync(packagePath, uploadStop.Token).ConfigureAwait(false);
                    (uploaded, mbps) = await UploadAsync(packagePath, uploadStop.Token, startAt: startAt).ConfigureAwait(false);
                    (_uploadedBytes, _uploadMBps) = (uploaded, mbps);
                }
            }
            if (Request.ReturnWhenAccepted)
            {
                await _accepted.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                _phase = SubmissionPhase.Completed;
                lock (_gate)
                    return new ClientJobOutcome(_configs.ToArray(), _failedConfigs.ToArray(), null, Array.Empty<string>(), null, null, uploaded, mbps, HandedOver: true);
            }
            ReportRunning();

            var results = await _resultsReady.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            var extracted = IsTrack ? new[] { KeepResultFile(results, _jobDirectory!) } : PackageArchive.ExtractSafely(results.Path, _jobDirectory!, cancellationToken: cancellationToken);
            TryDelete(results.Path);
            await WaitForReleaseAsync(cancellationToken).ConfigureAwait(false);
            _phase = SubmissionPhase.Completed;
            Report(force: true);
            lock (_gate)
                return new ClientJobOutcome(_configs.ToArray(), _failedConfigs.ToArray(), _firstExitCode, extracted, _jobDirectory, results.Meta.Name, uploaded, mbps);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await CancelOnWorkerAsync().ConfigureAwait(false);
            throw;
        }
        catch (Exception) when (failureReason is not null)
        {
            // The worker's error was its last word: the job is over once the worker is available again.
            await WaitForReleaseAsync(cancellationToken).ConfigureAwait(false);
            throw failureReason;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException && _channel.State != DataChannelState.Open
            && !_resultsReady.Task.IsCompletedSuccessfully)
        {
            // A send raced the close notification: the worker is gone either way (after the results, the error is this client's).
            throw new WorkerLostException(_workerId, PhaseName(), "the data channel closed");
        }
        finally
        {
            loopStop.Cancel();
            await keepAlive.ConfigureAwait(false);
            _channel.MessageReceived -= onMessage;
            _channel.Closed -= onClosed;
            lock (_gate)
            {
                if (_results is not null && !_resultsReady.Task.IsCompletedSuccessfully)
                {
                    // Our worker keeps an accepted job's results: what arrived stays for a collection to continue.
                    if (WorkerResumes && PackageAccepted && failureReason is WorkerLostException && _jobDirectory is not null)
                    {
                        var held = _results.Park();
                        PartialResults = held > 0 ? new PartialFile(_results.Meta.Name, _results.Meta.Size, _results.Path, held) : null;
                    }
                    else _results.Abort();
                }
                _results?.Dispose();
            }
        }
    }

    /// <summary>
    /// The results came by a collection after this session's connection was lost mid-download (issue 16): the archive is
    /// extracted into the job's folder as <see cref="RunAsync"/> would have, and the worker's log copy is dropped.
    /// </summary>
    public ClientJobOutcome CompleteFromCollection(IReadOnlyList<string> files, string folder, CancellationToken cancellationToken)
    {
        _jobDirectory ??= folder;
        var archive = files.FirstOrDefault(f => Path.GetFileName(f) == PartialResults?.Name) ?? files.First(f => f.EndsWith(".zip", StringComparison.OrdinalIgnoreCase));
        var extracted = IsTrack ? new[] { archive } : PackageArchive.ExtractSafely(archive, _jobDirectory!, cancellationToken: cancellationToken);
        if (!IsTrack) TryDelete(archive);
        foreach (var other in files.Where(f => f != archive)) TryDelete(other);
        _phase = SubmissionPhase.Completed;
        Report(force: true);
        lock (_gate)
            return new ClientJobOutcome(_configs.ToArray(), _failedConfigs.ToArray(), _firstExitCode, extracted, _jobDirectory, Path.GetFileName(archive), _uploadedBytes, _uploadMBps);
    }

    private void ReportRunning()
    {
        if (IsTrack)
        {
            _phase = SubmissionPhase.Inferring;
            ReportInference(force: true);
        }
        else
        {
            _phase = SubmissionPhase.Training;
            _job.Phase = "training";
            Report(force: true);
        }
    }

    /// <summary>-ResumeFrom: the checkpoint folder zipped and sent as resume-&lt;folder&gt;.zip before the package.</summary>
    private async Task SendCheckpointAsync(string folder, CancellationToken cancellationToken)
    {
        var folderName = JobRequest.FolderName(folder);
        var archive = Path.Combine(Path.GetTempPath(), "sleaprtc-" + Guid.NewGuid().ToString("N") + ".zip");
        try
        {
            PackageArchive.CreateFromDirectoryContents(folder, archive);
            await UploadAsync(archive, cancellationToken, JobRequest.ResumeArchiveName(folderName)).ConfigureAwait(false);
        }
        finally
        {
            TryDelete(archive);
        }
    }

    /// <summary>
    /// A resumed upload: waits for the worker's SLEAPRTC_TRANSFER_AT and checks that the bytes it keeps are the start of this
    /// package (their SHA-256); the upload then continues from there, or starts over when they are not.
    /// </summary>
    private async Task<long> ResumePointAsync(string packagePath, CancellationToken cancellationToken)
    {
        var point = await _transferAt.Task.WaitAsync(_options.ResumeAnswerTimeout, cancellationToken).ConfigureAwait(false);
        if (point.Offset <= 0) return 0;
        var expected = UploadPoint(packagePath);
        var matches = point.Name == expected.Name && point.Size == expected.Size && point.Offset <= expected.Size
            && TransferResume.PrefixMatches(packagePath, point, cancellationToken);
        if (!matches)
        {
            LogLine?.Invoke($"The worker's partial upload is not the start of {expected.Name}; sending it again from the start.");
            return 0;
        }
        LogLine?.Invoke($"Resuming the upload at {point.Offset / 1048576.0:F1} of {point.Size / 1048576.0:F1} MB (the worker confirmed those bytes).");
        return point.Offset;
    }

    private async Task<(long Bytes, double MBps)> UploadAsync(string packagePath, CancellationToken cancellationToken, string? sentName = null, long startAt = 0)
    {
        var info = new FileInfo(packagePath);
        var meta = new FileMetaInfo(FileMetaInfo.WireSafeName(sentName ?? info.Name), info.Length, "False");
        var chunk = Math.Max(1024, Math.Min(_options.ChunkSize, _channel.MaxMessageSize > 0 ? _channel.MaxMessageSize : _options.ChunkSize));
        Interlocked.Exchange(ref _uploadResumedAt, startAt);
        var clock = Stopwatch.StartNew();
        var progress = new Progress(bytes =>
        {
            var seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
            var rate = (bytes - startAt) / seconds;
            ReportUpload(bytes, info.Length, rate, bytes >= info.Length, startAt);
        });
        using (var source = new FileStream(packagePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous))
        {
            await FileSender.SendAsync(source, meta, _writer.SendText, _writer.SendBinaryAsync, chunk, _useExtensions, progress, cancellationToken, startAt).ConfigureAwait(false);
        }
        var total = clock.Elapsed.TotalSeconds;
        var sent = info.Length - startAt;
        var mbps = total > 0 ? sent / 1048576.0 / total : 0;
        _log.Write(LogLevel.Information, "client-job", $"uploaded {sent / 1048576.0:F1} MB in {total:F2} s ({mbps:F1} MB/s)" + (startAt > 0 ? $", resumed at byte {startAt}" : ""));
        return (info.Length, mbps);
    }

    private void OnMessage(DataChannelMessage message, Action<Exception> fail)
    {
        _liveness.Heard();
        try
        {
            if (message.IsText) OnText(message.Text!, fail);
            else OnBinary(message.Binary.Span);
        }
        catch (FileChecksumException e)
        {
            fail(Failure(JobErrorCodes.ChecksumMismatch, e.Message));
        }
        catch (IOException e)
        {
            fail(Failure(JobErrorCodes.Internal, "Could not store the results: " + e.Message));
        }
    }

    private void OnBinary(ReadOnlySpan<byte> frame)
    {
        if (JobMessages.IsKeepAlive(frame)) return;
        lock (_gate)
        {
            if (_results is null || _resultsReady.Task.IsCompleted) return;
            _results.Write(frame);
        }
        Report(force: false);
    }

    private void OnText(string text, Action<Exception> fail)
    {
        if (IsTrack && OnInferenceText(text, fail)) return;
        var (type, args) = JobMessages.Parse(text);
        switch (type)
        {
            case JobMessages.Welcome:
                var welcome = JobExtensions.ParseHandshake(args[0]);
                WorkerJobId = welcome?.JobId;
                _job.JobId = WorkerJobId;
                WorkerResumes = _useExtensions && welcome?.Has(JobExtensions.FeatureResume) == true;
                _workerReleases = _useExtensions && welcome?.Has(JobExtensions.FeatureRelease) == true;
                if (_useExtensions && welcome?.Has(JobExtensions.FeatureHeartbeat) == true) _liveness.EnableHeartbeat();
                return;
            case JobMessages.Heartbeat:
                return; // OnMessage already noted that the worker is alive
            case JobMessages.TransferAt:
                if (JobExtensions.ParseTransferPoint(args[0]) is { } point) _transferAt.TrySetResult(point);
                return;
            case JobMessages.Accepted:
                _accepted.TrySetResult(true);
                LogLine?.Invoke("The worker accepted the package; the job now runs whether or not this client stays.");
                return;
            case JobMessages.TrainJobStart:
                lock (_gate) _configs.Add(args.FirstOrDefault() ?? "");
                _job.ConfigIndex = _configs.Count;
                _job.ConfigName = args.FirstOrDefault();
                _job.Epoch = 0;
                _job.Loss = null;
                Report(force: true);
                LogLine?.Invoke($"Training started: {args.FirstOrDefault()}");
                return;
            case JobMessages.TrainJobEnd:
                LogLine?.Invoke($"Training finished: {args.FirstOrDefault()}");
                return;
            case JobMessages.TrainJobError:
                lock (_gate)
                {
                    _failedConfigs.Add(args.FirstOrDefault() ?? "");
                    if (_firstExitCode is null && int.TryParse(args.ElementAtOrDefault(1), System.Globalization.NumberStyles.Integer,
                            System.Globalization.CultureInfo.InvariantCulture, out var exitCode))
                        _firstExitCode = exitCode;
                }
                LogLine?.Invoke($"Training failed: {args.FirstOrDefault()} (exit code {args.ElementAtOrDefault(1)})");
                return;
            case JobMessages.TrainingJobsDone:
                _jobsDone = true;
                _phase = SubmissionPhase.Downloading;
                Report(force: true);
                return;
            case JobMessages.Progress:
                if (JobExtensions.ParseProgress(args[0]) is not { } p) return;
                // Epoch and config changes always show; loss-only updates are rate-limited.
                var milestone = p.Epoch != _job.Epoch || p.ConfigIndex != _job.ConfigIndex;
                CopyProgress(p);
                Report(force: milestone);
                return;
            case JobMessages.FileMeta:
                BeginResults(args[0], fail);
                return;
            case JobMessages.Sha256:
                lock (_gate) _results?.ExpectSha256(args.FirstOrDefault() ?? "");
                return;
            case JobMessages.EndOfFile:
                lock (_gate)
                {
                    if (_results is null || _resultsReady.Task.IsCompleted) return;
                    _results.Complete();
                    // Before RunAsync can go on: once it has the results it waits for the release only when this was said.
                    ConfirmLastWord();
                    _resultsReady.TrySetResult(_results);
                }
                return;
            case JobMessages.Error:
                ConfirmLastWord();
                fail(Failure(args.FirstOrDefault() ?? JobErrorCodes.Internal, args.ElementAtOrDefault(1) ?? "no detail"));
                return;
            case JobMessages.Released:
                _released.TrySetResult(true);
                return;
            case JobMessages.Cancelled:
                LogLine?.Invoke("The worker cancelled the job.");
                return;
        }
        OnLogText(text);
    }

    /// <summary>
    /// Feature "release": tells the worker that the job's last word (its results, checked, or its error) arrived, so the job
    /// is over; the worker then turns available and says SLEAPRTC_RELEASED (<see cref="WaitForReleaseAsync"/>).
    /// </summary>
    private void ConfirmLastWord()
    {
        if (!_workerReleases || _lastWordConfirmed) return;
        _lastWordConfirmed = true;
        _writer.TrySendText(JobMessages.Format(JobMessages.Collected, System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["job_id"] = JobId })));
    }

    /// <summary>
    /// Returns once the worker that was told the job is over says it is available again (it published its status and the
    /// server acknowledged it): the caller's next offer to it, in a pipeline for instance, cannot meet "busy". Bounded by
    /// <see cref="ClientJobOptions.ReleaseTimeout"/>; a closed channel ends the wait too. Nothing to wait for otherwise.
    /// </summary>
    private async Task WaitForReleaseAsync(CancellationToken cancellationToken)
    {
        if (!_lastWordConfirmed) return;
        var released = false;
        try { released = await _released.Task.WaitAsync(_options.ReleaseTimeout, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException) { }
        if (!released) _log.Write(LogLevel.Warning, "client-job", $"worker {_workerId} did not say it is available again; the next job offered to it may find it busy");
    }

    /// <summary>Classic log framing: "line\n" is a line, "\rtext" a progress-bar update.</summary>
    private void OnLogText(string text)
    {
        if (text.StartsWith('\r'))
        {
            ParseTrainerLine(text.TrimStart('\r'));
            return;
        }
        var line = text.TrimEnd('\n', '\r');
        ParseTrainerLine(line);
        LogLine?.Invoke(line);
    }

    // Classic workers send no structured progress; read it from the trainer's own lines.
    private void ParseTrainerLine(string line)
    {
        if (_useExtensions) return;
        var info = TrainerOutputParser.Parse(line);
        if (info.IsEmpty) return;
        if (info.Epoch is { } e) _job.Epoch = e;
        if (info.EpochCount is { } n) _job.EpochCount = n;
        if (info.Loss is { } l) _job.Loss = l;
        if (info.ValLoss is { } v) _job.ValLoss = v;
        Report(force: false);
    }

    private void CopyProgress(JobProgress p)
    {
        _job.JobId = p.JobId ?? _job.JobId;
        _job.ConfigIndex = p.ConfigIndex;
        _job.ConfigCount = p.ConfigCount;
        _job.ConfigName = p.ConfigName;
        _job.Epoch = p.Epoch;
        _job.EpochCount = p.EpochCount;
        _job.Loss = p.Loss;
        _job.ValLoss = p.ValLoss;
        _job.LossHistory = p.LossHistory;
        _job.StartedAt = p.StartedAt;
    }

    private void BeginResults(string argument, Action<Exception> fail)
    {
        if (!FileMetaInfo.TryParse(argument, out var meta) || meta is null)
        {
            fail(Failure(JobErrorCodes.Internal, "The worker's FILE_META could not be read."));
            return;
        }
        lock (_gate)
        {
            if (_results is not null) return;
            var name = FileMetaInfo.WireSafeName(meta.Name);
            if (name.Length == 0 || name is "." or "..") name = "results.zip";
            // Models get a folder per job; predictions are one file named after the data, kept in the output folder itself.
            _jobDirectory = IsTrack ? Directory.CreateDirectory(_outputRoot).FullName : JobOutputFolder.Create(_outputRoot, _packagePath, JobId, _startedAt);
            // Received in the job's folder, under a name no extracted file can clash with.
            var path = Path.Combine(_jobDirectory, "." + name + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".partial");
            _results = new FileReceiver(meta with { Name = name }, path);
            _downloadClock.Restart();
        }
        _phase = SubmissionPhase.Downloading;
        Report(force: true);
    }


    private async Task CancelOnWorkerAsync()
    {
        if (_useExtensions) _writer.TrySendText(JobMessages.Cancel);
        var deadline = Environment.TickCount64 + (long)_options.CancelGrace.TotalMilliseconds;
        // Give the stop message time to leave before the caller closes the connection.
        while (_channel.State == DataChannelState.Open && _channel.BufferedAmount > 0 && Environment.TickCount64 < deadline)
            await Task.Delay(10).ConfigureAwait(false);
    }


    private void ReportUpload(long done, long total, double bytesPerSecond, bool force, long resumedAt)
    {
        if (!ShouldReport(force)) return;
        var remaining = bytesPerSecond > 0 ? TimeSpan.FromSeconds((total - done) / bytesPerSecond) : (TimeSpan?)null;
        ProgressChanged?.Invoke(new SubmissionProgress
        {
            Phase = SubmissionPhase.Uploading, WorkerId = _workerId, BytesDone = done, BytesTotal = total,
            MegabytesPerSecond = bytesPerSecond / 1048576.0, EstimatedRemaining = remaining,
            ResumedAt = resumedAt > 0 ? resumedAt : null,
        });
    }

    private void Report(bool force)
    {
        if (!ShouldReport(force)) return;
        long done, total;
        double seconds;
        lock (_gate)
        {
            done = _results?.BytesReceived ?? 0;
            total = _results?.Meta.Size ?? 0;
            seconds = _downloadClock.Elapsed.TotalSeconds;
        }
        var rate = _phase == SubmissionPhase.Downloading && seconds > 0.05 ? done / seconds : 0;
        ProgressChanged?.Invoke(new SubmissionProgress
        {
            Phase = _phase, WorkerId = _workerId, BytesDone = done, BytesTotal = total,
            MegabytesPerSecond = rate / 1048576.0,
            EstimatedRemaining = rate > 0 && total > done ? TimeSpan.FromSeconds((total - done) / rate) : null,
            Job = new JobProgress
            {
                JobId = _job.JobId, Phase = _job.Phase, ConfigIndex = _job.ConfigIndex, ConfigCount = _job.ConfigCount,
                ConfigName = _job.ConfigName, Epoch = _job.Epoch, EpochCount = _job.EpochCount, Loss = _job.Loss,
                ValLoss = _job.ValLoss, LossHistory = _job.LossHistory, StartedAt = _job.StartedAt,
            },
        });
    }

    private bool ShouldReport(bool force)
    {
        var now = Environment.TickCount64;
        if (!force && now - Interlocked.Read(ref _lastProgressTicks) < ProgressInterval.TotalMilliseconds) return false;
        Interlocked.Exchange(ref _lastProgressTicks, now);
        return true;
    }

    private string PhaseName() => _phase switch
    {
        SubmissionPhase.Uploading => "upload",
        SubmissionPhase.Training => _jobsDone ? "download" : "training",
        SubmissionPhase.Downloading => "download",
        _ => _phase.ToString().ToLowerInvariant(),
    };

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private sealed class Progress : IProgress<long>
    {
        private readonly Action<long> _report;
        public Progress(Action<long> report) => _report = report;
        public void Report(long value) => _report(value);
    }
}
