using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Everything a PowerShell session (runspace) started or learned: servers and workers, the rooms it created and the
/// workers its discoveries returned (with their room tokens). Kept per runspace so thread jobs and parallel runspaces
/// never see each other's servers or tokens; services are stopped on Remove-Module or when the runspace closes.
/// </summary>
internal sealed class SessionRegistry
{
    private static readonly ConditionalWeakTable<Runspace, SessionRegistry> s_states = new();
    private readonly object _gate = new();
    private readonly List<IRunningService> _services = new();
    private readonly List<string> _createdRooms = new();
    private readonly Dictionary<string, WorkerInfo[]> _discoveries = new(StringComparer.Ordinal);

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

    /// <summary>A room New-SleapRoom or Start-SleapWorker created in this session (the default room of later commands).</summary>
    public void RememberCreatedRoom(string roomId)
    {
        lock (_gate)
        {
            _createdRooms.Remove(roomId);
            _createdRooms.Add(roomId);
        }
    }

    public void ForgetRoom(string roomId)
    {
        lock (_gate)
        {
            _createdRooms.Remove(roomId);
            _discoveries.Remove(roomId);
        }
    }

    /// <summary>The room most recently created in this session, if any.</summary>
    public string? LastCreatedRoom
    {
        get { lock (_gate) return _createdRooms.LastOrDefault(); }
    }

    /// <summary>Remembers what a discovery returned so tab completion can offer it without a network round trip.</summary>
    public void RememberDiscovery(string roomId, IEnumerable<WorkerInfo> workers)
    {
        var snapshot = workers.ToArray();
        lock (_gate) _discoveries[roomId] = snapshot;
    }

    public IReadOnlyDictionary<string, WorkerInfo[]> Discoveries()
    {
        lock (_gate) return new Dictionary<string, WorkerInfo[]>(_discoveries, StringComparer.Ordinal);
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
