using System.Diagnostics;
using SleapRtc.Client.Discovery;
using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// One Submit-SleapInference to a worker: builds the track package (data + model folders + track-script.sh),
/// chooses and connects to the worker exactly as training does (<see cref="TrainingSubmission"/>), sends it as
/// a classic PACKAGE_TYPE::track job and keeps the returned predictions file in the output folder.
/// </summary>
public sealed class InferenceSubmission
{
    private readonly SubmissionOptions _options;
    private readonly InferenceRequest _request;
    private readonly TrainingSubmission _connector;
    /// <summary>The job's id: the queue ticket's (with -Queue) and the one the hello gives our worker for its record.</summary>
    private readonly JobRequest _job = new();

    /// <param name="options">Worker selection and connection (PackagePath is not used).</param>
    public InferenceSubmission(SubmissionOptions options, InferenceRequest request)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _request = request ?? throw new ArgumentNullException(nameof(request));
        _connector = new TrainingSubmission(options);
        _connector.ProgressChanged += p => ProgressChanged?.Invoke(p);
        _connector.LogLine += l => LogLine?.Invoke(l);
        _connector.StatusMessage += m => StatusMessage?.Invoke(m);
    }

    public event Action<SubmissionProgress>? ProgressChanged;
    public event Action<string>? LogLine;
    public event Action<string>? StatusMessage;

    /// <summary>From sending the offer to the data channel being open.</summary>
    public TimeSpan? ConnectTime => _connector.ConnectTime;

    /// <summary>From the start of <see cref="RunAsync"/> (package, credentials, sign-in, lookup, offer) to the data channel being open.</summary>
    public TimeSpan? TimeToChannelOpen => _connector.TimeToChannelOpen;

    public async Task<InferenceResult> RunAsync(CancellationToken cancellationToken)
    {
        var dataPath = Path.GetFullPath(_request.DataPath);
        if (!File.Exists(dataPath)) throw new InferenceInputNotFoundException(_request.DataPath, "data file");
        if (_request.Space is not null && _request.ModelPaths.Count > 0)
            throw new SleapRtcException("ConflictingSelection", SleapRtcErrorKind.InvalidArgument,
                $"Models were given for the space '{_request.Space}', which keeps its own.", "Leave out -ModelPath (or the piped TrainingResult) when you use -Space.");
        if (_request.Space is not null && _options.Queue is not null)
            throw new SleapRtcException("ConflictingSelection", SleapRtcErrorKind.InvalidArgument,
                $"-Queue asks the room's queue for a worker, and the space '{_request.Space}' already queues its requests on its own worker.",
                "Use -Space alone for a space, or -Queue with -ModelPath for any worker of the room.");
        if (_request.Space is null && _request.ModelPaths.Count == 0)
            throw new SleapRtcException("ModelPathRequired", SleapRtcErrorKind.InvalidArgument, "No model folder was given.",
                "Pass -ModelPath with one or more trained model folders, or pipe the result of Submit-SleapTraining.");
        var models = _request.ModelPaths.Select(Path.GetFullPath).ToArray();
        foreach (var model in models)
            if (!Directory.Exists(model)) throw new InferenceInputNotFoundException(model, "model folder");
        var outputPath = Path.GetFullPath(_options.OutputPath ?? Directory.GetCurrentDirectory());

        var staging = Path.Combine(Path.GetTempPath(), "SleapRtc", "track-" + Guid.NewGuid().ToString("N").Substring(0, 12));
        Directory.CreateDirectory(staging);
        try
        {
            var package = TrackPackage.Build(new InferenceRequest
            {
                DataPath = dataPath, ModelPaths = models, Frames = _request.Frames, OnlySuggestedFrames = _request.OnlySuggestedFrames,
                BatchSize = _request.BatchSize, PeakThreshold = _request.PeakThreshold,
            }, staging);
            // A space is found by name; -Queue waits in the room's queue for a worker, as training does; else as training chooses.
            Func<ClientRoomConnection, CancellationToken, Task<IReadOnlyList<WorkerInfo>>>? target =
                _request.Space is { } name ? (connection, ct) => SpaceDiscovery.HolderAsync(connection, name, ct)
                : _options.Queue is { } queue ? (connection, ct) => _connector.WaitForTicketAsync(connection, queue, _job, package, JobMessages.TrackPackage, ct)
                : null;
            return await _connector.RunOnWorkerAsync("inference",
                (channel, worker, clock, ct) => InferAsync(channel, worker, package, outputPath, dataPath, models, clock, ct),
                cancellationToken, target).ConfigureAwait(false);
        }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private async Task<InferenceResult> InferAsync(IDataChannel channel, WorkerInfo worker, string package, string outputPath,
        string dataPath, string[] models, Stopwatch clock, CancellationToken cancellationToken)
    {
        var job = _options.Job;
        var session = new ClientJobSession(channel, worker.PeerId, JobExtensions.IsAdvertised(worker.Properties), new ClientJobOptions
        {
            ChunkSize = job.ChunkSize, HighWaterMark = job.HighWaterMark, KeepAliveInterval = job.KeepAliveInterval,
            IdleTimeout = job.IdleTimeout, CancelGrace = job.CancelGrace,
            PackageType = JobMessages.TrackPackage, RemoteOutputDirectory = ".",
        }, _options.Connection.Log) { Request = _connector.RequestFor(_job) };
        // Followed by the connector (whose progress this raises): a cut-off upload of the data is resumed like a package's.
        _connector.Follow(session);
        session.LogLine += l => LogLine?.Invoke(l);
        var outcome = await session.RunAsync(package, outputPath, cancellationToken).ConfigureAwait(false);
        var succeeded = session.InferenceFailures == 0;
        return new InferenceResult
        {
            JobId = session.WorkerJobId ?? Protocol.Signaling.JobIds.New(),
            WorkerId = worker.PeerId,
            Status = succeeded ? "Succeeded" : "Failed",
            PredictionsPath = outcome.ExtractedFiles.FirstOrDefault(),
            Frames = session.FramesDone,
            Instances = session.Instances,
            Duration = clock.Elapsed,
            DataPath = dataPath,
            ModelPaths = models,
            Space = _request.Space,
            UploadedBytes = outcome.UploadedBytes,
            CandidatePair = _connector.CandidatePair,
            Error = succeeded ? null : $"{session.InferenceFailures} track command(s) failed on the worker; the predictions are from the last that succeeded.",
        };
    }
}

/// <summary>A data file or model folder given to Submit-SleapInference does not exist.</summary>
public sealed class InferenceInputNotFoundException : SleapRtcException
{
    public InferenceInputNotFoundException(string path, string what)
        : base("InferenceInputNotFound", SleapRtcErrorKind.ObjectNotFound, $"The {what} '{path}' does not exist.",
            what == "data file" ? "Pass an existing .slp or video file to -DataPath." : "Pass trained model folders (as Submit-SleapTraining returns them) to -ModelPath.")
    {
        Path = path;
    }

    public string Path { get; }
}
