using System.Globalization;
using SleapRtc.Protocol.Logging;
using SleapRtc.Worker.Gpu;

namespace SleapRtc.Worker;

/// <summary>Which GPUs a machine's workers run on, and what to tell the user about the choice.</summary>
/// <param name="Warning">Set when "all" found no GPU and one CPU worker starts instead.</param>
public sealed record GpuPlan(IReadOnlyList<int> GpuIds, string? Warning);

/// <summary>
/// Start-SleapWorker -GpuId all (or a list): one worker per GPU in one process, each with its own signaling connection,
/// peer id and WorkerInfo, all advertising the same machine_id (the host name) so views and the monitor group them.
/// The first worker joins (or creates) the room; the others join the same room.
/// </summary>
public static class WorkerMachine
{
    public const string AllGpus = "all";

    /// <summary>
    /// The GPU ids for a -GpuId value: "all" is every GPU nvidia-smi lists (none: one CPU worker, with a warning); numbers are
    /// taken as given, checked against nvidia-smi up front so no worker starts when one id is wrong. One number keeps the
    /// single-worker behaviour (no GPU: a CPU worker with the probe's warning).
    /// </summary>
    /// <exception cref="ArgumentException">A value is neither "all" nor a GPU index.</exception>
    /// <exception cref="GpuNotFoundException">An id nvidia-smi does not list, or several ids on a machine without GPUs.</exception>
    public static GpuPlan Plan(IReadOnlyList<string> gpuIds, string? nvidiaSmiPath, TimeSpan probeTimeout)
    {
        if (gpuIds.Count == 0) return new GpuPlan(new[] { 0 }, null);
        if (gpuIds.Any(g => string.Equals(g?.Trim(), AllGpus, StringComparison.OrdinalIgnoreCase)))
        {
            if (gpuIds.Count > 1) throw new ArgumentException($"-GpuId {AllGpus} cannot be combined with GPU numbers.");
            var all = GpuProbe.List(nvidiaSmiPath, probeTimeout);
            return all.Problem is null
                ? new GpuPlan(all.Gpus.Select(g => g.Index ?? 0).Distinct().ToArray(), null)
                : new GpuPlan(new[] { 0 }, $"-GpuId {AllGpus}: {all.Problem}; one worker starts on the CPU.");
        }
        var ids = gpuIds.Select(Parse).Distinct().ToArray();
        if (ids.Length == 1) return new GpuPlan(ids, null);
        var listing = GpuProbe.List(nvidiaSmiPath, probeTimeout);
        if (listing.Problem is not null) throw new GpuNotFoundException(ids, listing.Problem);
        foreach (var id in ids)
            if (listing.Gpus.All(g => g.Index != id)) throw new GpuNotFoundException(id, listing.Executable!, listing.Gpus);
        return new GpuPlan(ids, null);
    }

    /// <summary>Starts one worker per id of <paramref name="gpuIds"/>; if one fails, those already started are stopped.</summary>
    public static async Task<IReadOnlyList<WorkerHost>> StartAsync(WorkerOptions options, IReadOnlyList<int> gpuIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var hosts = new List<WorkerHost>();
        try
        {
            foreach (var id in gpuIds)
            {
                var first = hosts.FirstOrDefault();
                var perGpu = first is null ? options with { GpuId = id } : options with { GpuId = id, RoomId = first.Session.RoomId, Token = first.Session.Token };
                hosts.Add(await WorkerHost.StartAsync(perGpu, cancellationToken).ConfigureAwait(false));
            }
            if (hosts.Count > 1)
                options.Log.Write(LogLevel.Information, "worker", $"Machine {options.MachineId}: {hosts.Count} workers on GPUs {string.Join(", ", gpuIds)}");
            return hosts;
        }
        catch
        {
            await Task.WhenAll(hosts.Select(h => h.StopAsync())).ConfigureAwait(false);
            throw;
        }
    }

    private static int Parse(string value) =>
        int.TryParse(value?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id <= 64
            ? id
            : throw new ArgumentException($"-GpuId '{value}' is not a GPU index (0-64) or '{AllGpus}'.");
}
