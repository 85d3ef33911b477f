using System.Collections.Concurrent;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Monitor;
using SleapRtc.Signaling.Store;
using SleapRtc.WebRtc.Stun;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// The bundled signaling server, in-process: one TCP port serves the classic HTTP API and the
/// WebSocket upgrade (any path), a UDP STUN responder uses the same port number, rooms live in
/// SQLite and live peers in memory. Named "Host" because <see cref="SleapRtc.SignalingServer"/> is the
/// public object the cmdlets output (see <see cref="ToModel"/>).
/// </summary>
public sealed partial class SignalingServerHost : IAsyncDisposable
{
    private const string Component = "signaling";
    private static readonly TimeSpan HeaderTimeout = TimeSpan.FromSeconds(30);

    private readonly SignalingServerOptions _options;
    private readonly TcpListener _listener;
    private readonly IRoomStore _store;
    private readonly bool _ownsStore;
    private readonly StunBindingServer? _stun;
    private readonly SignalingHub _hub;
    private readonly Jobs.JobQueueRouter _jobs;
    /// <summary>The private database of the job records when the rooms live in a store that is not SQLite.</summary>
    private readonly SqliteRoomStore? _ownJobDatabase;
    private readonly MonitorService _monitor;
    private readonly HttpEndpoints _http;
    private readonly RoomService _rooms;
    private readonly ConnectionsPerAddress _perAddress;
    private readonly PeerSocketLimits _peerLimits;
    private readonly ILogSink _log;
    /// <summary>Redis shared with other instances (-Redis); null for the single server.</summary>
    private readonly Cluster.RedisCluster? _cluster;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, TcpClient> _connections = new();
    private readonly ConcurrentDictionary<long, PeerSocket> _sockets = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Task> _backgroundLoops = [];
    private const int PingSlices = 8;
    private long _nextConnectionId;
    private long _pingTick;
    private int _stopRequested;

    private SignalingServerHost(SignalingServerOptions options, TcpListener listener, IRoomStore store, bool ownsStore,
        StunBindingServer? stun, IdTokenService idTokens, string databasePath, Cluster.RedisCluster? cluster)
    {
        _cluster = cluster;
        _options = options;
        _listener = listener;
        _store = store;
        _ownsStore = ownsStore;
        _stun = stun;
        _log = options.Log;
        // The live monitor (Monitor/): it reads the registry and the room store, and hears of every peer change.
        // One throttle for every credential check: register, the HTTP API and the monitor share its per-address and per-room budgets.
        Throttle = new CredentialThrottle(options.FreeFailedAuthAttempts, options.FailedAuthInterval);
        IPeerRegistry registry = cluster is not null ? cluster.Peers : new InMemoryPeerRegistry();
        _monitor = new MonitorService(new RegistryMonitorDirectory(registry, store), options.Monitor, _log, Throttle);
        Peers = new MonitoredPeerRegistry(registry, _monitor);
        PeerIds = cluster is not null ? cluster.PeerIds : new PeerIdBindings(options.PeerIdResumeGrace);
        if (cluster is not null)
        {
            // Changes made through other instances reach this instance's monitor viewers too.
            cluster.Peers.RemoteChange = _monitor.NotifyPeerChanged;
            cluster.RoomsResynced = _monitor.NotifyRoomChanged;
        }
        // Job records live in the rooms database (one file to keep); an external non-SQLite room store gets a private in-memory one.
        if (store is not SqliteRoomStore sqlite) sqlite = _ownJobDatabase = SqliteRoomStore.Open(":memory:");
        _jobs = new Jobs.JobQueueRouter(new Jobs.JobQueue(options.Jobs, Peers, new SqliteJobStore(sqlite), _log) { Observer = _monitor }, Peers, _log);
        _monitor.Jobs = _jobs;
        _hub = new SignalingHub(store, Peers, idTokens, Throttle, PeerIds, _log, () => StunPort, _jobs) { Turn = TurnCredentialIssuer.From(options) };
        _rooms = new RoomService(store, options.DefaultRoomTtl, _log, () => Interlocked.Increment(ref _hub.RoomsCreated));
        _http = new HttpEndpoints(_rooms, Peers, idTokens, _hub, Throttle, _log, () => cluster is null || cluster.IsHealthy ? null : cluster.HealthProblem);
        _perAddress = new ConnectionsPerAddress(options.MaxConnectionsPerAddress, options.ExemptLoopbackFromConnectionCap);
        _peerLimits = new PeerSocketLimits(options.MaxMessageBytes, options.MaxQueuedMessagesPerConnection, options.MaxQueuedBytesPerConnection,
            options.SendStallTimeout, options.MalformedMessageAllowance);
        DatabasePath = databasePath;
        var endPoint = (IPEndPoint)listener.LocalEndpoint;
        Port = endPoint.Port;
        ListenAddress = options.ListenAddress;
        var host = AdvertisedHost(endPoint.Address);
        Url = $"ws://{host}:{Port}";
        HttpUrl = $"http://{host}:{Port}";
        LocalUrl = $"ws://{(endPoint.Address.AddressFamily == AddressFamily.InterNetworkV6 && !endPoint.Address.Equals(IPAddress.IPv6Any) ? "[" + endPoint.Address + "]" : IsAny(endPoint.Address) ? "127.0.0.1" : endPoint.Address.ToString())}:{Port}";
        StartedAt = DateTimeOffset.UtcNow;
    }

