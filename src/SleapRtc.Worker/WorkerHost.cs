using System.Text.Json.Nodes;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Worker.Gpu;
using SleapRtc.Worker.Jobs;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker;

/// <summary>
/// A running worker: registered in a room with its GPU and status, answering offers (one client at a time;
/// a reserved or busy worker refuses with the classic worker_busy error), running each job, publishing
/// status and progress. Reconnects and re-registers after a signaling server restart (SignalingClient).
/// </summary>
public sealed partial class WorkerHost : IAsyncDisposable
{
    private const string Component = "worker";
    public static readonly IReadOnlyList<string> ClassicTags = new[] { "sleap-rtc", "training-worker" };

    private readonly WorkerOptions _options;
    private readonly SignalingClient _signaling;
    private readonly ILogSink _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _metadataLock = new(1, 1);
    private readonly object _gate = new();
    private readonly string _jobsDirectory;
    private readonly string? _trainerPath;
    private Task _currentJob = Task.CompletedTask;
    private WorkerJobSession? _session;
    private FolderLock? _workingDirectoryLock;
    private string _status = WorkerStatus.Available;

    private WorkerHost(WorkerOptions options, SignalingClient signaling, GpuInfo gpu, RegistrationResult registration, string token, string jobsDirectory, string? trainerPath)
    {
        _options = options;
        _signaling = signaling;
        _log = options.Log;
        Gpu = gpu;
        _jobsDirectory = jobsDirectory;
        _trainerPath = trainerPath;
        Session = new WorkerSession
        {
            PeerId = registration.PeerId,
            RoomId = registration.RoomId,
            Token = token,
            Server = signaling.Endpoints.WebSocket.ToString().TrimEnd('/'),
            SessionString = SessionString.Encode(registration.RoomId, token, registration.PeerId, signaling.Endpoints.WebSocket.ToString().TrimEnd('/')),
            Status = WorkerStatus.Available,
            GpuModel = gpu.Model,
            GpuMemoryMB = gpu.MemoryMB,
            GpuId = gpu.Index ?? options.GpuId,
            Name = options.Name,
            WorkingDirectory = jobsDirectory,
            StartedAt = DateTimeOffset.UtcNow,
        };
        StunServers = IceServerList.StunUrls(registration.IceServers);
    }

    /// <summary>The public description (Start-SleapWorker output); Status follows the lifecycle.</summary>
    public WorkerSession Session { get; }
    public GpuInfo Gpu { get; }
    public string Status { get { lock (_gate) return _status; } }
    /// <summary>The trainer this worker runs, or null when none was found (jobs then fail with a clear message).</summary>
    public string? TrainerPath => _trainerPath;
    public IReadOnlyList<string> StunServers { get; private set; }
    /// <summary>Completes when the worker has stopped.</summary>
    public Task Completion => _completion.Task;

    public event Action<string>? StatusChanged;
    /// <summary>Job output and worker notes (the cmdlet layer writes them to its streams).</summary>
    public event Action<string>? LogLine;
    public event Action<JobProgress>? ProgressChanged;
    public event Action<WorkerJobOutcome>? JobCompleted;

    /// <summary>Probes the GPU, signs in, creates the room when none is given, and registers as a worker.</summary>
    /// <exception cref="InvalidRoomCredentialsException">The server refused the room id / token.</exception>
    /// <exception cref="SignalingUnavailableException">The server cannot be reached.</exception>
    public static async Task<WorkerHost> StartAsync(WorkerOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.RoomId is not null && string.IsNullOrEmpty(options.Token))
            throw new MissingCredentialsException($"room '{options.RoomId}' was given without its token");
        var gpu = GpuProbe.Probe(options.NvidiaSmiPath, options.GpuId, options.GpuProbeTimeout);
        var trainer = ExecutableLocator.Find(options.SleapNnPath, TrainerProcess.EnvironmentVariable, "sleap-nn");

