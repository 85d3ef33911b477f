using System.Runtime.CompilerServices;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Store;
using StackExchange.Redis;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// One instance's connection to the Redis that several signaling instances share: the commands (scripts run
/// synchronously with short timeouts, failures become <see cref="SharedStoreUnavailableException"/>), the two kinds of
/// pub/sub channel (the registry's change events, one channel per instance for peer messages), and the ids of this
/// instance's connections. The connection re-establishes itself (abortConnect=false); callers see clear errors meanwhile.
/// </summary>
internal sealed class RedisBackplane : IAsyncDisposable
{
    private const string Component = "cluster";
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(3);

    private readonly ConnectionMultiplexer _redis;
    private readonly ILogSink _log;
    private readonly ConditionalWeakTable<Store.IPeerLink, string> _linkIds = new();
    private long _nextLink;

    private RedisBackplane(ConnectionMultiplexer redis, string prefix, ILogSink log)
    {
        _redis = redis;
        _log = log;
        Prefix = prefix;
        Database = redis.GetDatabase();
        Subscriber = redis.GetSubscriber();
        InstanceId = Guid.NewGuid().ToString("N").Substring(0, 16);
        EventsChannel = RedisChannel.Literal(prefix + "ev");
        redis.ConnectionFailed += (_, e) => _log.Write(LogLevel.Warning, Component, $"Redis connection lost ({e.FailureType}); retrying");
        redis.ConnectionRestored += (_, e) => _log.Write(LogLevel.Information, Component, "Redis connection restored");
    }

    /// <summary>Key and channel prefix shared by every instance of one deployment.</summary>
    public string Prefix { get; }

    /// <summary>This instance's id: the owner of its peers in Redis and the name of its message channel.</summary>
    public string InstanceId { get; }

    public IDatabase Database { get; }

    public ISubscriber Subscriber { get; }

    public RedisChannel EventsChannel { get; }

    public bool IsConnected => _redis.IsConnected;

    public ConnectionMultiplexer Multiplexer => _redis;

    public RedisChannel InstanceChannel(string instanceId) => RedisChannel.Literal(Prefix + "i:" + instanceId);

    /// <summary>Connects (waiting at most the connect timeout for the first connection; later losses are retried in the background).</summary>
    public static async Task<RedisBackplane> ConnectAsync(string connection, ILogSink log, CancellationToken ct)
    {
        var options = ParseConnection(connection);
        var redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        if (!redis.IsConnected)
        {
            await redis.DisposeAsync().ConfigureAwait(false);
            throw new SharedStoreUnavailableException($"Redis at {DescribeEndpoints(options)} could not be reached; check -Redis (host:port) and that redis-server runs.");
        }
        return new RedisBackplane(redis, "sleaprtc:", log);
    }

    /// <summary>
    /// Accepts a redis:// or rediss:// URL (<c>redis://[:password@]host[:port][/db]</c>, what SLEAP_RTC_REDIS_URL usually
    /// holds) or a StackExchange.Redis configuration string (<c>host:port,password=…</c>). Timeouts default to 3 s so a
    /// lost Redis answers callers with an error quickly rather than hanging them.
    /// </summary>
    internal static ConfigurationOptions ParseConnection(string connection)
    {
        if (string.IsNullOrWhiteSpace(connection)) throw new ArgumentException("The Redis connection string is empty.", nameof(connection));
        connection = connection.Trim();
        ConfigurationOptions options;
        if (connection.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || connection.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(connection, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
                throw new ArgumentException($"'{RedactUrl(connection)}' is not a valid redis:// URL (redis://[:password@]host[:port][/db]).", nameof(connection));
            options = new ConfigurationOptions { Ssl = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase) };
            options.EndPoints.Add(uri.Host, uri.IsDefaultPort || uri.Port <= 0 ? 6379 : uri.Port);
            if (!string.IsNullOrEmpty(uri.UserInfo))
            {
                var parts = Uri.UnescapeDataString(uri.UserInfo).Split(new[] { ':' }, 2);
                if (parts.Length == 2)
                {
                    if (parts[0].Length > 0) options.User = parts[0];
                    options.Password = parts[1];
                }
                else options.Password = parts[0];
            }
            var path = uri.AbsolutePath.Trim('/');
            if (path.Length > 0)
            {
                if (!int.TryParse(path, out var db) || db < 0) throw new ArgumentException($"The database in '{RedactUrl(connection)}' must be a number.", nameof(connection));
                options.DefaultDatabase = db;
            }
            options.ConnectTimeout = options.SyncTimeout = options.AsyncTimeout = (int)DefaultTimeout.TotalMilliseconds;
        }
        else
        {
            options = ConfigurationOptions.Parse(connection);
            if (connection.IndexOf("timeout", StringComparison.OrdinalIgnoreCase) < 0)
                options.ConnectTimeout = options.SyncTimeout = options.AsyncTimeout = (int)DefaultTimeout.TotalMilliseconds;
        }
        if (options.EndPoints.Count == 0) throw new ArgumentException("The Redis connection string names no host.", nameof(connection));
        options.AbortOnConnectFail = false;
        options.ConnectRetry = 1;
        // Back within a second or two of Redis returning (the default backs off exponentially).
        options.ReconnectRetryPolicy = new LinearRetry(1000);
        options.ClientName = "sleaprtc-signaling";
        return options;
    }

