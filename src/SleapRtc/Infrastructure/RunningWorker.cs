using SleapRtc.Worker;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>A worker started by Start-SleapWorker in this session.</summary>
internal sealed class RunningWorker : IWorkerService
{
    private readonly WorkerHost _host;

    public RunningWorker(WorkerHost host) => _host = host;

    public WorkerHost Host => _host;
    public Guid InstanceId { get; } = Guid.NewGuid();

    /// <summary>The object Start-SleapWorker returned; the host keeps its Status current.</summary>
    public WorkerSession Session => _host.Session;

    public Task StopAsync() => _host.StopAsync();

    public static IReadOnlyList<RunningWorker> OfThisSession() => SessionRegistry.Current.Services<RunningWorker>();
}
