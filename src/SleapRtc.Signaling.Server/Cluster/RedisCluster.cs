using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// Everything an instance shares with the others through Redis (README.md in this folder): the room store, the peer
/// registry, peer-id ownership and the bus. It runs the presence heartbeat (which also reaps dead instances), notices
/// when Redis lost its data or this instance's events (and repairs both), and reports health for /health.
/// </summary>
internal sealed class RedisCluster : IAsyncDisposable
{
    private const string Component = "cluster";

    private readonly RedisBackplane _redis;
    private readonly ILogSink _log;
    private readonly TimeSpan _heartbeat;
    private readonly TimeSpan _presenceTtl;
    private readonly TimeSpan _resumeGrace;
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _proposedEpoch = Guid.NewGuid().ToString("N");
    private Task _loop = Task.CompletedTask;
    private string? _epoch;
    private volatile bool _eventsMayBeMissed;
    private long _lastHeartbeatTicks;
    private int _unavailableLogged;

    private RedisCluster(RedisBackplane redis, ILogSink log, TimeSpan heartbeat, TimeSpan presenceTtl, TimeSpan resumeGrace)
    {
        _redis = redis;
        _log = log;
        _heartbeat = heartbeat;
        _presenceTtl = presenceTtl;
        _resumeGrace = resumeGrace;
        Rooms = new RedisRoomStore(redis);
        Peers = new RedisPeerRegistry(redis) { IsHealthy = () => IsHealthy };
        PeerIds = new RedisPeerIdBindings(redis, resumeGrace);
        Peers.OrphanRemoved = PeerIds.ReleaseLost;
        redis.Multiplexer.ConnectionRestored += (_, _) => _eventsMayBeMissed = true;
    }

    public RedisRoomStore Rooms { get; }
    public RedisPeerRegistry Peers { get; }
    public RedisPeerIdBindings PeerIds { get; }
    public string InstanceId => _redis.InstanceId;

    /// <summary>The connection itself, for what else instances share through Redis (the job queue's lease and records).</summary>
    public RedisBackplane Backplane => _redis;

    /// <summary>Connected, and the last heartbeat went through within two intervals (a Redis that accepts the connection
    /// but does not answer is not healthy either).</summary>
    public bool IsHealthy =>
        _redis.IsConnected && DateTime.UtcNow.Ticks - Interlocked.Read(ref _lastHeartbeatTicks) < Math.Max(_heartbeat.Ticks * 2, TimeSpan.FromSeconds(3).Ticks);

    public string HealthProblem => _redis.IsConnected ? "Redis is not answering" : "Redis is unreachable";