    /// <summary>WebSocket URL other machines use (the LAN address when listening on all interfaces).</summary>
    public string Url { get; }

    /// <summary>HTTP base URL (same port as <see cref="Url"/>).</summary>
    public string HttpUrl { get; }

    /// <summary>WebSocket URL for callers in this process or on this machine.</summary>
    public string LocalUrl { get; }

    public int Port { get; }

    /// <summary>UDP port of the STUN responder; 0 when STUN is off.</summary>
    public int StunPort => _stun?.Port ?? 0;

    public string ListenAddress { get; }
    public DateTimeOffset StartedAt { get; }
    public string DatabasePath { get; }
    public Guid InstanceId { get; } = Guid.NewGuid();
    public bool IsRunning => !_completion.Task.IsCompleted && Volatile.Read(ref _stopRequested) == 0 && !IsDraining;

    /// <summary>Completes when the server has stopped (after <see cref="StopAsync"/>).</summary>
    public Task Completion => _completion.Task;

    /// <summary>Live peers; exposed for diagnostics and tests.</summary>
    public IPeerRegistry Peers { get; }

    /// <summary>The room job queue and job records (tests look inside).</summary>
    internal Jobs.JobQueue JobQueue => _jobs.Local ?? throw new InvalidOperationException("Another instance runs the job queue.");

    /// <summary>The live monitor served on this port (page, room state, room events).</summary>
    public MonitorService Monitor => _monitor;

    /// <summary>The credential throttle (tests look at its size).</summary>
    internal CredentialThrottle Throttle { get; }

    /// <summary>Who holds each peer id (tests look at its size).</summary>
    internal IPeerIdBindings PeerIds { get; }

    /// <summary>This instance's id in the cluster sharing Redis; null for a single server.</summary>
    public string? ClusterInstanceId => _cluster?.InstanceId;

    /// <summary>False while the Redis this instance shares is unreachable (always true for a single server).</summary>
    public bool IsHealthy => _cluster is null || _cluster.IsHealthy;

    /// <summary>Open TCP connections, HTTP and WebSocket (tests).</summary>
    internal int OpenConnections => _connections.Count;

    /// <summary>Open connections per address (tests).</summary>
    internal ConnectionsPerAddress ConnectionsPerAddress => _perAddress;

    /// <summary>Starts listening. Throws <see cref="SocketException"/> (AddressAlreadyInUse) when the port is taken.</summary>
    public static async Task<SignalingServerHost> StartAsync(SignalingServerOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(options), "Port must be 0-65535.");
        if (!IPAddress.TryParse(options.ListenAddress, out var address))
            throw new ArgumentException($"ListenAddress '{options.ListenAddress}' is not an IP address.", nameof(options));