        SignalingClient signaling;
        try { signaling = new SignalingClient(options.Server, WithLog(options.Signaling, options.Log)); }
        catch (FormatException e) { throw new SignalingUnavailableException(options.Server, e.Message, e); }
        try
        {
            var signIn = await signaling.AnonymousSignInAsync(null, cancellationToken).ConfigureAwait(false);
            string roomId, token;
            if (options.RoomId is null)
            {
                var room = await signaling.CreateRoomAsync(options.Name, null, cancellationToken).ConfigureAwait(false);
                (roomId, token) = (room.RoomId, room.Token);
            }
            else
            {
                (roomId, token) = (options.RoomId, options.Token!);
            }

            var metadata = BuildMetadata(options, gpu);
            RegistrationResult registration;
            try
            {
                registration = await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "worker", metadata), cancellationToken).ConfigureAwait(false);
            }
            catch (SignalingException e) when (e.Reason is RegistrationReasons.InvalidToken or RegistrationReasons.RoomNotFound or RegistrationReasons.RoomExpired)
            {
                throw new InvalidRoomCredentialsException(roomId, e.Reason!);
            }

            var jobs = options.WorkingDirectory ?? Path.Combine(Path.GetTempPath(), "SleapRtc", "worker-" + registration.PeerId);
            var workingDirectoryLock = ClaimWorkingDirectory(jobs, options);
            var host = new WorkerHost(options, signaling, gpu, registration, token, jobs, trainer) { _workingDirectoryLock = workingDirectoryLock };
            host.Attach();
            host._log.Write(LogLevel.Information, Component,
                $"Worker {registration.PeerId} ready in room {registration.RoomId}: {gpu.Model} ({gpu.MemoryMB} MB), trainer {trainer ?? "not found"}");
            return host;
        }
        catch (SignalingException e)
        {
            await signaling.DisposeAsync().ConfigureAwait(false);
            throw new SignalingUnavailableException(options.Server, e.Message, e);
        }
        catch
        {
            await signaling.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The start-up banner in classic order (§3), for the Information stream: it shows the room token on
    /// purpose, because other machines need it to join.
    /// </summary>
    public IReadOnlyList<string> GetCredentialsBanner()
    {
        var rule = new string('=', 80);
        var s = Session;
        return new[]
        {
            rule,
            "Worker authenticated with server",
            rule,
            "",
            "Session string for DIRECT connection to this worker:",
            "  " + s.SessionString,
            "",
            "Room credentials for OTHER workers/clients to join this room:",
            "  Room ID: " + s.RoomId,
            "  Token:   " + s.Token,
            "  Server:  " + s.Server,
            "",
            "Copy command for other workers to join:",
            $"  Start-SleapWorker -Server {s.Server} -RoomId {s.RoomId} -Token {s.Token}",
            "OR Clients:",
            $"  Get-SleapWorker -Server {s.Server} -RoomId {s.RoomId} -Token {s.Token}",
            $"  Submit-SleapTraining -SessionString '{s.SessionString}' -PackagePath ./labels.v001.zip",
            "",
            "Use the session string with -SessionString for a direct connection to this worker",
            "Use the room credentials with -RoomId and -Token for worker discovery",
            rule,
        };
    }

    /// <summary>Stops serving: the running job (if any) ends, the worker leaves the room.</summary>
    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested) { await Completion.ConfigureAwait(false); return; }
        _stopping.Cancel();
        WorkerJobSession? session;
        Task job;
        lock (_gate) { session = _session; job = _currentJob; }
        session?.Stop();
        try { await job.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false); }
        catch (TimeoutException) { _log.Write(LogLevel.Warning, Component, "the running job did not stop within 30 s"); }
        await _signaling.DisposeAsync().ConfigureAwait(false);
        _workingDirectoryLock?.Dispose();
        SetLocalStatus("stopped");
        _completion.TrySetResult();
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    private void Attach()
    {
        _signaling.OfferReceived += offer => _ = Task.Run(() => HandleOfferObservedAsync(offer));
        _signaling.Reconnected += registration => _ = Task.Run(RepublishAfterReconnectAsync);
        _signaling.Disconnected += e => _log.Write(LogLevel.Warning, Component, "signaling connection lost; reconnecting");
    }

    /// <summary>
    /// Removes the job folders killed workers left in the working directory. The default directory (new per
    /// start) is marked as this worker's, so a later start can tell it from a dead worker's and remove it.
    /// </summary>
    private static FolderLock? ClaimWorkingDirectory(string jobs, WorkerOptions options)
    {
        var isDefault = options.WorkingDirectory is null;
        var claim = isDefault ? FolderLock.Acquire(jobs, FolderLock.WorkerMarker, removeFolderWhenEmpty: true) : null;
        Directory.CreateDirectory(jobs);
        FolderLock.RemoveStaleJobFolders(jobs, options.JobFolderRetention, siblingWorkers: isDefault, options.Log);
        return claim;
    }

    private static JsonObject BuildMetadata(WorkerOptions options, GpuInfo gpu)
    {
        var tags = new JsonArray();
        foreach (var tag in ClassicTags.Concat(options.Tags).Distinct(StringComparer.Ordinal)) tags.Add(tag);
        var properties = new JsonObject
        {
            ["gpu_memory_mb"] = gpu.MemoryMB,
            ["gpu_model"] = gpu.Model,
            ["sleap_version"] = "unknown",
            ["cuda_version"] = gpu.CudaVersion,
            ["hostname"] = Environment.MachineName,
            ["status"] = WorkerStatus.Available,
            ["max_concurrent_jobs"] = 1,
            ["supported_models"] = new JsonArray("base", "centroid", "topdown"),
            ["supported_job_types"] = new JsonArray("training"),
            [JobExtensions.MetadataProperty] = JobExtensions.Version,
            ["gpu_id"] = gpu.Index ?? options.GpuId,
        };
        if (!string.IsNullOrWhiteSpace(options.Name)) properties["worker_name"] = options.Name;
        return new JsonObject { ["tags"] = tags, ["properties"] = properties };
    }

    private static SignalingClientOptions WithLog(SignalingClientOptions? template, ILogSink log)
    {
        var options = template ?? new SignalingClientOptions();
        if (ReferenceEquals(options.Log, Protocol.Logging.Log.Null)) options.Log = log;
        return options;
    }

}
