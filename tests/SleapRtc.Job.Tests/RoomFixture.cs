using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Server;
using System.Net;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

namespace SleapRtc.Job.Tests;

/// <summary>A real signaling server on loopback plus helpers to start workers in one room.</summary>
internal sealed class RoomFixture : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly List<WorkerHost> _workers = new();

    private RoomFixture(SignalingServerHost server, IPeerConnectionFactory transport, string root)
    {
        Server = server;
        Transport = transport;
        Root = root;
    }

    public SignalingServerHost Server { get; private set; }
    /// <summary>The real managed WebRTC stack, restricted to loopback host candidates.</summary>
    public IPeerConnectionFactory Transport { get; }
    public static PeerConnectionOptions Loopback { get; } = new() { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };
    public string Root { get; }
    public string Url => $"ws://127.0.0.1:{Server.Port}";

    /// <summary>Set SLEAPRTC_TEST_LOG to a file path to get every component's log lines while debugging a test.</summary>
    public static ILogSink Log { get; } = Environment.GetEnvironmentVariable("SLEAPRTC_TEST_LOG") is { Length: > 0 } path
        ? new TextWriterLogSink(TextWriter.Synchronized(new StreamWriter(path, append: true) { AutoFlush = true }), LogLevel.Debug)
        : Protocol.Logging.Log.Null;

    /// <param name="redis">A Redis URL: the server is one instance of several sharing it.</param>
    /// <param name="configure">More server settings (TURN servers, lifetimes).</param>
    public static async Task<RoomFixture> StartAsync(IPeerConnectionFactory? transport = null, string? databasePath = null, string? redis = null,
        Action<SignalingServerOptions>? configure = null)
    {
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.02");
        var options = new SignalingServerOptions
        {
            Port = 0, ListenAddress = "127.0.0.1", DatabasePath = databasePath ?? ":memory:", EnableStun = false, Redis = redis,
        };
        configure?.Invoke(options);
        var server = await SignalingServerHost.StartAsync(options, CancellationToken.None).WaitAsync(Wait);
        return new RoomFixture(server, transport ?? new RtcPeerConnectionFactory(), Fixtures.NewTempDirectory("room"));
    }

    /// <summary>A second instance sharing Redis with <see cref="Server"/> (<see cref="StartClusterAsync"/>); null otherwise.</summary>
    public SignalingServerHost? Companion { get; private set; }

    /// <summary>WebSocket URL of the companion instance (the server itself when there is none).</summary>
    public string CompanionUrl => $"ws://127.0.0.1:{(Companion ?? Server).Port}";

    /// <summary>Two instances sharing <paramref name="redisUrl"/>: workers started here register through the first, and a
    /// client may use <see cref="CompanionUrl"/>, so every signaling message of a job crosses instances.</summary>
    public static async Task<RoomFixture> StartClusterAsync(string redisUrl)
    {
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.02");
        SignalingServerOptions Options() => new() { Port = 0, ListenAddress = "127.0.0.1", EnableStun = false, Redis = redisUrl };
        var server = await SignalingServerHost.StartAsync(Options(), CancellationToken.None).WaitAsync(Wait);
        var fixture = new RoomFixture(server, new RtcPeerConnectionFactory(), Fixtures.NewTempDirectory("room"));
        fixture.Companion = await SignalingServerHost.StartAsync(Options(), CancellationToken.None).WaitAsync(Wait);
        return fixture;
    }

    /// <summary>Stops the server and starts a new one on the same port and database (a server restart).</summary>
    public async Task RestartServerAsync(string databasePath, TimeSpan downtime)
    {
        var port = Server.Port;
        await Server.StopAsync();
        await Task.Delay(downtime);
        Server = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = port, ListenAddress = "127.0.0.1", DatabasePath = databasePath, EnableStun = false,
        }, CancellationToken.None).WaitAsync(Wait);
    }

    public async Task<WorkerHost> StartWorkerAsync(string? roomId = null, string? token = null, int gpuId = 0, string? nvidiaSmi = null,
        string? sleapNn = null, TimeSpan? clientIdle = null, SignalingClientOptions? signaling = null, long? maxUnpackedSize = null,
        string? workingDirectory = null, Func<WorkerOptions, WorkerOptions>? configure = null)
    {
        var worker = await WorkerHost.StartAsync(Options(roomId, token, gpuId, nvidiaSmi, sleapNn, clientIdle, signaling, maxUnpackedSize, workingDirectory, configure),
            CancellationToken.None).WaitAsync(Wait);
        lock (_workers) _workers.Add(worker);
        return worker;
    }

    /// <summary>The options <see cref="StartWorkerAsync"/> uses (loopback, stand-in tools), for tests that start workers themselves.</summary>
    public WorkerOptions Options(string? roomId = null, string? token = null, int gpuId = 0, string? nvidiaSmi = null,
        string? sleapNn = null, TimeSpan? clientIdle = null, SignalingClientOptions? signaling = null, long? maxUnpackedSize = null,
        string? workingDirectory = null, Func<WorkerOptions, WorkerOptions>? configure = null)
    {
        var options = new WorkerOptions
        {
            Server = Url,
            RoomId = roomId,
            Token = token,
            GpuId = gpuId,
            NvidiaSmiPath = nvidiaSmi ?? "/nonexistent/nvidia-smi",
            SleapNnPath = sleapNn ?? Fixtures.SleapNn,
            WorkingDirectory = workingDirectory ?? Path.Combine(Root, "worker-" + Guid.NewGuid().ToString("N").Substring(0, 6)),
            PeerConnectionFactory = Transport,
            PeerConnection = Loopback,
            ClientIdleTimeout = clientIdle ?? TimeSpan.FromSeconds(25),
            ProgressPublishInterval = TimeSpan.FromMilliseconds(100),
            Signaling = signaling,
            Log = Log,
            MaxUnpackedSize = maxUnpackedSize ?? Protocol.Jobs.PackageLimits.DefaultMaxUnpackedBytes,
        };
        return configure is null ? options : configure(options);
    }

    /// <summary>Workers a test started itself, stopped with the fixture.</summary>
    public void Track(IEnumerable<WorkerHost> workers)
    {
        lock (_workers) _workers.AddRange(workers);
    }

    public ResolvedRoom Room(WorkerHost worker) => new() { RoomId = worker.Session.RoomId, Token = worker.Session.Token, Server = Url };

    public async ValueTask DisposeAsync()
    {
        List<WorkerHost> workers;
        lock (_workers) workers = _workers.ToList();
        await Task.WhenAll(workers.Select(w => w.StopAsync())).WaitAsync(Wait);
        await Server.StopAsync();
        if (Companion is not null) await Companion.StopAsync();
    }
}