        // Misconfigured TURN fails the start with the reason rather than handing peers unusable servers.
        TurnCredentialIssuer.From(options);
        Cluster.RedisCluster? cluster = null;
        if (!string.IsNullOrWhiteSpace(options.Redis))
        {
            // Rooms, keys, peers and the bus live in Redis; the SQLite file is not used.
            cluster = await Cluster.RedisCluster.StartAsync(options.Redis!, options.ClusterHeartbeatInterval, options.ClusterPresenceTtl,
                options.PeerIdResumeGrace, options.Log, ct).ConfigureAwait(false);
        }
        var databasePath = cluster is not null ? "(redis)" : options.RoomStore is not null ? "(external store)" : options.DatabasePath ?? SignalingServerOptions.DefaultDatabasePath;
        IRoomStore store;
        try { store = cluster?.Rooms ?? options.RoomStore ?? SqliteRoomStore.Open(databasePath); }
        catch
        {
            if (cluster is not null) await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var ownsStore = options.RoomStore is null;
        TcpListener? listener = null;
        StunBindingServer? stun = null;
        try
        {
            var key = await store.GetOrCreateKeyAsync("id_token_hs256", IdTokenService.NewKey, ct).ConfigureAwait(false);
            var idTokens = new IdTokenService(key, options.IdTokenLifetime);

            listener = new TcpListener(address, options.Port);
            if (address.Equals(IPAddress.IPv6Any)) listener.Server.DualMode = true;
            listener.Start(512);
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;

            if (options.EnableStun)
            {
                void LogStopped(string reason) => options.Log.Write(LogLevel.Warning, "stun", reason);
                try { stun = new StunBindingServer(new IPEndPoint(address, port), LogStopped); }
                catch (SocketException)
                {
                    // The UDP port number is taken by something else: any free port still serves peers.
                    stun = new StunBindingServer(new IPEndPoint(address, 0), LogStopped);
                }
            }

            var server = new SignalingServerHost(options, listener, store, ownsStore, stun, idTokens, databasePath, cluster);
            server.Begin();
            options.Log.Write(LogLevel.Information, Component, $"Signaling server listening on {options.ListenAddress}:{port} (STUN udp {server.StunPort}), rooms in {(cluster is null ? databasePath : "Redis, instance " + cluster.InstanceId)}");
            if (server._hub.Turn is { } turn) options.Log.Write(LogLevel.Information, Component, turn.ToString());
            return server;
        }
        catch
        {
            listener?.Stop();
            stun?.Dispose();
            if (ownsStore) await store.DisposeAsync().ConfigureAwait(false);
            if (cluster is not null) await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void Begin()
    {
        var ct = _stopping.Token;
        _backgroundLoops.Add(Task.Run(() => AcceptLoopAsync(_accepting.Token)));
        _backgroundLoops.Add(Task.Run(() => EveryAsync(TimeSpan.FromTicks(_options.PingInterval.Ticks / PingSlices), PingSlice, ct)));
        _backgroundLoops.Add(Task.Run(() => EveryAsync(_options.PurgeInterval, () => _ = PurgeAsync(ct), ct)));
        _ = PurgeAsync(ct);
    }

    /// <summary>Creates a room directly (embedded server in Start-SleapWorker). ttl null = default, InfiniteTimeSpan = never.
    /// roomId/token may be given to recreate a known room (shorter classic-style tokens are accepted).</summary>
    public Task<RoomRecord> CreateRoomAsync(string? name, TimeSpan? ttl, CancellationToken ct = default, string? roomId = null, string? token = null)
        => _rooms.CreateAsync(name, ttl, "local", ct, roomId, token);

    public Task<RoomRecord?> GetRoomAsync(string roomId, CancellationToken ct = default) => _rooms.GetAsync(roomId, ct);

    /// <summary>Purges expired rooms now (also done every PurgeInterval).</summary>
    public async Task PurgeExpiredRoomsAsync(CancellationToken ct = default)
    {
        // A room's job records and tickets go with it: nobody can list, collect or run them without the room.
        foreach (var roomId in await _rooms.PurgeExpiredAsync(ct).ConfigureAwait(false)) _jobs.ForgetRoom(roomId);
    }

    /// <summary>The public object Start-/Get-SleapSignalingServer output.</summary>
    public SleapRtc.SignalingServer ToModel() => new()
    {
        Url = Url,
        Port = Port,
        ListenAddress = ListenAddress,
        StartedAt = StartedAt,
        State = IsDraining ? "Draining" : IsRunning ? "Running" : "Stopped",
        DatabasePath = DatabasePath,
        InstanceId = InstanceId,
    };

    private async Task PurgeAsync(CancellationToken ct)
    {
        try { await PurgeExpiredRoomsAsync(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log.Write(LogLevel.Warning, Component, $"Purging expired rooms failed: {e.GetType().Name}");
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Each tick pings one slice of the connections, so every connection still gets a ping per
    /// PingInterval but a server with thousands of peers never queues thousands of sends at once.</summary>
    private void PingSlice()
    {
        var slice = _pingTick++ % PingSlices;
        foreach (var (id, socket) in _sockets)
            if (id % PingSlices == slice) socket.TrySendUtf8(SignalingHub.Ping);
    }

    private static async Task EveryAsync(TimeSpan interval, Action action, CancellationToken ct)
    {
        if (interval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false)) action();
        }
        catch (OperationCanceledException) { }
    }

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e) when (!ct.IsCancellationRequested)
            {
                _log.Write(LogLevel.Warning, Component, $"Accept failed: {e.SocketErrorCode}");
                continue;
            }
            catch (SocketException) { return; }

            var remote = (client.Client.RemoteEndPoint as IPEndPoint)?.Address;
            if (remote is { IsIPv4MappedToIPv6: true }) remote = remote.MapToIPv4();
            var remoteAddress = remote?.ToString() ?? "unknown";
            if (!_perAddress.TryOpen(remote, remoteAddress))
            {
                _ = Task.Run(() => RefuseOverCapAsync(client, remoteAddress));
                continue;
            }
            var id = Interlocked.Increment(ref _nextConnectionId);
            _connections[id] = client;
            // Connections live until the server stops, not until it stops accepting (a drain).
            _ = Task.Run(() => ServeConnectionAsync(id, client, remote, remoteAddress, _stopping.Token));
        }
    }

