using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Jobs;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// Which instance runs the job queue of instances sharing Redis: the holder of a lease (<c>sleaprtc:queue:leader</c>,
/// <see cref="LeaseTtl"/>, renewed every <see cref="RenewInterval"/>). The holder loads the queue from the
/// <see cref="RedisJobStore"/> and runs it (<see cref="JobQueueRouter.TakeOver"/>); every instance forwards its queue
/// work on one channel (<c>sleaprtc:queue</c>), which only the holder acts on. A stopping holder writes its queue out
/// and gives the lease up, so another instance takes over within a renew interval; a killed one's lease expires and
/// another takes over within <see cref="LeaseTtl"/> plus a renew interval. An instance that cannot renew (Redis
/// unreachable) stops running the queue at once, before its lease can have passed to another.
/// </summary>
internal sealed class QueueLeadership : IQueueForwarder, IAsyncDisposable
{
    private const string Component = "jobs";
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan RenewInterval = TimeSpan.FromSeconds(1);

    /// <summary>Extends the lease only while this instance holds it (KEYS via the prefix: ARGV[1] prefix, ARGV[2] id, ARGV[3] ttl ms).</summary>
    private const string RenewScript = """
        local key = ARGV[1] .. 'queue:leader'
        if redis.call('GET', key) == ARGV[2] then return redis.call('PEXPIRE', key, ARGV[3]) end
        return 0
        """;

    /// <summary>Gives the lease up only while this instance holds it.</summary>
    private const string ReleaseScript = """
        local key = ARGV[1] .. 'queue:leader'
        if redis.call('GET', key) == ARGV[2] then return redis.call('DEL', key) end
        return 0
        """;

    private readonly RedisBackplane _redis;
    private readonly Func<JobQueue> _loadQueue;
    private readonly ILogSink _log;
    private readonly RedisChannel _channel;
    private readonly CancellationTokenSource _stopping = new();
    private JobQueueRouter? _router;
    private Task _loop = Task.CompletedTask;

    /// <param name="loadQueue">Builds the queue from the shared store (called on each takeover).</param>
    public QueueLeadership(RedisBackplane redis, Func<JobQueue> loadQueue, ILogSink log)
    {
        _redis = redis;
        _loadQueue = loadQueue;
        _log = log;
        _channel = RedisChannel.Literal(redis.Prefix + "queue");
    }

    private RedisKey LeaseKey => _redis.Prefix + "queue:leader";

    /// <summary>True while this instance runs the queue.</summary>
    public bool IsLeader => _router?.Local is not null;

    /// <summary>Subscribes to the queue channel and starts competing for the lease.</summary>
    public void Start(JobQueueRouter router)
    {
        _router = router;
        // One subscription, handled in order: forwarded work runs in the order it was published.
        _redis.Subscriber.Subscribe(_channel).OnMessage(message =>
        {
            if (QueueWork.Parse((byte[])message.Message!) is { } work)
            {
                try { router.Apply(work); }
                catch (SharedStoreUnavailableException) { _log.Write(LogLevel.Warning, Component, $"Queue work ({work.Kind}) dropped: Redis unavailable"); }
            }
        });
        _loop = Task.Run(() => RunAsync(_stopping.Token));
    }

    public bool Forward(QueueWork work) => _redis.Publish(_channel, work.ToUtf8());

    private async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(RenewInterval);
        do
        {
            try { await TickAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is SharedStoreUnavailableException or RedisException)
            {
                if (IsLeader)
                {
                    _log.Write(LogLevel.Warning, Component, "Could not renew the job queue lease (Redis unavailable): no longer running the queue");
                    await StepDownAsync(releaseLease: false).ConfigureAwait(false);
                }
            }
        } while (await WaitAsync(timer, ct).ConfigureAwait(false));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }

    private async Task TickAsync()
    {
        var ttl = (long)LeaseTtl.TotalMilliseconds;
        if (IsLeader)
        {
            var renewed = (long)await _redis.EvalAsync(RenewScript, _redis.InstanceId, ttl).ConfigureAwait(false) == 1;
            if (!renewed)
            {
                _log.Write(LogLevel.Warning, Component, "The job queue lease passed to another instance: no longer running the queue");
                await StepDownAsync(releaseLease: false).ConfigureAwait(false);
            }
            return;
        }
        var acquired = await _redis.RunAsync(db => db.StringSetAsync(LeaseKey, _redis.InstanceId, LeaseTtl, When.NotExists)).ConfigureAwait(false);
        if (!acquired) return;
        var queue = _loadQueue();
        if (_router!.TakeOver(queue) is { } stale) await stale.DisposeAsync().ConfigureAwait(false);
        _log.Write(LogLevel.Information, Component, $"Instance {_redis.InstanceId} runs the job queue now");
    }

    private async Task StepDownAsync(bool releaseLease)
    {
        if (_router?.HandOver() is { } queue) await queue.DisposeAsync().ConfigureAwait(false);
        if (releaseLease) await _redis.EvalAsync(ReleaseScript, _redis.InstanceId).ConfigureAwait(false);
    }

    /// <summary>Writes the queue out and gives the lease up (another instance takes over within a renew interval).</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        try { await _loop.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        // A stop with thousands of peers leaving can keep Redis's replies waiting past the timeout: the lease then
        // simply expires (another instance takes over within its TTL), and the stop goes on.
        try { await _redis.Subscriber.UnsubscribeAsync(_channel).ConfigureAwait(false); }
        catch (Exception e) when (e is RedisException || RedisBackplane.IsUnavailable(e)) { }
        try { await StepDownAsync(releaseLease: true).ConfigureAwait(false); }
        catch (Exception e) when (e is SharedStoreUnavailableException or RedisException || RedisBackplane.IsUnavailable(e)) { }
    }
}

/// <summary>
/// The queue's hand-out numbers in Redis (<c>sleaprtc:queue:assignments</c>), shared by the instances: any instance reads
/// the mark before a worker of its own turns available and forwards it with the news (see <see cref="JobQueue.Counter"/>).
/// </summary>
internal sealed class RedisAssignmentCounter(RedisBackplane redis) : IAssignmentCounter
{
    private RedisKey Key => redis.Prefix + "queue:assignments";

    public long Next() => redis.Run(db => db.StringIncrement(Key));

    public long Current() => redis.Run(db => (long?)db.StringGet(Key) ?? 0);
}
