using System.Collections.Concurrent;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Completion;

/// <summary>
/// What tab completion can offer without a network round trip: workers this session started and the workers the
/// most recent discoveries returned (remembered per room).
/// </summary>
internal static class KnownPeers
{
    private static readonly ConcurrentDictionary<string, WorkerInfo[]> s_lastDiscovery = new(StringComparer.Ordinal);

    /// <summary>Remembers the result of a discovery so -WorkerId can complete it.</summary>
    public static void RememberDiscovery(string roomId, IEnumerable<WorkerInfo> workers) =>
        s_lastDiscovery[roomId] = workers.ToArray();

    public static IEnumerable<string> RoomsOfThisSession() =>
        LocalWorkers().Select(w => w.RoomId).Concat(s_lastDiscovery.Keys).Distinct(StringComparer.Ordinal);

    public static IEnumerable<WorkerInfo> Workers(string? roomId)
    {
        var local = LocalWorkers().Select(w => new WorkerInfo
        {
            PeerId = w.PeerId, RoomId = w.RoomId, GpuModel = w.GpuModel, GpuMemoryMB = w.GpuMemoryMB, Status = w.Status,
        });
        var all = s_lastDiscovery.Values.SelectMany(w => w).Concat(local);
        return roomId is null ? all : all.Where(w => string.Equals(w.RoomId, roomId, StringComparison.Ordinal));
    }

    private static IEnumerable<WorkerSession> LocalWorkers()
    {
        var registry = System.Management.Automation.Runspaces.Runspace.DefaultRunspace is { } runspace ? SessionRegistry.Find(runspace) : null;
        return registry?.Services<IWorkerService>().Select(s => s.Session) ?? Enumerable.Empty<WorkerSession>();
    }
}