    /// <summary>Answers a connection over the per-address cap with 503 and closes it (without reading its request).</summary>
    private async Task RefuseOverCapAsync(TcpClient client, string remoteAddress)
    {
        _log.Write(LogLevel.Warning, Component, $"Refused a connection from {remoteAddress}: {_options.MaxConnectionsPerAddress} connections from that address are open");
        using (client)
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            try
            {
                var stream = client.GetStream();
                await WriteResponseAsync(stream, HttpResponse.Detail(503, "Too many connections from this address"), false, false, timeout.Token).ConfigureAwait(false);
                await DrainBeforeCloseAsync(client, stream, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    private async Task ServeConnectionAsync(long id, TcpClient client, IPAddress? remote, string remoteAddress, CancellationToken ct)
    {
        try
        {
            client.NoDelay = true;
            var stream = client.GetStream();
            var reader = new HttpRequestReader(stream, _options.MaxMessageBytes);
            while (!ct.IsCancellationRequested)
            {
                HttpRequest? request;
                using (var headerTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    headerTimeout.CancelAfter(HeaderTimeout);
                    try { request = await reader.ReadAsync(headerTimeout.Token).ConfigureAwait(false); }
                    catch (HttpParseException e)
                    {
                        await WriteResponseAsync(stream, new HttpResponse(e.StatusCode, new System.Text.Json.Nodes.JsonObject { ["detail"] = e.Message }), false, false, ct).ConfigureAwait(false);
                        await DrainBeforeCloseAsync(client, stream, ct).ConfigureAwait(false);
                        return;
                    }
                }
                if (request is null) return;

                if (request.IsWebSocketUpgrade)
                {
                    await ServeWebSocketAsync(id, stream, reader, request, remoteAddress, ct).ConfigureAwait(false);
                    return;
                }

                // Monitor page, /api/rooms/{id}/state and /events; it answers with Connection: close.
                try
                {
                    if (await _monitor.TryHandleAsync(new MonitorHttpRequest(request.Method, request.Target, request.Headers, remoteAddress), stream, ct).ConfigureAwait(false)) return;
                }
                catch (SharedStoreUnavailableException e)
                {
                    await WriteResponseAsync(stream, HttpResponse.Detail(503, e.Message), false, false, ct).ConfigureAwait(false);
                    return;
                }

                HttpResponse response;
                try { response = await _http.HandleAsync(request, remoteAddress, ct).ConfigureAwait(false); }
                catch (SharedStoreUnavailableException e)
                {
                    response = HttpResponse.Detail(503, e.Message);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.Write(LogLevel.Error, Component, $"HTTP {request.Method} {request.Path} failed: {e.GetType().Name}");
                    response = HttpResponse.Detail(500, "Internal server error");
                }
                var keepAlive = request.KeepAlive;
                await WriteResponseAsync(stream, response, keepAlive, request.Method == "HEAD", ct).ConfigureAwait(false);
                if (!keepAlive) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Client went away or the server is stopping.
        }
        finally
        {
            _connections.TryRemove(id, out _);
            _perAddress.Release(remote, remoteAddress);
            client.Dispose();
        }
    }

    /// <summary>
    /// After refusing a request early (e.g. 413) the client may still be sending its body; closing at once
    /// would reset the connection before it reads our answer. Read and discard a bounded amount first.
    /// </summary>
    private static async Task DrainBeforeCloseAsync(TcpClient client, NetworkStream stream, CancellationToken ct)
    {
        client.Client.Shutdown(SocketShutdown.Send);
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(ct);
        drain.CancelAfter(TimeSpan.FromSeconds(2));
        var buffer = new byte[16 * 1024];
        long discarded = 0;
        try
        {
            int read;
            while (discarded < 8 * 1024 * 1024 && (read = await stream.ReadAsync(buffer, drain.Token).ConfigureAwait(false)) > 0) discarded += read;
        }
        catch (OperationCanceledException) { }
    }

    private async Task ServeWebSocketAsync(long id, NetworkStream stream, HttpRequestReader reader, HttpRequest request, string remoteAddress, CancellationToken ct)
    {
        var key = request.Header("Sec-WebSocket-Key");
        if (string.IsNullOrEmpty(key) || request.Header("Sec-WebSocket-Version") != "13")
        {
            var refusal = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(refusal), ct).ConfigureAwait(false);
            return;
        }
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key.Trim() + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        var handshake = $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(handshake), ct).ConfigureAwait(false);

        var upgraded = new PrefixedStream(reader.Buffered.ToArray(), stream);
#if NET8_0_OR_GREATER
        var webSocket = WebSocket.CreateFromStream(upgraded, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = TimeSpan.Zero,
        });
#else
        // .NET Framework has no server-side WebSocket over a plain stream.
        WebSocket webSocket = new ServerWebSocket(upgraded);
#endif
        var hostName = HostWithoutPort(request.Header("Host")) ?? (IsAny(((IPEndPoint)_listener.LocalEndpoint).Address) ? "127.0.0.1" : ((IPEndPoint)_listener.LocalEndpoint).Address.ToString());
        var peer = new PeerSocket(webSocket, remoteAddress, hostName, _peerLimits);
        _sockets[id] = peer;
        Interlocked.Increment(ref _hub.TotalConnections);
        try
        {
            await peer.RunAsync(_hub.HandleAsync, ct).ConfigureAwait(false);
        }
        finally
        {
            _sockets.TryRemove(id, out _);
            _hub.Disconnected(peer);
        }
    }

    private static async Task WriteResponseAsync(Stream stream, HttpResponse response, bool keepAlive, bool headOnly, CancellationToken ct)
    {
        var body = response.Body is null ? [] : Encoding.UTF8.GetBytes(SignalingJson.ToWire(response.Body));
        var head = new StringBuilder()
            .Append("HTTP/1.1 ").Append(response.StatusCode).Append(' ').Append(ReasonPhrase(response.StatusCode)).Append("\r\n")
            .Append("Content-Type: application/json\r\n")
            .Append("Content-Length: ").Append(body.Length).Append("\r\n")
            .Append("Access-Control-Allow-Origin: *\r\n")
            .Append("Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n")
            .Append("Access-Control-Allow-Headers: Authorization, Content-Type\r\n")
            .Append("Cache-Control: no-store\r\n")
            .Append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n")
            .Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), ct).ConfigureAwait(false);
        if (!headOnly && body.Length > 0) await stream.WriteAsync(body, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK", 204 => "No Content", 400 => "Bad Request", 401 => "Unauthorized", 403 => "Forbidden", 404 => "Not Found",
        405 => "Method Not Allowed", 411 => "Length Required", 413 => "Payload Too Large", 426 => "Upgrade Required",
        431 => "Request Header Fields Too Large", 500 => "Internal Server Error", 503 => "Service Unavailable", 505 => "HTTP Version Not Supported", _ => "Status",
    };