    private static string DescribeEndpoints(ConfigurationOptions options) => string.Join(", ", options.EndPoints.Select(e => e.ToString()));

    /// <summary>Passwords never reach messages or logs.</summary>
    private static string RedactUrl(string url)
    {
        var at = url.LastIndexOf('@');
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        return at > scheme && scheme >= 0 ? url.Substring(0, scheme + 3) + "***" + url.Substring(at) : url;
    }

    /// <summary>A stable id for a connection of this instance ("instance:n"); the reaper recognises an instance's links by the prefix.</summary>
    public string LinkIdOf(Store.IPeerLink link) =>
        _linkIds.GetValue(link, _ => InstanceId + ":" + Interlocked.Increment(ref _nextLink).ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Runs a script synchronously (the registry's interface is synchronous; a script on a local Redis takes ~0.1 ms).</summary>
    public RedisResult Eval(string script, params RedisValue[] args)
    {
        try
        {
            return Database.ScriptEvaluate(script, null, Prepend(args));
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable(e);
        }
    }

    public async Task<RedisResult> EvalAsync(string script, params RedisValue[] args)
    {
        try
        {
            return await Database.ScriptEvaluateAsync(script, null, Prepend(args)).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>Runs a plain command synchronously with the same error mapping.</summary>
    public T Run<T>(Func<IDatabase, T> command)
    {
        try
        {
            return command(Database);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable(e);
        }
    }

    public async Task<T> RunAsync<T>(Func<IDatabase, Task<T>> command)
    {
        try
        {
            return await command(Database).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable(e);
        }
    }

    private RedisValue[] Prepend(RedisValue[] args)
    {
        var all = new RedisValue[args.Length + 1];
        all[0] = Prefix;
        Array.Copy(args, 0, all, 1, args.Length);
        return all;
    }

    internal static bool IsUnavailable(Exception e) =>
        e is RedisConnectionException or RedisTimeoutException or TimeoutException or ObjectDisposedException
        || e is RedisServerException server && (server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("BUSY", StringComparison.Ordinal) || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal));

    private SharedStoreUnavailableException Unavailable(Exception e)
    {
        // StackExchange.Redis messages name the endpoint and the command, never the password.
        _log.Write(LogLevel.Warning, Component, $"Redis unavailable: {e.GetType().Name}: {e.Message}");
        return new SharedStoreUnavailableException(SharedStoreUnavailableException.DefaultMessage, e);
    }

    /// <summary>Fire-and-forget publish: the bus never blocks a relay; false when Redis is known to be unreachable.</summary>
    public bool Publish(RedisChannel channel, byte[] payload)
    {
        if (!_redis.IsConnected) return false;
        try
        {
            Subscriber.Publish(channel, payload, CommandFlags.FireAndForget);
            return true;
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _redis.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false); }
        catch (Exception e) when (IsUnavailable(e) || e is RedisException) { }
        _redis.Dispose();
    }
}
