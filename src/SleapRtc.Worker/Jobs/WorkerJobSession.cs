using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Jobs;

/// <summary>
/// One training job on the worker side of a data channel, in the classic order: receive the package
/// (streamed to disk), unpack it safely, train every config of train-script.sh, stream the output, send
/// the zipped models back. Classic clients and ours are both served; extensions only after a hello.
/// </summary>
public sealed partial class WorkerJobSession
{
    private readonly IDataChannel _channel;
    private readonly WorkerJobOptions _options;
    private readonly ILogSink _log;
    private readonly FrameWriter _writer;
    private readonly TaskCompletionSource<FileReceiver> _packageReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _abort = new();
    private readonly object _gate = new();
    private FileReceiver? _receiver;
    private string _outputDirectory = "models";
    private string? _packageType;
    private volatile bool _extensions;
    private readonly ChannelLiveness _liveness;
    private WorkerJobEnd? _abortReason;
    private readonly string _jobDirectory;
    private FolderLock? _jobFolderLock;

    /// <summary>Starts listening on the channel at once; call <see cref="RunAsync"/> to run the job.</summary>
    public WorkerJobSession(IDataChannel channel, WorkerJobOptions options, ILogSink? log = null)
    {
        _channel = channel;
        _options = options;
        _log = log ?? Log.Null;
        JobId = "job_" + Guid.NewGuid().ToString("N").Substring(0, 12);
        _jobDirectory = Path.Combine(options.JobsDirectory, JobId);
        _writer = new FrameWriter(channel.Send, frame => channel.Send(frame), () => channel.BufferedAmount, options.HighWaterMark,
            () => channel.State == DataChannelState.Open);
        _liveness = new ChannelLiveness(options.KeepAliveInterval, options.IdleTimeout, options.HeartbeatInterval, options.HeartbeatTimeout);
        Progress = new JobProgress { JobId = JobId, Phase = "upload" };
        // Listen from the moment the channel exists: the client starts sending as soon as it is open,
        // possibly before RunAsync is called, and a message with no listener is lost.
        _channel.MessageReceived += OnMessage;
        _channel.Closed += OnClosed;
    }

    public string JobId { get; }
    public JobProgress Progress { get; }
    public bool ExtensionsEnabled => _extensions;

    /// <summary>The package arrived and training starts: the host sets status busy.</summary>
    public event Action? JobStarted;
    /// <summary>Structured progress changed (raised often; subscribers rate-limit).</summary>
    public event Action<JobProgress>? ProgressChanged;
    /// <summary>A trainer output line or a worker message about the job.</summary>
    public event Action<string>? LogLine;

    /// <summary>Ends the job from the host side (worker stopping).</summary>
    public void Stop() => Abort(WorkerJobEnd.Stopped);

    /// <summary>The peer connection failed or closed: the client is gone.</summary>
    public void PeerLost() => Abort(WorkerJobEnd.ClientGone);

