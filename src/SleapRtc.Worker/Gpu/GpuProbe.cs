using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Gpu;

/// <summary>What the worker advertises about its accelerator.</summary>
public sealed record GpuInfo(int? Index, string Model, long MemoryMB, string CudaVersion, string? DriverVersion)
{
    public static readonly GpuInfo Cpu = new(null, "CPU", 0, "N/A", null);
    public bool IsGpu => Index is not null;
}

/// <summary>The GPUs nvidia-smi lists, or why there are none to list.</summary>
/// <param name="Executable">The nvidia-smi that was run; null when none was found.</param>
/// <param name="Problem">Why no GPU could be read (not found, failed, timed out, listed none); null when <paramref name="Gpus"/> is not empty.</param>
public sealed record GpuListing(string? Executable, IReadOnlyList<GpuInfo> Gpus, string? Problem);

/// <summary>The GPU a worker advertises, and the warning to show when it fell back to the CPU description.</summary>
public sealed record GpuProbeResult(GpuInfo Gpu, string? Warning);

/// <summary>
/// Reads GPUs from nvidia-smi (path: option, SLEAP_RTC_NVIDIA_SMI, PATH). No nvidia-smi, or one that fails, gives the
/// CPU description (GpuModel "CPU", 0 MB) as classic workers report without CUDA, with a warning that says what was
/// tried; a GPU id nvidia-smi does not list is an error (<see cref="GpuNotFoundException"/>), never a silent CPU worker.
/// </summary>
public static class GpuProbe
{
    public const string EnvironmentVariable = "SLEAP_RTC_NVIDIA_SMI";
    public const string QueryArguments = "--query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits";
    private const string CommandName = "nvidia-smi";
    private static readonly Regex CudaVersionPattern = new(@"CUDA Version:\s*([0-9][0-9.]*)", RegexOptions.CultureInvariant);

    /// <summary>The GPU <paramref name="gpuId"/> with its CUDA version, or the CPU description and a warning.</summary>
    /// <exception cref="GpuNotFoundException">nvidia-smi lists GPUs, but not <paramref name="gpuId"/>.</exception>
    public static GpuProbeResult Probe(string? nvidiaSmiPath, int gpuId, TimeSpan timeout)
    {
        var listing = List(nvidiaSmiPath, timeout);
        if (listing.Problem is not null)
            return new GpuProbeResult(GpuInfo.Cpu, $"{listing.Problem}; this worker advertises CPU with 0 MB of GPU memory. Install the NVIDIA driver, or pass -NvidiaSmiPath (or set {EnvironmentVariable}) to a working nvidia-smi.");
        var gpu = listing.Gpus.FirstOrDefault(g => g.Index == gpuId)
            ?? throw new GpuNotFoundException(gpuId, listing.Executable!, listing.Gpus);
        var banner = Run(listing.Executable!, Array.Empty<string>(), timeout);
        return new GpuProbeResult(gpu with { CudaVersion = banner.Output is null ? "N/A" : ParseCudaVersion(banner.Output) ?? "N/A" }, null);
    }

    /// <summary>Every GPU nvidia-smi lists (for -GpuId completion and the probe).</summary>
    public static GpuListing List(string? nvidiaSmiPath, TimeSpan timeout)
    {
        var search = ExecutableLocator.Search(nvidiaSmiPath, EnvironmentVariable, CommandName);
        if (search.Path is null) return new GpuListing(null, Array.Empty<GpuInfo>(), $"nvidia-smi was not found (tried {search.Tried})");
        var query = Run(search.Path, QueryArguments.Split(' '), timeout);
        if (query.Output is null) return new GpuListing(search.Path, Array.Empty<GpuInfo>(), $"nvidia-smi ('{search.Path}') {query.Failure}");
        var gpus = ParseQueryOutput(query.Output);
        return gpus.Count == 0
            ? new GpuListing(search.Path, gpus, $"nvidia-smi ('{search.Path}') listed no GPUs")
            : new GpuListing(search.Path, gpus, null);
    }

    /// <summary>Parses "index, name, memory.total [MiB], driver_version" lines.</summary>
    public static IReadOnlyList<GpuInfo> ParseQueryOutput(string csv)
    {
        var result = new List<GpuInfo>();
        foreach (var rawLine in csv.Split('\n'))
        {
            var fields = rawLine.Trim().Split(',').Select(f => f.Trim()).ToArray();
            if (fields.Length < 3) continue;
            if (!int.TryParse(fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var index)) continue;
            var memoryText = fields[2].Replace("MiB", "", StringComparison.OrdinalIgnoreCase).Trim();
            if (!long.TryParse(memoryText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var memory)) memory = 0;
            result.Add(new GpuInfo(index, fields[1], memory, "N/A", fields.Length > 3 ? fields[3] : null));
        }
        return result;
    }

    public static string? ParseCudaVersion(string nvidiaSmiBanner) =>
        CudaVersionPattern.Match(nvidiaSmiBanner) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The standard output of a successful run, or what went wrong ("exited with code 9: ...").</summary>
    private readonly record struct RunOutcome(string? Output, string? Failure);

    private static RunOutcome Run(string executable, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(start);
            if (process is null) return new(null, "could not be started");
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit((int)timeout.TotalMilliseconds))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                return new(null, $"did not answer within {timeout.TotalSeconds:0.#} s");
            }
            if (!output.Wait(timeout)) return new(null, "did not finish writing its output");
            if (process.ExitCode == 0) return new(output.Result, null);
            // nvidia-smi says why on stdout ("NVIDIA-SMI has failed because...") or stderr; the first line is enough.
            var said = FirstLine(error.Wait(timeout) ? error.Result : "") ?? FirstLine(output.Result);
            return new(null, $"exited with code {process.ExitCode}{(said is null ? "" : ": " + said)}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new(null, "could not be started: " + e.Message);
        }
    }

    private static string? FirstLine(string text) =>
        text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0);
}

/// <summary>-GpuId names a GPU that nvidia-smi does not list.</summary>
public sealed class GpuNotFoundException : SleapRtcException
{
    public GpuNotFoundException(int gpuId, string nvidiaSmi, IReadOnlyList<GpuInfo> available)
        : base("GpuNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"GPU {gpuId} does not exist: nvidia-smi ('{nvidiaSmi}') lists {Describe(available)}.",
            $"Pass -GpuId with one of {string.Join(", ", available.Select(g => g.Index))} (Tab completes them), or leave it out for GPU 0.")
    {
        GpuId = gpuId;
        Available = available;
    }

    /// <summary>Several GPUs were asked for (-GpuId 0,1) on a machine where nvidia-smi lists none.</summary>
    public GpuNotFoundException(IReadOnlyList<int> gpuIds, string problem)
        : base("GpuNotFound", SleapRtcErrorKind.ObjectNotFound,
            $"GPUs {string.Join(", ", gpuIds)} were asked for, but {problem}.",
            "Install the NVIDIA driver or pass -NvidiaSmiPath to a working nvidia-smi; on a machine without GPUs start one worker (leave -GpuId out, or -GpuId all).")
    {
        GpuId = gpuIds.FirstOrDefault();
        Available = Array.Empty<GpuInfo>();
    }

    public int GpuId { get; }
    public IReadOnlyList<GpuInfo> Available { get; }

    private static string Describe(IReadOnlyList<GpuInfo> gpus) =>
        string.Join(", ", gpus.Select(g => $"GPU {g.Index} ({g.Model}, {g.MemoryMB} MB)"));
}
