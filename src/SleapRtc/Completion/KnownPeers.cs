using System.Management.Automation.Runspaces;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Completion;

/// <summary>
/// What tab completion can offer without a network round trip: workers this session started and the workers this
/// session's most recent discoveries returned (per room). Read from the calling runspace's state only, so one
/// runspace never completes another's workers or holds on to its room tokens.
/// </summary>
internal static class KnownPeers
{
    public static IEnumerable<string> RoomsOfThisSession()
    {
        var registry = ThisSession();
        if (registry is null) return Enumerable.Empty<string>();
        return LocalWorkers(registry).Select(w => w.RoomId).Concat(registry.Discoveries().Keys).Distinct(StringComparer.Ordinal);
    }

    public static IEnumerable<WorkerInfo> Workers(string? roomId)
    {
        var registry = ThisSession();
        if (registry is null) return Enumerable.Empty<WorkerInfo>();
        var local = LocalWorkers(registry).Select(w => new WorkerInfo
        {
            PeerId = w.PeerId, RoomId = w.RoomId, GpuModel = w.GpuModel, GpuMemoryMB = w.GpuMemoryMB, Status = w.Status,
        });
        var all = registry.Discoveries().Values.SelectMany(w => w).Concat(local);
        return roomId is null ? all : all.Where(w => string.Equals(w.RoomId, roomId, StringComparison.Ordinal));
    }

    // Completers run on the pipeline thread of the runspace being completed in.
    private static SessionRegistry? ThisSession() => SessionRegistry.Find(Runspace.DefaultRunspace);

    private static IEnumerable<WorkerSession> LocalWorkers(SessionRegistry registry) =>
        registry.Services<IWorkerService>().Select(s => s.Session);
}
