using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;
using SleapRtc.Worker;
using SleapRtc.Worker.Gpu;

namespace SleapRtc.PowerShell.Completion;

/// <summary>
/// Completes -GpuId with the GPUs nvidia-smi lists (the one given by -NvidiaSmiPath, else SLEAP_RTC_NVIDIA_SMI, else
/// PATH), each with its model and memory as the tooltip, then "all" (one worker per GPU). No nvidia-smi, or one that
/// fails, completes nothing.
/// </summary>
public sealed class GpuIdCompleter : IArgumentCompleter
{
    /// <summary>Tab completion must stay interactive; a hung driver must not freeze the prompt for the probe's 10 s.</summary>
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(3);
    private static readonly IComparer<string> NumericOrder =
        Comparer<string>.Create((a, b) => a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b));

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var typed = fakeBoundParameters.Contains("NvidiaSmiPath") ? fakeBoundParameters["NvidiaSmiPath"]?.ToString() : null;
        // A path is relative to the session's location; a bare command name is looked up on PATH by the probe.
        var nvidiaSmi = string.IsNullOrWhiteSpace(typed) ? null
            : typed!.IndexOfAny(new[] { '/', '\\' }) >= 0 ? Path.Combine(SessionLocation.Current(), typed) : typed;
        var gpus = new SortedDictionary<string, string>(NumericOrder);
        foreach (var gpu in GpuProbe.List(nvidiaSmi, ListTimeout).Gpus)
            gpus[gpu.Index!.Value.ToString(CultureInfo.InvariantCulture)] = $"GPU {gpu.Index}: {gpu.Model} ({gpu.MemoryMB} MB)";
        if (gpus.Count > 0) gpus[WorkerMachine.AllGpus] = $"every GPU of this machine ({gpus.Count}), one worker each";
        return CompletionText.Matching(wordToComplete, gpus);
    }
}