    public static async Task<RedisCluster> StartAsync(string connection, TimeSpan heartbeat, TimeSpan presenceTtl, TimeSpan resumeGrace, ILogSink log, CancellationToken ct)
    {
        EnsureThreadsForBlockingCalls();
        var redis = await RedisBackplane.ConnectAsync(connection, log, ct).ConfigureAwait(false);
        var cluster = new RedisCluster(redis, log, heartbeat, presenceTtl, resumeGrace);
        try
        {
            // Subscribe before the first snapshot so that no change falls between the two.
            var events = await redis.Subscriber.SubscribeAsync(redis.EventsChannel).ConfigureAwait(false);
            events.OnMessage(message => cluster.OnEvent(message.Message));
            var own = await redis.Subscriber.SubscribeAsync(redis.InstanceChannel(redis.InstanceId)).ConfigureAwait(false);
            own.OnMessage(message => cluster.Peers.DeliverFromBus((byte[])message.Message!));
            await cluster.BeatAsync().ConfigureAwait(false);
            cluster.Peers.Resync(forget: false);
            cluster._loop = Task.Run(() => cluster.RunAsync(cluster._stopping.Token));
            log.Write(LogLevel.Information, Component, $"Instance {redis.InstanceId} joined the cluster in Redis");
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The registry interface is synchronous, so a register or an offer blocks its thread-pool thread for the Redis round
    /// trip (~0.1-0.3 ms), while the socket completion that carries Redis's answer needs a thread-pool thread too. With
    /// the pool at its default minimum (one thread per core) a burst of such calls on a small machine waits for the
    /// pool's slow thread injection (about two a second) and times out; measured on 2 cores: 3 s timeouts with 20
    /// clients offering at once. A higher minimum lets the pool start threads for a burst at once (StackExchange.Redis's
    /// own advice for synchronous use); idle threads still retire.
    /// </summary>
    private static void EnsureThreadsForBlockingCalls()
    {
        const int Wanted = 128;
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < Wanted) ThreadPool.SetMinThreads(Wanted, Math.Max(completionPorts, Wanted));
    }

    private void OnEvent(RedisValue message)
    {
        try { Peers.ApplyFromBus(message!); }
        catch (Exception e)
        {
            // Never let one bad event end the subscription's loop: later events still matter.
            _log.Write(LogLevel.Warning, Component, $"Ignored a cluster event that could not be applied: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_heartbeat);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await BeatAsync().ConfigureAwait(false);
                    if (Interlocked.Exchange(ref _unavailableLogged, 0) == 1)
                        _log.Write(LogLevel.Information, Component, "Redis answers again");
                }
                catch (Exception e) when (e is SharedStoreUnavailableException or RedisException)
                {
                    if (Interlocked.Exchange(ref _unavailableLogged, 1) == 0)
                        _log.Write(LogLevel.Warning, Component, $"Presence heartbeat failed ({e.GetType().Name}); retrying every {_heartbeat.TotalSeconds:0.#} s");
                    _eventsMayBeMissed = true;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>One heartbeat: stamp this instance alive, reap dead ones, and repair what Redis or the bus lost.</summary>
    private async Task BeatAsync()
    {
        var result = (RedisResult[])(await _redis.EvalAsync(RedisScripts.Heartbeat, _redis.InstanceId, (long)_presenceTtl.TotalMilliseconds,
            (long)_resumeGrace.TotalMilliseconds, _proposedEpoch).ConfigureAwait(false))!;
        var epoch = (string)result[0]!;
        var known = (string)result[1]! == "1";
        for (var i = 3; i < result.Length; i++) OnEvent(result[i].ToString());
        if ((string)result[2]! is var reaped && reaped != "0")
            _log.Write(LogLevel.Information, Component, $"Removed {reaped} peer(s) of instance(s) that stopped heartbeating");

        if (_epoch is null)
        {
            _epoch = epoch;
        }
        else if (epoch != _epoch || !known)
        {
            _log.Write(LogLevel.Warning, Component, epoch != _epoch
                ? "Redis lost its data (restarted empty?): writing this instance's rooms, peer ids and peers again"
                : "This instance was taken for dead (no heartbeat within the presence TTL): writing its peers again");
            _epoch = epoch;
            // Rooms first (a peer re-registering checks its room), then peer ids, then the peers themselves.
            await Rooms.RestoreAsync(Peers.LocalRoomIds()).ConfigureAwait(false);
            PeerIds.Restore();
            Peers.RestoreLocalPeers();
            // Sequence numbers started again with the data: what the mirror knows cannot be compared with them.
            Notify(Peers.Resync(forget: true));
            _eventsMayBeMissed = false;
        }
        else if (_eventsMayBeMissed)
        {
            _eventsMayBeMissed = false;
            Notify(Peers.Resync(forget: false));
        }
        Peers.PruneTombstones();
        Interlocked.Exchange(ref _lastHeartbeatTicks, DateTime.UtcNow.Ticks);
    }

    private void Notify(IReadOnlyCollection<string> rooms)
    {
        if (RoomsResynced is { } notify) foreach (var room in rooms) notify(room);
    }

    /// <summary>Rooms whose peers a resync may have changed (the monitor refreshes them).</summary>
    public Action<string>? RoomsResynced { get; set; }

    /// <summary>Drops the connection to Redis without leaving: to the others this instance simply stops heartbeating, as a
    /// killed process does (tests of presence expiry).</summary>
    internal async Task AbandonAsync()
    {
        _abandoned = true;
        _stopping.Cancel();
        try { await _loop.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        await _redis.DisposeAsync().ConfigureAwait(false);
    }

    private bool _abandoned;
    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1 || _abandoned) return;
        _stopping.Cancel();
        try { await _loop.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        // Leave at once rather than after the presence TTL: peers of this instance are gone from every other one.
        try
        {
            await _redis.Subscriber.UnsubscribeAllAsync().ConfigureAwait(false);
            await _redis.RunAsync(db => db.SortedSetAddAsync(_redis.Prefix + "instances", _redis.InstanceId, 0)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SharedStoreUnavailableException or RedisException || RedisBackplane.IsUnavailable(e)) { }
        await _redis.DisposeAsync().ConfigureAwait(false);
    }
}
