using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Joins (or creates) a room as a training worker and serves jobs in the background of the session, or until
/// Ctrl+C with -Wait. Prints the session string and room credentials to the Information stream.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "SleapWorker", HelpUri = ModuleLinks.Docs + "Start-SleapWorker.md")]
[OutputType(typeof(WorkerSession))]
public sealed class StartSleapWorkerCommand : SleapCmdlet
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>GPU index(es) as nvidia-smi numbers them, or "all": one worker per GPU (default GPU 0).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuIdCompleter))]
    public string[] GpuId { get; set; } = { "0" };

    /// <summary>Shared storage: clients may name a package under it instead of uploading; results are also kept in &lt;root&gt;/jobs/&lt;job id&gt;.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DataRoot { get; set; }

    /// <summary>How long a finished job's results are kept for collection (Receive-SleapJob).</summary>
    [Parameter]
    public TimeSpan ResultRetention { get; set; } = WorkerOptions.DefaultResultRetention;

    [Parameter]
    public TimeSpan PartialUploadRetention { get; set; } = Worker.Jobs.WorkerJobOptions.DefaultPartialUploadRetention;

    /// <summary>The most the kept results may take on disk, in GB; beyond it the oldest are removed.</summary>
    [Parameter]
    [ValidateRange(0.001, 1_000_000.0)]
    public double ResultQuotaGB { get; set; } = WorkerOptions.DefaultResultQuotaBytes / 1e9;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? WorkingDirectory { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? NvidiaSmiPath { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SleapNnPath { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] Tag { get; set; } = Array.Empty<string>();

    /// <summary>CPU priority of the trainer and tracker (below the worker's own by default, so the worker stays responsive).</summary>
    [Parameter]
    [ValidateSet(nameof(System.Diagnostics.ProcessPriorityClass.Normal), nameof(System.Diagnostics.ProcessPriorityClass.BelowNormal), nameof(System.Diagnostics.ProcessPriorityClass.Idle))]
    public System.Diagnostics.ProcessPriorityClass TrainerPriority { get; set; } = Worker.Training.TrainerProcess.DefaultPriority;

    /// <summary>Serve this named inference space of the room (unique in the room) with the models of -ModelPath.</summary>
    [Parameter]
    [ValidatePattern("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    public string? Space { get; set; }

    /// <summary>The space's trained model folders, kept on this worker.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] ModelPath { get; set; } = Array.Empty<string>();

    /// <summary>The most one space request may take from the end of its upload, waiting in line included.</summary>
    [Parameter]
    [ValidateRange(1, 86400)]
    public int RequestTimeoutSec { get; set; } = 120;

    [Parameter]
    [ValidateRange(1.0, 1_000_000.0)]
    public double MaxPackageRatio { get; set; } = PackageLimits.DefaultMaxCompressionRatio;

    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxUnpackedSize { get; set; } = PackageLimits.DefaultMaxUnpackedBytes;

    /// <summary>Refuse classic peers, which cannot prove the room token over the channel (clients of ours always do).</summary>
    [Parameter]
    public SwitchParameter RequireChannelAuth { get; set; }

    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void ProcessRecord()
    {
        var registry = SessionRegistry.Current;
        var store = ModuleData.Credentials();
        // Decided on the pipeline thread: the session's state is only reachable from there.
        ResolvedRoom? room;
        string? knownServer;
        try { (room, knownServer) = RoomTarget.ForWorker(RoomId, Token, Server); }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        var (roomId, token) = (room?.RoomId, room?.Token);
        if (roomId is null && Server is null && RunningWorker.OfThisSession().FirstOrDefault() is { } first)
        {
            // One room per machine by default: a second worker (the next GPU) joins the first one's room and server
            // instead of creating a room of its own on the same embedded server.
            (roomId, token, knownServer) = (first.Session.RoomId, first.Session.Token, first.Session.Server);
            WriteInformation($"Joining room {roomId} of worker {first.Session.PeerId} (started in this session) on {knownServer}; pass -RoomId or -Server for another room.", new[] { "SleapRtc.Room" });
        }
        var log = new PipelineLogSink("worker");
        if (ResultRetention <= TimeSpan.Zero)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidResultRetention, ErrorCategory.InvalidArgument, ResultRetention,
                $"-ResultRetention must be longer than zero (got {ResultRetention}).", "Give a duration such as (New-TimeSpan -Days 7) or '2.00:00:00'."));
            return;
        }
        if (PartialUploadRetention < TimeSpan.Zero)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidPartialUploadRetention, ErrorCategory.InvalidArgument, PartialUploadRetention,
                $"-PartialUploadRetention cannot be negative (got {PartialUploadRetention}).", "Give a duration such as (New-TimeSpan -Minutes 10), or 0 to keep no partial upload."));
            return;
        }
        var dataRoot = DataRoot is null ? null : GetUnresolvedProviderPathFromPSPath(DataRoot);
        if (dataRoot is not null && !Directory.Exists(dataRoot))
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.DataRootNotFound, ErrorCategory.ObjectNotFound, DataRoot,
                $"The data root '{dataRoot}' is not a folder.", "Give an existing folder (the shared storage clients name packages under)."));
            return;
        }
        var workingDirectory = WorkingDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(WorkingDirectory);
        var nvidiaSmiPath = NvidiaSmiPath is null ? null : GetUnresolvedProviderPathFromPSPath(NvidiaSmiPath);
        var sleapNnPath = SleapNnPath is null ? null : GetUnresolvedProviderPathFromPSPath(SleapNnPath);
        var spaceModels = ModelPath.Select(GetUnresolvedProviderPathFromPSPath).ToArray();
        GpuPlan plan;
        try { plan = WorkerMachine.Plan(GpuId, nvidiaSmiPath, TimeSpan.FromSeconds(10)); }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, string.Join(",", GpuId)));
            return;
        }
        catch (ArgumentException ex)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidGpuId, ErrorCategory.InvalidArgument, string.Join(",", GpuId), ex.Message,
                "Give GPU indexes as nvidia-smi numbers them (Tab lists them), or 'all'.", ex));
            return;
        }
        WorkerOptions OptionsFor(string server) => new()
        {
            Server = server,
            RoomId = roomId,
            Token = token,
            Name = Name,
            WorkingDirectory = workingDirectory,
            DataRoot = dataRoot,
            ResultRetention = ResultRetention,
            PartialUploadRetention = PartialUploadRetention,
            ResultQuotaBytes = (long)(ResultQuotaGB * 1e9),
            NvidiaSmiPath = nvidiaSmiPath,
            SleapNnPath = sleapNnPath,
            TrainerPriority = TrainerPriority,
            Tags = Tag,
            MaxPackageRatio = MaxPackageRatio,
            MaxUnpackedSize = MaxUnpackedSize,
            Space = Space,
            SpaceModelPaths = spaceModels,
            SpaceRequestTimeout = TimeSpan.FromSeconds(RequestTimeoutSec),
            RequireChannelAuth = RequireChannelAuth,
            PeerConnectionFactory = PeerConnectionDefaults.Factory,
            PeerConnection = PeerConnectionDefaults.Options(),
            Log = log,
        };

        IReadOnlyList<WorkerHost> hosts;
        try
        {
            hosts = RunOnBackground(async (queue, ct) =>
            {
                var server = knownServer;
                RunningServer? embedded = null;
                if (server is null)
                {
                    embedded = await EmbeddedServer.StartAsync(registry, ct).ConfigureAwait(false);
                    server = embedded.Url;
                    queue.WriteInformation($"Started an embedded signaling server at {server} (stop it with Stop-SleapSignalingServer).", new[] { "SleapRtc.Server" });
                }
                try
                {
                    return await WorkerMachine.StartAsync(OptionsFor(server), plan.GpuIds, ct).ConfigureAwait(false);
                }
                catch when (embedded is not null)
                {
                    // A server started only for this worker must not outlive its failed start (a wrong -GpuId, say).
                    registry.Remove(embedded);
                    await embedded.StopAsync().ConfigureAwait(false);
                    throw;
                }
            }, StartTimeout);
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, RoomId ?? Server));
            return;
        }
        catch (TimeoutException ex)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, Server,
                "The worker could not register within 60 s.", "Check that the signaling server runs and is reachable.", ex));
            return;
        }

        var workers = hosts.Select(h => new RunningWorker(h)).ToList();
        foreach (var started in workers) registry.Add(started);
        var host = hosts[0];
        var session = host.Session;
        store.Save(new RoomCredentials { RoomId = session.RoomId, Token = session.Token, Server = session.Server });
        if (roomId is null) RoomTarget.RememberCreated(session.RoomId);
        if (plan.Warning is not null) WriteWarning(plan.Warning);
        foreach (var gpuWarning in hosts.Select(h => h.GpuWarning).OfType<string>().Distinct()) WriteWarning(gpuWarning);
        if (host.TrainerPath is null)
            WriteWarning("No sleap-nn trainer was found (-SleapNnPath, SLEAP_RTC_SLEAP_NN or PATH): jobs sent to this worker will fail until one is installed.");
        // Under -Wait (the service form) the output goes to the system journal: no token or session string there.
        foreach (var line in host.GetCredentialsBanner(maskSecrets: Wait, savedCredentialsFile: store.FilePath))
            WriteInformation(new HostInformationMessage { Message = line, NoNewLine = false }, new[] { "SleapRtc.Banner", "PSHOST" });
        foreach (var other in hosts.Skip(1))
            WriteInformation($"Also started worker {other.Session.PeerId} on GPU {other.Session.GpuId} ({other.Gpu.Model}) in room {other.Session.RoomId}.", new[] { "SleapRtc.Banner" });
        foreach (var started in workers) WriteObject(started.Session);
        if (Wait) ServeUntilStopped(workers, log);
    }

    /// <summary>-Wait: relay the workers' log and status until Ctrl+C, then leave the room.</summary>
    private void ServeUntilStopped(IReadOnlyList<RunningWorker> workers, PipelineLogSink log)
    {
        PipelineQueue? attached = null;
        var relays = workers.Select(worker => (
            Worker: worker,
            OnLine: (Action<string>)(line => attached?.WriteVerbose(line)),
            OnStatus: (Action<string>)(status => attached?.WriteVerbose($"Worker {worker.Session.PeerId} is {status}.")))).ToList();
        foreach (var relay in relays)
        {
            relay.Worker.Host.LogLine += relay.OnLine;
            relay.Worker.Host.StatusChanged += relay.OnStatus;
        }
        try
        {
            RunOnBackground(async (queue, ct) =>
            {
                attached = queue;
                log.Attach(queue);
                // Serving until every worker of this start has stopped (Stop-SleapWorker from elsewhere) or Ctrl+C.
                await Task.WhenAll(workers.Select(w => w.Host.Completion)).WaitAsync(ct).ConfigureAwait(false);
            });
        }
        finally
        {
            foreach (var relay in relays)
            {
                relay.Worker.Host.LogLine -= relay.OnLine;
                relay.Worker.Host.StatusChanged -= relay.OnStatus;
            }
            log.Detach();
            foreach (var worker in workers) SessionRegistry.Current.Remove(worker);
            if (!Task.WhenAll(workers.Select(w => w.StopAsync())).Wait(TimeSpan.FromSeconds(35)))
                WriteWarning($"Worker(s) {string.Join(", ", workers.Select(w => w.Session.PeerId))} did not stop within 35 s.");
        }
    }
}
