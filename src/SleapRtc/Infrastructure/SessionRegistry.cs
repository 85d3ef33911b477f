using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Everything a PowerShell session (runspace) started: servers and workers. Kept per runspace so thread jobs and
/// parallel runspaces never see or stop each other's servers; stopped on Remove-Module or when the runspace closes.
/// </summary>
internal sealed class SessionRegistry
{
    private static readonly ConditionalWeakTable<Runspace, SessionRegistry> s_states = new();
    private readonly object _gate = new();
    private readonly List<IRunningService> _services = new();

    /// <summary>The state of the runspace the calling pipeline runs in.</summary>
    public static SessionRegistry Current
    {
        get
        {
            var runspace = Runspace.DefaultRunspace
                ?? throw new InvalidOperationException("SleapRtc cmdlets must run inside a PowerShell runspace.");
            return s_states.GetValue(runspace, static r =>
            {
                var state = new SessionRegistry();
                r.StateChanged += (_, e) =>
                {
                    if (e.RunspaceStateInfo.State is RunspaceState.Closing or RunspaceState.Closed or RunspaceState.Broken)
                        state.StopAll();
                };
                return state;
            });
        }
    }

    /// <summary>The state of a runspace if it has one, without creating it (module cleanup).</summary>
    public static SessionRegistry? Find(Runspace? runspace) =>
        runspace is not null && s_states.TryGetValue(runspace, out var state) ? state : null;

    public void Add(IRunningService service)
    {
        lock (_gate) _services.Add(service);
    }

    public bool Remove(IRunningService service)
    {
        lock (_gate) return _services.Remove(service);
    }

    public IReadOnlyList<T> Services<T>() where T : IRunningService
    {
        lock (_gate) return _services.OfType<T>().ToList();
    }

    /// <summary>Stops everything this session started; failures are swallowed because nobody is left to report to.</summary>
    public void StopAll()
    {
        List<IRunningService> services;
        lock (_gate)
        {
            services = _services.ToList();
            _services.Clear();
        }
        foreach (var service in services)
        {
            try
            {
                if (!service.StopAsync().Wait(TimeSpan.FromSeconds(10)))
                    continue; // a stuck service must not hang Remove-Module or runspace close
            }
            catch (AggregateException) { }
        }
    }
}

/// <summary>Something a session started that keeps running in the background until stopped.</summary>
internal interface IRunningService
{
    Guid InstanceId { get; }
    Task StopAsync();
}

/// <summary>A worker this session started (Start-SleapWorker).</summary>
internal interface IWorkerService : IRunningService
{
    WorkerSession Session { get; }
}
