using SleapRtc.Soak;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Job.Tests;

/// <summary>The short form of bench/SoakBench (with --no-tiered-jit): 40 jobs from 5 client processes on 3 worker processes,
/// then a short idle; every process is sampled after a full compacting GC at job 10 and at the end.</summary>
[Collection(nameof(ChildProcessCollection))]
public sealed class SoakTests
{
    private readonly ITestOutputHelper _output;

    public SoakTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Forty_jobs_across_three_worker_processes_keep_resources_flat_and_leave_nothing()
    {
        var options = new SoakOptions
        {
            Jobs = 40, Clients = 5, Workers = 3, Idle = TimeSpan.FromSeconds(5), BaselineJob = 10, Trainer = Fixtures.SleapNn,
            Log = _output.WriteLine,
            // Each method compiled once: RSS can then only grow with data, and is bounded after a full GC besides the
            // managed heap (+10 % + 2 MB, the leak check), open files and threads (+10 each). The RSS bound is +20 % here:
            // since the resumable transfers (issue 16) a worker's GC keeps ~9 MB more committed between job 10 and 40
            // (84 -> 97 MB on a quiet box, managed heap flat at ~1.2 MB); SoakBench keeps the +10 % default for long runs.
            TieredJit = false,
            MaxRssGrowth = 0.20,
        };
        var report = await SoakRun.RunAsync(options);
        _output.WriteLine(SoakRun.Format(report, options));

        Assert.Empty(report.Failures);
        Assert.Equal(40, report.JobsSucceeded);
        Assert.Empty(report.LeftOver);
        Assert.Empty(report.BoundViolations);
        Assert.Equal(4, report.Processes.Count);
        // Every sample was taken after the process's own full collection (it answered with its heap figures).
        Assert.All(report.Processes, p => Assert.True(p.AtBaseline.ManagedHeapMB > 0 && p.AtEnd.ManagedHeapMB > 0 && p.AtEnd.RssAfterGcMB > 0));
    }
}