    private static string? HostWithoutPort(string? host)
    {
        if (string.IsNullOrWhiteSpace(host)) return null;
        host = host.Trim();
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']');
            return close > 0 ? host[1..close] : null;
        }
        var colon = host.LastIndexOf(':');
        return colon > 0 ? host[..colon] : host;
    }

    private static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    /// <summary>The host other machines should use: the listen address, or for 0.0.0.0 the first up, non-loopback IPv4.</summary>
    private static string AdvertisedHost(IPAddress listen)
    {
        if (!IsAny(listen)) return listen.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + listen + "]" : listen.ToString();
        try
        {
            var lan = NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                .Select(u => u.Address)
                .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
            return lan?.ToString() ?? "127.0.0.1";
        }
        catch (NetworkInformationException)
        {
            return "127.0.0.1";
        }
    }

    /// <summary>Stops accepting, closes every connection, frees the port and the database.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopRequested, 1) == 1)
        {
            await _completion.Task.ConfigureAwait(false);
            return;
        }
        _log.Write(LogLevel.Information, Component, $"Stopping signaling server on port {Port}");
        // Before anything ends a connection: the peers' departures during a stop are not departures to the job queue.
        _jobs.ServerStopping();
        _stopping.Cancel();
        StopAccepting();
        foreach (var socket in _sockets.Values) socket.Close(WebSocketCloseStatus.EndpointUnavailable, "Server stopping");
        foreach (var client in _connections.Values) client.Dispose();
        try { await Task.WhenAll(_backgroundLoops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        await _jobs.DisposeAsync().ConfigureAwait(false);
        await _monitor.DisposeAsync().ConfigureAwait(false);
        _stun?.Dispose();
        if (_ownJobDatabase is not null) await _ownJobDatabase.DisposeAsync().ConfigureAwait(false);
        if (_ownsStore) await _store.DisposeAsync().ConfigureAwait(false);
        if (_cluster is not null) await _cluster.DisposeAsync().ConfigureAwait(false);
        _completion.TrySetResult();
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    /// <summary>Tests of a cluster: this instance vanishes from Redis's view as a killed process would (no heartbeat, nothing
    /// removed), then stops serving.</summary>
    internal async Task CrashForTestsAsync()
    {
        if (_cluster is not null) await _cluster.AbandonAsync().ConfigureAwait(false);
        await StopAsync().ConfigureAwait(false);
    }
}
