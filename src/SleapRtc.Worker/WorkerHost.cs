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
    /// <summary>The local status of a worker that left the room (never published: the server forgets it).</summary>
    private const string StoppedStatus = "stopped";
    public static readonly IReadOnlyList<string> ClassicTags = new[] { "sleap-rtc", "training-worker", "inference-worker" };

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
    /// <summary>The worker's status: written only by <see cref="TryChangeStatus"/>, under <see cref="_gate"/>.</summary>
    private string _status = WorkerStatus.Available;

    private WorkerHost(WorkerOptions options, SignalingClient signaling, GpuProbeResult gpuProbe, RegistrationResult registration, string token, string jobsDirectory, string? trainerPath)
    {
        _options = options;
        _signaling = signaling;
        _log = options.Log;
        var gpu = gpuProbe.Gpu;
        Gpu = gpu;
        GpuWarning = gpuProbe.Warning;
        _jobsDirectory = jobsDirectory;
        _trainerPath = trainerPath;
        Session = new WorkerSession
        {
            PeerId = registration.PeerId,
            RoomId = registration.RoomId,
            Token = token,
            Server = signaling.ServerList,
            SessionString = SessionString.Encode(registration.RoomId, token, registration.PeerId, signaling.ServerList, JobExtensions.Version),
            Status = WorkerStatus.Available,
            GpuModel = gpu.Model,
            GpuMemoryMB = gpu.MemoryMB,
            GpuId = gpu.Index ?? options.GpuId,
            Name = options.Name,
            WorkingDirectory = jobsDirectory,
            StartedAt = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>The public description (Start-SleapWorker output); its Status mirrors <see cref="Status"/>.</summary>
    public WorkerSession Session { get; }
    public GpuInfo Gpu { get; }
    /// <summary>Why the worker advertises the CPU instead of a GPU (nvidia-smi missing or failing); null when a GPU was read.</summary>
    public string? GpuWarning { get; }
    public string Status { get { lock (_gate) return _status; } }
    /// <summary>The trainer this worker runs, or null when none was found (jobs then fail with a clear message).</summary>
    public string? TrainerPath => _trainerPath;
    /// <summary>The server's STUN servers as of now.</summary>
    public IReadOnlyList<string> StunServers => IceServerList.StunUrls(_signaling.IceServers);
    /// <summary>The server's TURN servers with this worker's newest credentials (empty unless the server runs with -TurnUrl):
    /// read for each connection, since the server renews the credentials while the worker stays connected.</summary>
    public IReadOnlyList<WebRtc.IceServer> TurnServers =>
        IceServerList.TurnServers(_signaling.IceServers).Select(s => new WebRtc.IceServer(s.Urls, s.Username, s.Credential)).ToArray();
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
        ValidateSpace(options);
        var gpu = GpuProbe.Probe(options.NvidiaSmiPath, options.GpuId, options.GpuProbeTimeout);
        if (gpu.Warning is not null) options.Log.Write(LogLevel.Warning, Component, gpu.Warning);
        var trainer = ExecutableLocator.Find(options.SleapNnPath, TrainerProcess.EnvironmentVariable, "sleap-nn");

        SignalingClient signaling;
        try { signaling = new SignalingClient(options.Server, WithLog(options.Signaling, options.Log)); }
        catch (FormatException e) { throw new SignalingUnavailableException(options.Server, e.Message, e); }
        // A worker is offered work the moment it registers (a queued ticket waits for exactly that, and its client
        // offers at once): offers that arrive before the host listens are held for it, not lost.
        var offers = new OfferInbox();
        signaling.OfferReceived += offers.Add;
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

            var metadata = BuildMetadata(options, gpu.Gpu);
            RegistrationResult registration;
            try
            {
                var role = options.Space is null ? "worker" : SpaceMetadata.Role;
                registration = await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, role, metadata), cancellationToken).ConfigureAwait(false);
            }
            catch (SignalingException e) when (e.Reason is RegistrationReasons.InvalidToken or RegistrationReasons.RoomNotFound or RegistrationReasons.RoomExpired)
            {
                throw new InvalidRoomCredentialsException(roomId, e.Reason!);
            }
            catch (SignalingException e) when (e.Code == ErrorCodes.SpaceTaken && options.Space is not null)
            {
                throw new SpaceTakenException(options.Space, e.Error!.Raw.GetString("current_holder") ?? "another worker", roomId);
            }

            if (options.Space is not null) await ClaimSpaceAsync(signaling, options.Space, registration, cancellationToken).ConfigureAwait(false);
            // The default folder is created by the first job and removed when the worker stops (StopAsync), so an
            // idle worker leaves no empty worker-<id> folder in the temp directory; a folder the user gave is theirs.
            var jobs = options.WorkingDirectory ?? DefaultJobsDirectory(registration.PeerId);
            if (options.WorkingDirectory is not null) Directory.CreateDirectory(jobs);
            var workingDirectoryLock = ClaimWorkingDirectory(jobs, options);
            var host = new WorkerHost(options, signaling, gpu, registration, token, jobs, trainer) { _workingDirectoryLock = workingDirectoryLock };
            host.AttachJobs(OpenResults(jobs, options));
            host.Attach(offers);
            host._log.Write(LogLevel.Information, Component,
                $"Worker {registration.PeerId} ready in room {registration.RoomId}: {gpu.Gpu.Model} ({gpu.Gpu.MemoryMB} MB), trainer {trainer ?? "not found"}");
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
    /// purpose, because other machines need it to join. With <paramref name="maskSecrets"/> (a worker run as a
    /// service, whose output lands in the system journal) the token and the session string, which carries the token,
    /// are masked, and the banner says where the account that runs the worker finds them instead.
    /// </summary>
    /// <param name="savedCredentialsFile">Where the room's credentials were saved, named in the masked banner.</param>
    public IReadOnlyList<string> GetCredentialsBanner(bool maskSecrets = false, string? savedCredentialsFile = null)
    {
        var rule = new string('=', 80);
        var s = Session;
        var lines = new List<string>
        {
            rule,
            "Worker authenticated with server",
            rule,
            "",
            "Session string for DIRECT connection to this worker:",
            "  " + (maskSecrets ? DisplayText.MaskSessionString(s.SessionString) : s.SessionString),
            "",
            "Room credentials for OTHER workers/clients to join this room:",
            "  Room ID: " + s.RoomId,
            "  Token:   " + (maskSecrets ? DisplayText.MaskToken(s.Token) : s.Token),
            "  Server:  " + s.Server,
            "",
        };
        if (maskSecrets)
        {
            lines.Add("The token and the session string are masked because this output may be kept in a service log.");
            lines.Add("To get them, as the account this worker runs as:");
            lines.Add(savedCredentialsFile is null
                ? $"  the saved credentials of room {s.RoomId}"
                : $"  the saved credentials of room {s.RoomId} in {savedCredentialsFile}");
            lines.Add($"  ConvertTo-SleapSessionString -RoomId {s.RoomId} -Token <token> -PeerId {s.PeerId} -Server {s.Server}");
            lines.Add("  or, in an interactive session: $w = Start-SleapWorker ... (without -Wait); $w.SessionString; $w.Token");
        }
        else
        {
            lines.AddRange(new[]
            {
                "Copy command for other workers to join:",
                $"  Start-SleapWorker -Server {s.Server} -RoomId {s.RoomId} -Token {s.Token}",
                "OR Clients:",
                $"  Get-SleapWorker -Server {s.Server} -RoomId {s.RoomId} -Token {s.Token}",
                $"  Submit-SleapTraining -SessionString '{s.SessionString}' -PackagePath ./labels.v001.zip",
                "",
                "Use the session string with -SessionString for a direct connection to this worker",
                "Use the room credentials with -RoomId and -Token for worker discovery",
            });
        }
        lines.Add(rule);
        return lines;
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
        StopSpaceRequests();
        try { await job.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false); }
        catch (TimeoutException) { _log.Write(LogLevel.Warning, Component, "the running job did not stop within 30 s"); }
        DiscardParkedUpload();
        await _signaling.DisposeAsync().ConfigureAwait(false);
        DetachJobs();
        _workingDirectoryLock?.Dispose();
        TryChangeStatus(StoppedStatus, _ => true, out _);
        RemoveDefaultJobsDirectory();
        _completion.TrySetResult();
    }

    /// <summary>&lt;temp&gt;/SleapRtc/worker-&lt;peer id&gt;: where jobs run when no working directory is given.</summary>
    public static string DefaultJobsDirectory(string peerId) => Path.Combine(Path.GetTempPath(), "SleapRtc", "worker-" + peerId);

    private void RemoveDefaultJobsDirectory()
    {
        if (_options.WorkingDirectory is not null) return;
        try
        {
            if (Directory.Exists(_jobsDirectory)) Directory.Delete(_jobsDirectory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A trainer that outlived its job may still hold a file; the folder is in the temp directory either way.
            _log.Write(LogLevel.Warning, Component, $"could not remove {_jobsDirectory}: {e.Message}");
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    private void Attach(OfferInbox offers)
    {
        if (_options.Space is not null) StartServingSpace();
        offers.Open(offer => _ = Task.Run(() =>
            IsCollectOffer(offer) ? HandleCollectOfferObservedAsync(offer)
            : IsProbeOffer(offer) ? HandleProbeOfferObservedAsync(offer)
            : _spaceQueue is null ? IsResumeOffer(offer) ? HandleResumeOfferObservedAsync(offer) : HandleOfferObservedAsync(offer)
            : HandleSpaceOfferAsync(offer)));
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
        // In a working directory of the user's, kept results survive a restart (the result store adopts them and applies
        // its retention); a default directory is new per start, so what dead workers left there is of no use.
        var retention = isDefault ? options.JobFolderRetention : JobFolderRetention.Either(options.JobFolderRetention, JobResultStore.KeepsFolder);
        FolderLock.RemoveStaleJobFolders(jobs, retention, siblingWorkers: isDefault, options.Log);
        return claim;
    }

    private static JsonObject BuildMetadata(WorkerOptions options, GpuInfo gpu)
    {
        var tags = new JsonArray();
        foreach (var tag in ClassicTags.Concat(options.Tags).Distinct(StringComparer.Ordinal)) tags.Add(tag);
        var properties = new JsonObject
        {
            [PeerMetadataKeys.GpuMemoryMB] = gpu.MemoryMB,
            [PeerMetadataKeys.GpuModel] = gpu.Model,
            [PeerMetadataKeys.SleapVersion] = "unknown",
            [PeerMetadataKeys.CudaVersion] = gpu.CudaVersion,
            [PeerMetadataKeys.Hostname] = Environment.MachineName,
            [PeerMetadataKeys.Status] = WorkerStatus.Available,
            [PeerMetadataKeys.MaxConcurrentJobs] = 1,
            [PeerMetadataKeys.SupportedModels] = new JsonArray("base", "centroid", "topdown"),
            [PeerMetadataKeys.SupportedJobTypes] = new JsonArray("training", "inference"),
            [JobExtensions.MetadataProperty] = JobExtensions.Version,
            [PeerMetadataKeys.GpuId] = gpu.Index ?? options.GpuId,
            [PeerMetadataKeys.MachineId] = options.MachineId,
        };
        if (options.DataRoot is not null) properties[PeerMetadataKeys.DataRoot] = true;
        if (!string.IsNullOrWhiteSpace(options.Name)) properties[PeerMetadataKeys.WorkerName] = options.Name;
        if (options.Space is not null) AddSpaceMetadata(options.Space, tags, properties);
        return new JsonObject { [PeerMetadataKeys.Tags] = tags, [PeerMetadataKeys.Properties] = properties };
    }

    private static SignalingClientOptions WithLog(SignalingClientOptions? template, ILogSink log)
    {
        var options = template ?? new SignalingClientOptions();
        if (ReferenceEquals(options.Log, Protocol.Logging.Log.Null)) options.Log = log;
        return options;
    }

}
