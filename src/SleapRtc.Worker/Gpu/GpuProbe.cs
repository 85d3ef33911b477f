using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Gpu;

/// <summary>What the worker advertises about its accelerator.</summary>
public sealed record GpuInfo(int? Index, string Model, long MemoryMB, string CudaVersion, string? DriverVersion)
{
    public static readonly GpuInfo Cpu = new(null, "CPU", 0, "N/A", null);
    public bool IsGpu => Index is not null;
}

/// <summary>
/// Reads GPUs from nvidia-smi (path: option, SLEAP_RTC_NVIDIA_SMI, PATH). No nvidia-smi, a failure, or an
/// unknown GPU id gives the CPU description (GpuModel "CPU", 0 MB), as classic workers report without CUDA.
/// </summary>
public static class GpuProbe
{
    public const string EnvironmentVariable = "SLEAP_RTC_NVIDIA_SMI";
    public const string QueryArguments = "--query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits";
    private static readonly Regex CudaVersionPattern = new(@"CUDA Version:\s*([0-9][0-9.]*)", RegexOptions.CultureInvariant);

    public static GpuInfo Probe(string? nvidiaSmiPath, int gpuId, TimeSpan timeout)
    {
        var executable = ExecutableLocator.Find(nvidiaSmiPath, EnvironmentVariable, "nvidia-smi");
        if (executable is null) return GpuInfo.Cpu;
        var csv = Run(executable, QueryArguments.Split(' '), timeout);
        if (csv is null) return GpuInfo.Cpu;
        var gpu = ParseQueryOutput(csv).FirstOrDefault(g => g.Index == gpuId);
        if (gpu is null) return GpuInfo.Cpu;
        var banner = Run(executable, Array.Empty<string>(), timeout);
        return gpu with { CudaVersion = banner is null ? "N/A" : ParseCudaVersion(banner) ?? "N/A" };
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

    private static string? Run(string executable, IEnumerable<string> arguments, TimeSpan timeout)
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
            if (process is null) return null;
            var output = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit((int)timeout.TotalMilliseconds))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                return null;
            }
            return process.ExitCode == 0 && output.Wait(timeout) ? output.Result : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
