using System.Globalization;
using SleapRtc.Soak;

// Soak: jobs back to back from client processes across worker processes (stand-in trainer, 0 s epochs, small
// package), then an idle period with the workers connected; server and worker RSS, open files and threads must
// stay flat (end vs the baseline job), no job may fail and no job folder may be left.
//   dotnet run -c Release --project bench/SoakBench -- [--jobs 200] [--clients 5] [--workers 3] [--idle-minutes 60] [--no-tiered-jit]
// --no-tiered-jit runs the children with DOTNET_TieredCompilation=0 and then also bounds RSS (see SoakOptions.TieredJit).
if (ChildModes.IsChildMode(args)) return await ChildModes.RunAsync(args);

int jobs = 200, clients = 5, workers = 3;
var idle = TimeSpan.FromHours(1);
var trace = false;
var tieredJit = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--jobs": jobs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--clients": clients = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--workers": workers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--idle-minutes": idle = TimeSpan.FromMinutes(double.Parse(args[++i], CultureInfo.InvariantCulture)); break;
        case "--trace": trace = true; break;
        case "--no-tiered-jit": tieredJit = false; break;
        default:
            Console.Error.WriteLine("usage: SoakBench [--jobs 200] [--clients 5] [--workers 3] [--idle-minutes 60] [--no-tiered-jit] [--trace]");
            return 2;
    }
}

var options = new SoakOptions
{
    Jobs = jobs, Clients = clients, Workers = workers, Idle = idle, Trainer = Path.Combine(FindRepoRoot(), "tests", "fixtures", "sleap-nn"),
    Log = line => Console.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}"), Trace = trace, TieredJit = tieredJit,
};
Console.WriteLine($"SoakBench: {jobs} jobs, {clients} clients, {workers} workers, idle {idle}, tiered JIT {(tieredJit ? "on" : "off")}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}");
var report = await SoakRun.RunAsync(options);
Console.Write(SoakRun.Format(report, options));
return report.Passed ? 0 : 1;

static string FindRepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("SleapRtc.sln not found above the bench binaries.");
}