    public async Task<WorkerJobOutcome> RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _abort.Token);
        var keepAlive = _liveness.RunAsync(_writer, () => true, () =>
        {
            Emit($"The client sent nothing for {_liveness.SilenceLimit.TotalSeconds:0} s; ending the job.");
            Abort(WorkerJobEnd.ClientGone);
        }, linked.Token);
        var configs = new List<string>();
        var failed = 0;
        try
        {
            if (_channel.State is DataChannelState.Closed or DataChannelState.Closing) Abort(WorkerJobEnd.ClientGone);
            var package = await _packageReady.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            JobStarted?.Invoke();
            if (_packageType == JobMessages.TrackPackage) return await RunTrackAsync(package, linked.Token).ConfigureAwait(false);
            var workDirectory = Unpack(package, TrainScript.FileName);
            configs.AddRange(ReadConfigs(workDirectory));
            failed = await TrainAllAsync(workDirectory, configs, linked.Token).ConfigureAwait(false);
            _writer.SendText(JobMessages.TrainingJobsDone);
            await SendResultsAsync(workDirectory, package.Meta.Name, linked.Token).ConfigureAwait(false);
            SetPhase(failed == 0 ? "done" : "failed");
            await WaitForClientToFinishAsync(linked.Token).ConfigureAwait(false);
            return new WorkerJobOutcome(JobId, failed == 0 ? WorkerJobEnd.Succeeded : WorkerJobEnd.Failed, configs, failed,
                failed == 0 ? null : $"{failed} of {configs.Count} configs failed");
        }
        catch (OperationCanceledException)
        {
            var reason = _abortReason ?? WorkerJobEnd.Stopped;
            if (reason == WorkerJobEnd.Cancelled) _writer.TrySendText(_extensions ? JobMessages.Cancelled : "Job cancelled.\n");
            SetPhase(reason == WorkerJobEnd.Cancelled ? "cancelled" : "failed");
            return new WorkerJobOutcome(JobId, reason, configs, failed, reason switch
            {
                WorkerJobEnd.Cancelled => "Job cancelled by the client",
                WorkerJobEnd.ClientGone => "The client disconnected",
                _ => "The worker stopped",
            });
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException && _channel.State != DataChannelState.Open)
        {
            // A send raced the close notification: the client is gone.
            Abort(WorkerJobEnd.ClientGone);
            SetPhase("failed");
            return new WorkerJobOutcome(JobId, WorkerJobEnd.ClientGone, configs, failed, "The client disconnected");
        }
        catch (JobFailureException failure)
        {
            Emit($"ERROR: {failure.Message}");
            if (_extensions) _writer.TrySendText(JobExtensions.ErrorMessage(failure.Code, failure.Message));
            // Classic track clients know only INFERENCE_ERROR (ours read the coded error above first).
            if (_packageType == JobMessages.TrackPackage) _writer.TrySendText(InferenceErrorMessage(failure.Message));
            SetPhase("failed");
            await WaitForClientToFinishAsync(linked.Token).ConfigureAwait(false);
            return new WorkerJobOutcome(JobId, WorkerJobEnd.Failed, configs, failed, failure.Message);
        }
        finally
        {
            // The outcome is decided; stop the keep-alive loop before waiting for it.
            Abort(WorkerJobEnd.Stopped);
            await keepAlive.ConfigureAwait(false);
            Abandon();
        }
    }

    /// <summary>Stops listening and removes everything the job wrote (also for a session that never ran).</summary>
    public void Abandon()
    {
        Abort(WorkerJobEnd.Stopped);
        _channel.MessageReceived -= OnMessage;
        _channel.Closed -= OnClosed;
        lock (_gate) { _receiver?.Abort(); _receiver?.Dispose(); }
        DeleteJobDirectory();
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
                _extensions = true;
                _writer.SendText(JobExtensions.WelcomeMessage(JobId));
                if (JobExtensions.ParseHandshake(args.FirstOrDefault() ?? "")?.Has(JobExtensions.FeatureHeartbeat) == true) _liveness.EnableHeartbeat();
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
                    _packageReady.TrySetResult(_receiver);
                }
                break;
            case JobMessages.Cancel or JobMessages.UpstreamJobCancel or JobMessages.UpstreamJobStop:
                Emit("Cancel requested by the client; stopping the trainer.");
                Abort(WorkerJobEnd.Cancelled);
                break;
            default:
                _log.Write(LogLevel.Debug, "worker-job", $"ignored message type '{Truncate(type)}'");
                break;
        }
    }

    private void BeginFile(string argument)
    {
        if (!FileMetaInfo.TryParse(argument, out var meta) || meta is null)
        {
            Fail(JobErrorCodes.BadPackage, "The FILE_META message could not be read (expected name:size:flag).");
            return;
        }
        lock (_gate)
        {
            if (_receiver is not null) return; // one package per job, as classic
            var name = FileMetaInfo.WireSafeName(meta.Name);
            if (name.Length == 0 || name == "." || name == "..") name = "package.zip";
            // Held until the folder is removed: a worker starting meanwhile in the same directory leaves it alone.
            _jobFolderLock = FolderLock.Acquire(_jobDirectory, FolderLock.JobMarker);
            _receiver = new FileReceiver(meta with { Name = name }, Path.Combine(_jobDirectory, name));
            Progress.PackageName = name;
        }
        Emit($"Receiving package {meta.Name} ({meta.Size / (1024.0 * 1024.0):F1} MB)");
    }

    private void OnClosed(Exception? error) => Abort(WorkerJobEnd.ClientGone);

    private void Abort(WorkerJobEnd reason)
    {
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
        LogLine?.Invoke(line);
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

    private sealed class JobFailureException : Exception
    {
        public JobFailureException(string code, string message) : base(message) { Code = code; }
        public string Code { get; }
    }
}
