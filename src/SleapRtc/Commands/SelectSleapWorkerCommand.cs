using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Picks one worker: from a numbered list (default, 'r' refreshes), by most GPU memory (-Auto), or by id.</summary>
[Cmdlet(VerbsCommon.Select, "SleapWorker", DefaultParameterSetName = RoomSet, HelpUri = ModuleLinks.Docs + "Select-SleapWorker.md")]
[OutputType(typeof(WorkerInfo))]
public sealed class SelectSleapWorkerCommand : SleapCmdlet
{
    private const string RoomSet = "Room";
    private const string PipelineSet = "InputObject";
    private static readonly TimeSpan DiscoveryTimeout = TimeSpan.FromSeconds(30);
    private readonly List<WorkerInfo> _piped = new();
    // Captured on the pipeline thread: discoveries run on the thread pool, where no runspace is current.
    private SessionRegistry _session = null!;

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = PipelineSet)]
    public WorkerInfo[] InputObject { get; set; } = Array.Empty<WorkerInfo>();

    /// <summary>RoomId, Token, Server and SessionString bind by property name, so a Room from New-SleapRoom pipes in.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RoomSet)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RoomSet)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RoomSet)]
    public string? SessionString { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RoomSet)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long MinGpuMemoryMB { get; set; }

    [Parameter]
    public SwitchParameter Auto { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public string? WorkerId { get; set; }

    protected override void ProcessRecord() => _piped.AddRange(InputObject);

    protected override void EndProcessing()
    {
        _session = SessionRegistry.Current;
        if (Auto && WorkerId is not null)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.ConflictingSelection, ErrorCategory.InvalidArgument, WorkerId,
                "-Auto and -WorkerId choose a worker in different ways; use one of them.", "Remove -Auto or -WorkerId."));
        }
        if (!Auto && WorkerId is null && !HostWorkerChooser.IsInteractive(Host))
            ThrowTerminatingError(SleapErrors.FromLibrary(HostWorkerChooser.NotInteractive(), null));

        try
        {
            var room = ParameterSetName == RoomSet ? RoomTarget.Resolve(RoomId, Token, Server, SessionString) : RoomOf(_piped.FirstOrDefault());
            var roomId = room?.RoomId ?? _piped.FirstOrDefault()?.RoomId ?? "";
            var workers = ParameterSetName == RoomSet
                ? RunOnBackground((_, ct) => DiscoverAsync(room!, ct), DiscoveryTimeout)
                : Filter(_piped, roomId);

            WorkerInfo chosen;
            if (WorkerId is not null) chosen = WorkerSelection.SelectById(workers, WorkerId, roomId);
            else if (Auto)
            {
                chosen = WorkerSelection.SelectAuto(workers, roomId);
                WriteInformation(new HostInformationMessage { Message = $"Auto-selected worker {chosen.PeerId} ({chosen.GpuModel}, {chosen.GpuMemoryMB} MB): the most GPU memory of {workers.Count} available." },
                    new[] { "SleapRtc.Selection", "PSHOST" });
            }
            else
            {
                chosen = RunOnBackground((queue, ct) => WorkerSelection.SelectInteractiveAsync(new HostWorkerChooser(queue, ct), workers,
                    token => room is null ? Task.FromResult(workers) : RefreshAsync(room, token), WorkerSelection.DefaultPromptTimeout, roomId, ct));
            }
            WriteObject(chosen);
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, WorkerId ?? RoomId));
        }
        catch (TimeoutException ex)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, RoomId,
                $"Discovery did not finish within {DiscoveryTimeout.TotalSeconds} s.", "Check that the signaling server is reachable and try again.", ex));
        }
    }

    /// <summary>Piped workers carry their room's credentials, which lets 'r' refresh the list.</summary>
    private static ResolvedRoom? RoomOf(WorkerInfo? worker) =>
        worker is { Token.Length: > 0, Server.Length: > 0 }
            ? new ResolvedRoom { RoomId = worker.RoomId, Token = worker.Token!, Server = worker.Server, Source = CredentialSource.Explicit }
            : null;

    /// <summary>The first list: explains an empty room (nobody there, or everyone busy).</summary>
    private async Task<IReadOnlyList<WorkerInfo>> DiscoverAsync(ResolvedRoom room, CancellationToken ct)
    {
        var workers = await WorkerDiscovery.DiscoverAvailableAsync(room, MinGpuMemoryMB, new ClientConnectionOptions(), ct).ConfigureAwait(false);
        Remember(room, workers);
        return workers;
    }

    /// <summary>'r': an empty list is an answer here (the prompt says so), not an error.</summary>
    private async Task<IReadOnlyList<WorkerInfo>> RefreshAsync(ResolvedRoom room, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(DiscoveryTimeout);
        var workers = await WorkerDiscovery.DiscoverAsync(room, new WorkerFilter { MinGpuMemoryMB = MinGpuMemoryMB }, new ClientConnectionOptions(), limit.Token).ConfigureAwait(false);
        Remember(room, workers);
        return workers;
    }

    private void Remember(ResolvedRoom room, IReadOnlyList<WorkerInfo> workers) => _session.RememberDiscovery(room.RoomId, workers);

    private IReadOnlyList<WorkerInfo> Filter(IReadOnlyList<WorkerInfo> workers, string roomId)
    {
        var matching = workers.Where(w => w.GpuMemoryMB >= MinGpuMemoryMB).ToList();
        var usable = matching.Where(w => WorkerId is not null || w.Status == WorkerStatus.Available).ToList();
        if (usable.Count > 0) return usable;
        throw matching.Count == 0
            ? NoWorkersAvailableException.EmptyRoom(roomId, MinGpuMemoryMB)
            : NoWorkersAvailableException.AllBusy(roomId, matching.Count);
    }
}
