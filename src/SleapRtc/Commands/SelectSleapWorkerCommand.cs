using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Picks one worker: from a numbered list (default, 'r' refreshes), by most GPU memory (-Auto), or by id.</summary>
[Cmdlet(VerbsCommon.Select, "SleapWorker", DefaultParameterSetName = RoomSet)]
[OutputType(typeof(WorkerInfo))]
public sealed class SelectSleapWorkerCommand : SleapCmdlet
{
    private const string RoomSet = "Room";
    private const string PipelineSet = "InputObject";
    private static readonly TimeSpan DiscoveryTimeout = TimeSpan.FromSeconds(30);
    private readonly List<WorkerInfo> _piped = new();

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = PipelineSet)]
    public WorkerInfo[] InputObject { get; set; } = Array.Empty<WorkerInfo>();

    [Parameter(Position = 0, ParameterSetName = RoomSet)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ParameterSetName = RoomSet)]
    public string? Token { get; set; }

    [Parameter(ParameterSetName = RoomSet)]
    public string? SessionString { get; set; }

    [Parameter(ParameterSetName = RoomSet)]
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
        if (Auto && WorkerId is not null)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.ConflictingSelection, ErrorCategory.InvalidArgument, WorkerId,
                "-Auto and -WorkerId choose a worker in different ways; use one of them.", "Remove -Auto or -WorkerId."));
        }
        if (!Auto && WorkerId is null && !HostWorkerChooser.IsInteractive(Host))
            ThrowTerminatingError(SleapErrors.FromLibrary(HostWorkerChooser.NotInteractive(), null));

        try
        {
            var room = ParameterSetName == RoomSet ? ResolveRoom() : RoomOf(_piped.FirstOrDefault());
            var roomId = room?.RoomId ?? _piped.FirstOrDefault()?.RoomId ?? "";
            var workers = ParameterSetName == RoomSet ? Discover(room!) : Filter(_piped);
            if (workers.Count == 0) throw new NoWorkersAvailableException(roomId, MinGpuMemoryMB > 0 ? $" with at least {MinGpuMemoryMB} MB of GPU memory" : "");

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
                chosen = RunOnBackground((queue, ct) => Task.Run(() => WorkerSelection.SelectInteractive(new HostWorkerChooser(queue), workers,
                    () => room is null ? workers : Discover(room, ct), WorkerSelection.DefaultPromptTimeout, roomId), ct));
            }
            WriteObject(chosen);
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, WorkerId ?? RoomId));
        }
        catch (FormatException ex)
        {
            ThrowTerminatingError(SleapErrors.InvalidSessionString(SessionString ?? "", ex));
        }
    }

    private ResolvedRoom ResolveRoom()
    {
        var room = CredentialResolver.Resolve(RoomId, Token, Server, SessionString, ModuleData.Credentials());
        if (room.Server is not null) return room;
        var sessionServer = RunningServer.OfThisSession().FirstOrDefault()?.LocalUrl;
        if (sessionServer is null) ThrowTerminatingError(SleapErrors.MissingServer());
        return new ResolvedRoom { RoomId = room.RoomId, Token = room.Token, Server = sessionServer, Source = room.Source };
    }

    /// <summary>Piped workers carry their room's credentials, which lets 'r' refresh the list.</summary>
    private static ResolvedRoom? RoomOf(WorkerInfo? worker) =>
        worker is { Token.Length: > 0, Server.Length: > 0 }
            ? new ResolvedRoom { RoomId = worker.RoomId, Token = worker.Token!, Server = worker.Server, Source = CredentialSource.Explicit }
            : null;

    private IReadOnlyList<WorkerInfo> Discover(ResolvedRoom room) =>
        RunOnBackground((_, ct) => Task.FromResult(Discover(room, ct)), DiscoveryTimeout);

    private IReadOnlyList<WorkerInfo> Discover(ResolvedRoom room, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(DiscoveryTimeout);
        var filter = new WorkerFilter { MinGpuMemoryMB = MinGpuMemoryMB };
        var workers = WorkerDiscovery.DiscoverAsync(room, filter, new ClientConnectionOptions(), limit.Token).GetAwaiter().GetResult();
        KnownPeers.RememberDiscovery(room.RoomId, workers);
        return workers;
    }

    private IReadOnlyList<WorkerInfo> Filter(IEnumerable<WorkerInfo> workers) =>
        workers.Where(w => w.GpuMemoryMB >= MinGpuMemoryMB && (WorkerId is not null || w.Status == WorkerStatus.Available)).ToList();
}
