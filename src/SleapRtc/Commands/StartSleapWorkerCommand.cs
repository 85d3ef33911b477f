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
    public string? Server { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter]
    [ValidateRange(0, 64)]
    public int GpuId { get; set; }

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
        var log = new PipelineLogSink("worker");

        WorkerHost host;
        try
        {
            host = RunOnBackground(async (queue, ct) =>
            {
                var server = knownServer;
                if (server is null)
                {
                    var embedded = await EmbeddedServer.StartAsync(registry, ct).ConfigureAwait(false);
                    server = embedded.Url;
                    queue.WriteInformation($"Started an embedded signaling server at {server} (stop it with Stop-SleapSignalingServer).", new[] { "SleapRtc.Server" });
                }
                return await WorkerHost.StartAsync(new WorkerOptions
                {
                    Server = server,
                    RoomId = room?.RoomId,
                    Token = room?.Token,
                    Name = Name,
                    GpuId = GpuId,
                    WorkingDirectory = WorkingDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(WorkingDirectory),
                    NvidiaSmiPath = NvidiaSmiPath is null ? null : GetUnresolvedProviderPathFromPSPath(NvidiaSmiPath),
                    SleapNnPath = SleapNnPath is null ? null : GetUnresolvedProviderPathFromPSPath(SleapNnPath),
                    Tags = Tag,
                    PeerConnectionFactory = PeerConnectionDefaults.Factory,
                    PeerConnection = PeerConnectionDefaults.Options(),
                    Log = log,
                }, ct).ConfigureAwait(false);
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

        var worker = new RunningWorker(host);
        registry.Add(worker);
        var session = worker.Session;
        store.Save(new RoomCredentials { RoomId = session.RoomId, Token = session.Token, Server = session.Server });
        if (room is null) RoomTarget.RememberCreated(session.RoomId);
        if (host.TrainerPath is null)
            WriteWarning("No sleap-nn trainer was found (-SleapNnPath, SLEAP_RTC_SLEAP_NN or PATH): jobs sent to this worker will fail until one is installed.");
        foreach (var line in host.GetCredentialsBanner())
            WriteInformation(new HostInformationMessage { Message = line, NoNewLine = false }, new[] { "SleapRtc.Banner", "PSHOST" });
        WriteObject(session);
        if (Wait) ServeUntilStopped(worker, log);
    }

    /// <summary>-Wait: relay the worker's log and status until Ctrl+C, then leave the room.</summary>
    private void ServeUntilStopped(RunningWorker worker, PipelineLogSink log)
    {
        PipelineQueue? attached = null;
        void OnLine(string line) => attached?.WriteVerbose(line);
        void OnStatus(string status) => attached?.WriteVerbose($"Worker {worker.Session.PeerId} is {status}.");
        worker.Host.LogLine += OnLine;
        worker.Host.StatusChanged += OnStatus;
        try
        {
            RunOnBackground(async (queue, ct) =>
            {
                attached = queue;
                log.Attach(queue);
                await worker.Host.Completion.WaitAsync(ct).ConfigureAwait(false);
            });
        }
        finally
        {
            worker.Host.LogLine -= OnLine;
            worker.Host.StatusChanged -= OnStatus;
            log.Detach();
            SessionRegistry.Current.Remove(worker);
            if (!worker.StopAsync().Wait(TimeSpan.FromSeconds(35)))
                WriteWarning($"Worker {worker.Session.PeerId} did not stop within 35 s.");
        }
    }
}
