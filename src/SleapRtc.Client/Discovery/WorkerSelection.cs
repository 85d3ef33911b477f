using System.Globalization;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Discovery;

/// <summary>
/// The host side of interactive selection (the cmdlet implements it with $Host.UI). Lines are shown as
/// written; <see cref="ReadLineAsync"/> returns null when the host cannot answer or the time is up, and ends
/// promptly (OperationCanceledException) when <paramref name="cancellationToken"/> is cancelled (Ctrl+C).
/// </summary>
public interface IWorkerChooser
{
    void WriteLine(string line);
    Task<string?> ReadLineAsync(string prompt, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>Picks one worker: automatically (most GPU memory), by id, or by asking the user.</summary>
public static class WorkerSelection
{
    public static readonly TimeSpan DefaultPromptTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Most GPU memory first; ties keep discovery (registration) order, as classic does.</summary>
    public static IReadOnlyList<WorkerInfo> RankByGpuMemory(IEnumerable<WorkerInfo> workers) =>
        workers.Select((w, i) => (w, i)).OrderByDescending(p => p.w.GpuMemoryMB).ThenBy(p => p.i).Select(p => p.w).ToList();

    public static WorkerInfo SelectAuto(IReadOnlyList<WorkerInfo> workers, string roomId) =>
        RankByGpuMemory(workers).FirstOrDefault() ?? throw NoWorkersAvailableException.EmptyRoom(roomId);

    public static WorkerInfo SelectById(IReadOnlyList<WorkerInfo> workers, string workerId, string roomId) =>
        workers.FirstOrDefault(w => w.PeerId == workerId) ?? throw new WorkerNotFoundException(workerId, roomId);

    /// <summary>
    /// Numbered list with GPU model, memory, status and hostname; a number selects, 'r' refreshes through
    /// <paramref name="refresh"/>. Throws <see cref="SelectionTimeoutException"/> when no answer comes in time.
    /// </summary>
    public static async Task<WorkerInfo> SelectInteractiveAsync(IWorkerChooser chooser, IReadOnlyList<WorkerInfo> workers,
        Func<CancellationToken, Task<IReadOnlyList<WorkerInfo>>> refresh, TimeSpan timeout, string roomId, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var current = workers;
        WriteList(chooser, current);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new SelectionTimeoutException(timeout);
            var prompt = current.Count == 0
                ? "No workers yet. Enter 'r' to refresh"
                : $"Select worker (1{(current.Count > 1 ? "-" + current.Count.ToString(CultureInfo.InvariantCulture) : "")}) or 'r' to refresh";
            var answer = await chooser.ReadLineAsync(prompt, left, cancellationToken).ConfigureAwait(false);
            if (answer is null) throw new SelectionTimeoutException(timeout);
            answer = answer.Trim().ToLowerInvariant();
            if (answer is "r" or "refresh")
            {
                chooser.WriteLine("Refreshing worker list...");
                current = await refresh(cancellationToken).ConfigureAwait(false);
                WriteList(chooser, current);
                continue;
            }
            if (int.TryParse(answer, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= current.Count)
            {
                var chosen = current[n - 1];
                chooser.WriteLine($"Selected worker: {chosen.PeerId} ({chosen.GpuModel}, {chosen.GpuMemoryMB} MB)");
                return chosen;
            }
            chooser.WriteLine(current.Count == 0
                ? "Invalid input. Enter 'r' to refresh the list."
                : $"Invalid selection. Enter a number between 1 and {current.Count}, or 'r' to refresh.");
        }
    }

    private static void WriteList(IWorkerChooser chooser, IReadOnlyList<WorkerInfo> workers)
    {
        chooser.WriteLine(workers.Count == 1 ? "Found 1 available worker:" : $"Found {workers.Count} available workers:");
        for (var i = 0; i < workers.Count; i++)
        {
            var w = workers[i];
            chooser.WriteLine("");
            chooser.WriteLine($"{i + 1}. Worker {w.PeerId}");
            chooser.WriteLine($"   GPU: {w.GpuModel} ({w.GpuMemoryMB} MB)");
            chooser.WriteLine($"   Status: {w.Status}");
            chooser.WriteLine($"   Hostname: {w.Hostname ?? "unknown"}");
        }
        chooser.WriteLine("");
    }
}
