using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using SleapRtc.Bench.Common;

namespace SleapRtc.Soak;

public sealed class SoakOptions
{
    public int Jobs { get; init; } = 200;
    public int Clients { get; init; } = 5;
    public int Workers { get; init; } = 3;
    /// <summary>Workers stay connected, idle, this long after the last job.</summary>
    public TimeSpan Idle { get; init; } = TimeSpan.FromHours(1);
    /// <summary>The first sample is taken when this many jobs have finished (the warm-up before it is not judged).</summary>
    public int BaselineJob { get; init; } = 20;
    /// <summary>Bound on the managed heap after a full compacting collection, end vs baseline: this fraction plus <see cref="HeapSlackMB"/>.</summary>
    public double MaxHeapGrowth { get; init; } = 0.10;
    /// <summary>A heap of about 1 MB moves by up to a megabyte between samples (pools, caches filled on first use); a leak of
    /// more than about 12 KB a job breaks the bound over the 180 jobs after the baseline.</summary>
    public double HeapSlackMB { get; init; } = 2;
    /// <summary>Bound on RSS after that collection (native memory, jitted code and the GC's committed heap included),
    /// judged only without tiered compilation (<see cref="TieredJit"/> false).</summary>
    public double MaxRssGrowth { get; init; } = 0.10;
    /// <summary>
    /// False: every child runs with DOTNET_TieredCompilation=0, so each method is compiled once, on its first call,
    /// and what RSS gains after the baseline can only be data. With tiered compilation (the default, as in
    /// production) the JIT keeps recompiling methods that turned hot (tier 0, instrumented, tier 1: thousands over
    /// 200 jobs), and their code and profiles grow RSS for as long as new methods turn hot; a leak then shows in the
    /// heap, file descriptors and threads, which are judged either way.
    /// </summary>
    public bool TieredJit { get; init; } = true;
    public int MaxExtraOpenFiles { get; init; } = 10;
    public int MaxExtraThreads { get; init; } = 10;
    /// <summary>The stand-in trainer (tests/fixtures/sleap-nn).</summary>
    public required string Trainer { get; init; }
    public Action<string> Log { get; init; } = _ => { };
    /// <summary>Also log every line the children print (phases, statuses), to see where time goes.</summary>
    public bool Trace { get; init; }
}

public sealed record ProcessFigures(string Name, ResourceSample AtBaseline, ResourceSample AtLastJob, ResourceSample AtEnd);

public sealed class SoakReport
{
    public int JobsSucceeded { get; init; }
    public IReadOnlyList<string> Failures { get; init; } = Array.Empty<string>();
    /// <summary>Connections that failed before any job started and were tried again (not job failures; reported).</summary>
    public IReadOnlyList<string> ConnectRetries { get; init; } = Array.Empty<string>();
    public IReadOnlyList<ProcessFigures> Processes { get; init; } = Array.Empty<ProcessFigures>();
    /// <summary>Job or output folders left behind after the workers stopped.</summary>
    public IReadOnlyList<string> LeftOver { get; init; } = Array.Empty<string>();
    public IReadOnlyList<string> BoundViolations { get; init; } = Array.Empty<string>();
    public TimeSpan JobsDuration { get; init; }
    public double JobSecondsP50 { get; init; }
    public double JobSecondsMax { get; init; }
    public bool Passed => Failures.Count == 0 && LeftOver.Count == 0 && BoundViolations.Count == 0;
}

