using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Discovers the workers of a room through the signaling server (or lists this session's workers with -Local).</summary>
[Cmdlet(VerbsCommon.Get, "SleapWorker", DefaultParameterSetName = RoomSet, HelpUri = ModuleLinks.Docs + "Get-SleapWorker.md")]
[OutputType(typeof(WorkerInfo), ParameterSetName = new[] { RoomSet })]
[OutputType(typeof(WorkerSession), ParameterSetName = new[] { LocalSet })]
public sealed class GetSleapWorkerCommand : SleapCmdlet
{
    private const string RoomSet = "Room";
    private const string LocalSet = "Local";
    private static readonly TimeSpan DiscoveryTimeout = TimeSpan.FromSeconds(30);

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

    [Parameter(ParameterSetName = RoomSet)]
    [ValidateRange(0, long.MaxValue)]
    public long MinGpuMemoryMB { get; set; }

    /// <summary>available (default), reserved, busy, or * for every status.</summary>
    [Parameter(ParameterSetName = RoomSet)]
    [ValidateSet("available", "reserved", "busy", "*")]
    public string Status { get; set; } = WorkerStatus.Available;

    [Parameter(ParameterSetName = RoomSet)]
    [ValidateNotNullOrEmpty]
    public string[] Tag { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = LocalSet)]
    public SwitchParameter Local { get; set; }

    protected override void ProcessRecord()
    {
        if (Local)
        {
            foreach (var worker in RunningWorker.OfThisSession()) WriteObject(worker.Session);
            return;
        }

        ResolvedRoom room;
        try
        {
            room = RoomTarget.Resolve(RoomId, Token, Server, SessionString);
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        WriteVerbose($"Discovering workers of room {room.RoomId} on {room.Server} (credentials from {room.Source}).");

        var filter = new WorkerFilter { MinGpuMemoryMB = MinGpuMemoryMB, Status = Status == "*" ? null : Status, Tags = Tag };
        IReadOnlyList<WorkerInfo> workers;
        try
        {
            workers = RunOnBackground((_, ct) => WorkerDiscovery.DiscoverAsync(room, filter, new ClientConnectionOptions(), ct), DiscoveryTimeout);
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, room.RoomId));
            return;
        }
        catch (TimeoutException ex)
        {
            WriteError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, room.RoomId,
                $"Discovery in room {room.RoomId} did not finish within {DiscoveryTimeout.TotalSeconds} s.",
                "Check that the signaling server is reachable and try again.", ex));
            return;
        }
        SessionRegistry.Current.RememberDiscovery(room.RoomId, workers);
        foreach (var worker in workers) WriteObject(worker);
    }
}