/// <summary>
/// The soak: a signaling server, workers and clients each in their own process (this program in its child
/// modes), jobs back to back until the count is reached, then an idle period with the workers connected.
/// Server and worker RSS, open file descriptors and threads are sampled when the baseline job finished, after the
/// last job and at the end of the idle period; the end must stay within the bounds of the baseline.
/// </summary>
public static class SoakRun
{
    public static async Task<SoakReport> RunAsync(SoakOptions options, CancellationToken cancellationToken = default)
    {
        var root = Path.Combine(Path.GetTempPath(), "sleaprtc-soak-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        Directory.CreateDirectory(root);
        var children = new List<ChildProcess>();
        try
        {
            var package = BuildPackage(root);
            var server = Start(options, children, "server", null, "server");
            var parts = server.Ready.Split(' ');
            var (url, roomId, token) = ($"ws://127.0.0.1:{parts[0]}", parts[1], parts[2]);
            var trainerEnvironment = new Dictionary<string, string> { ["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = "0", ["SLEAP_NN_STANDIN_EPOCHS"] = "2" };
            var workers = Enumerable.Range(1, options.Workers)
                .Select(i => Start(options, children, "worker " + i, trainerEnvironment, "worker", url, roomId, token, Path.Combine(root, "worker-" + i), options.Trainer))
                .ToList();
            options.Log($"server pid {server.Process.Id}, {workers.Count} workers, {options.Clients} clients, {options.Jobs} jobs");
            var measured = new List<ChildProcess> { server };
            measured.AddRange(workers);

            var finished = 0;
            var failures = new List<string>();
            var connectRetries = new List<string>();
            var durations = new List<double>();
            var baseline = new TaskCompletionSource<ResourceSample[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            var clock = Stopwatch.StartNew();
            var perClient = Enumerable.Range(0, options.Clients).Select(i => options.Jobs / options.Clients + (i < options.Jobs % options.Clients ? 1 : 0)).ToArray();
            var clients = new List<ChildProcess>();
            for (var i = 0; i < options.Clients; i++)
            {
                var client = Start(options, children, "client " + (i + 1), null, "client", url, roomId, token, package, Path.Combine(root, "client-" + (i + 1)),
                    perClient[i].ToString(CultureInfo.InvariantCulture));
                client.Line += line =>
                {
                    if (line.StartsWith("RETRY ", StringComparison.Ordinal)) lock (failures) connectRetries.Add(line.Substring(6));
                    if (!line.StartsWith("JOB ", StringComparison.Ordinal)) return;
                    int count;
                    lock (failures)
                    {
                        count = ++finished;
                        if (line.StartsWith("JOB ok ", StringComparison.Ordinal)) durations.Add(double.Parse(line.Substring(7), CultureInfo.InvariantCulture));
                        else failures.Add(line.Substring(4));
                    }
                    if (count % 20 == 0) options.Log($"{count} jobs after {clock.Elapsed.TotalSeconds:0} s");
                    // Sampled off this line reader: a sample waits for each process's collection to be answered.
                    if (count == options.BaselineJob) _ = Task.Run(() => baseline.TrySetResult(SampleAndLog(options, measured, $"at job {count}")));
                };
                clients.Add(client);
            }
            foreach (var client in clients) client.WaitFor("DONE", TimeSpan.FromSeconds(30 + options.Jobs * 10));
            var jobsDuration = clock.Elapsed;
            // One sample at a time per process: the baseline's must have been answered (it is, unless the run had fewer jobs).
            if (finished >= options.BaselineJob) await baseline.Task.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(false);
            var atLastJob = SampleAndLog(options, measured, "after the last job");
            foreach (var client in clients) client.Stop(TimeSpan.FromSeconds(20));
            options.Log($"{options.Jobs} jobs in {jobsDuration.TotalSeconds:0.0} s ({finished - failures.Count} succeeded, {failures.Count} failed); idle for {options.Idle}");

            // A long idle is sampled every few minutes on the way, so its figures show up while it lasts.
            var idleClock = Stopwatch.StartNew();
            while (idleClock.Elapsed + IdleSampleInterval < options.Idle)
            {
                await Task.Delay(IdleSampleInterval, cancellationToken).ConfigureAwait(false);
                SampleAndLog(options, measured, $"after {idleClock.Elapsed.TotalMinutes:0} min idle");
            }
            var rest = options.Idle - idleClock.Elapsed;
            if (rest > TimeSpan.Zero) await Task.Delay(rest, cancellationToken).ConfigureAwait(false);
            var atEnd = SampleAndLog(options, measured, "at the end");
            var atBaseline = baseline.Task.IsCompleted ? baseline.Task.Result : atLastJob;

            var figures = measured.Select((c, i) => new ProcessFigures(c.Name, atBaseline[i], atLastJob[i], atEnd[i])).ToList();
            var violations = new List<string>();
            foreach (var f in figures)
            {
                // What a process holds is its managed heap after a full collection; RSS as found also counts what the
                // collector had not collected yet and the heap it keeps committed for the next allocations.
                // A baseline read below zero (seen once under load: the counters of a collection in flight) counts as zero.
                if (f.AtEnd.ManagedHeapMB > Math.Max(0, f.AtBaseline.ManagedHeapMB) * (1 + options.MaxHeapGrowth) + options.HeapSlackMB)
                    violations.Add($"{f.Name}: managed heap after a full GC {f.AtBaseline.ManagedHeapMB:0.00} -> {f.AtEnd.ManagedHeapMB:0.00} MB (more than +{options.MaxHeapGrowth:P0} + {options.HeapSlackMB} MB)");
                if (!options.TieredJit && f.AtEnd.RssAfterGcMB > f.AtBaseline.RssAfterGcMB * (1 + options.MaxRssGrowth))
                    violations.Add($"{f.Name}: RSS after a full GC {f.AtBaseline.RssAfterGcMB:0.0} -> {f.AtEnd.RssAfterGcMB:0.0} MB (more than +{options.MaxRssGrowth:P0})");
                if (f.AtEnd.OpenFiles > f.AtBaseline.OpenFiles + options.MaxExtraOpenFiles)
                    violations.Add($"{f.Name}: open files {f.AtBaseline.OpenFiles} -> {f.AtEnd.OpenFiles} (more than +{options.MaxExtraOpenFiles})");
                if (f.AtEnd.Threads > f.AtBaseline.Threads + options.MaxExtraThreads)
                    violations.Add($"{f.Name}: threads {f.AtBaseline.Threads} -> {f.AtEnd.Threads} (more than +{options.MaxExtraThreads})");
            }

            // Results are kept for collection a while (ChildModes.ResultRetention): only what outlives that is left over.
            var keptFor = ChildModes.ResultRetention + TimeSpan.FromSeconds(3) - options.Idle;
            if (keptFor > TimeSpan.Zero) await Task.Delay(keptFor, cancellationToken).ConfigureAwait(false);
            foreach (var worker in workers) worker.Stop(TimeSpan.FromSeconds(30));
            var leftOver = Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
                .Where(p => !p.StartsWith(Path.Combine(root, "package"), StringComparison.Ordinal))
                .Where(p => !IsEmptyFolderOfTheRun(root, p))
                .ToList();
            durations.Sort();
            return new SoakReport
            {
                JobsSucceeded = durations.Count,
                Failures = failures.ToArray(),
                ConnectRetries = connectRetries.ToArray(),
                Processes = figures,
                LeftOver = leftOver,
                BoundViolations = violations,
                JobsDuration = jobsDuration,
                JobSecondsP50 = durations.Count == 0 ? 0 : durations[durations.Count / 2],
                JobSecondsMax = durations.Count == 0 ? 0 : durations[^1],
            };
        }
        finally
        {
            foreach (var child in children) child.Dispose();
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static readonly TimeSpan IdleSampleInterval = TimeSpan.FromMinutes(5);

    private static ResourceSample[] SampleAndLog(SoakOptions options, IReadOnlyList<ChildProcess> measured, string when)
    {
        var samples = measured.Select(c => c.Sample()).ToArray();
        for (var i = 0; i < samples.Length; i++) options.Log($"{when}: {measured[i].Name}: {samples[i]}");
        return samples;
    }

    /// <summary>The report as the README's Performance table has it.</summary>
    public static string Format(SoakReport report, SoakOptions options)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"jobs: {report.JobsSucceeded} succeeded, {report.Failures.Count} failed, in {report.JobsDuration.TotalSeconds:0.0} s (per job p50 {report.JobSecondsP50:0.00} s, max {report.JobSecondsMax:0.00} s, busy-retries included)");
        var rssBound = options.TieredJit
            ? "RSS reported (tiered JIT on: not judged)"
            : string.Create(CultureInfo.InvariantCulture, $"RSS <= +{options.MaxRssGrowth:P0} (tiered JIT off)");
        text.AppendLine(CultureInfo.InvariantCulture, $"bounds, end vs job {options.BaselineJob}, after a full compacting GC: managed heap <= +{options.MaxHeapGrowth:P0} + {options.HeapSlackMB} MB, {rssBound}; open files <= +{options.MaxExtraOpenFiles}, threads <= +{options.MaxExtraThreads}");
        text.AppendLine("| process | at job " + options.BaselineJob + " | after the last job | after idle |");
        text.AppendLine("|---|---|---|---|");
        foreach (var p in report.Processes) text.AppendLine($"| {p.Name} | {p.AtBaseline} | {p.AtLastJob} | {p.AtEnd} |");
        text.AppendLine(CultureInfo.InvariantCulture, $"connections retried before a job started: {report.ConnectRetries.Count}");
        foreach (var r in report.ConnectRetries.Take(5)) text.AppendLine("retried: " + r);
        foreach (var f in report.Failures.Take(10)) text.AppendLine("failed: " + f.Replace('\r', ' '));
        foreach (var v in report.BoundViolations) text.AppendLine("out of bounds: " + v);
        foreach (var l in report.LeftOver.Take(10)) text.AppendLine("left over: " + l);
        text.AppendLine(report.Passed ? "PASS" : "FAIL");
        return text.ToString();
    }

    private static ChildProcess Start(SoakOptions options, List<ChildProcess> children, string name, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var variables = environment?.ToDictionary(p => p.Key, p => p.Value) ?? new Dictionary<string, string>();
        if (!options.TieredJit) variables["DOTNET_TieredCompilation"] = "0";
        var child = SoakChildProcess.Start(name, variables, arguments);
        if (options.Trace) child.Line += line => options.Log($"{name}: {line}");
        children.Add(child);
        return child;
    }

    // The run's own folders (worker working directories, client output roots) may stay, empty.
    private static bool IsEmptyFolderOfTheRun(string root, string path) =>
        Directory.Exists(path) && Path.GetDirectoryName(path) == root && !Directory.EnumerateFileSystemEntries(path).Any();

    /// <summary>A small package shaped like SLEAP's export: one config, a 64 KiB labels file.</summary>
    private static string BuildPackage(string root)
    {
        var folder = Path.Combine(root, "package");
        Directory.CreateDirectory(folder);
        var zipPath = Path.Combine(folder, "soak.zip");
        using var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create);
        void Write(string name, byte[] content)
        {
            using var s = zip.CreateEntry("soak/" + name, CompressionLevel.Fastest).Open();
            s.Write(content);
        }
        Write("centroid.json", Encoding.UTF8.GetBytes("{\"trainer_config\": {\"max_epochs\": 2}}"));
        Write("train-script.sh", Encoding.UTF8.GetBytes("#!/bin/bash\nsleap-nn train --config-name centroid.json --config-dir .\n"));
        var labels = new byte[64 * 1024];
        new Random(7).NextBytes(labels);
        Write("labels.v001.pkg.slp", labels);
        return zipPath;
    }
}
