using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>Settings of an in-process signaling server. Defaults suit a LAN server; tests shorten the timings.</summary>
public sealed class SignalingServerOptions
{
    /// <summary>TCP port for HTTP and WebSocket (and the UDP STUN responder); 0 picks a free port.</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Address to listen on; the default 0.0.0.0 makes the server reachable from the LAN. Tests use 127.0.0.1.</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";

    /// <summary>SQLite file for rooms and the token-signing key; ":memory:" keeps nothing across restarts. Null = the default path.</summary>
    public string? DatabasePath { get; set; }

    /// <summary>A store to use instead of opening <see cref="DatabasePath"/> (the server does not dispose it).</summary>
    public IRoomStore? RoomStore { get; set; }

    /// <summary>Redis shared with other instances (a redis://[:password@]host[:port][/db] URL or a StackExchange.Redis
    /// configuration string): rooms, keys, peers and reservations live there and peer messages between instances go over
    /// its pub/sub. Null (the default) keeps everything in this process and <see cref="DatabasePath"/>.</summary>
    public string? Redis { get; set; }

    /// <summary>With <see cref="Redis"/>: how often this instance stamps its presence (and reaps dead instances).</summary>
    public TimeSpan ClusterHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>With <see cref="Redis"/>: an instance not heard from for this long is dead; its peers are removed and their
    /// peer ids wait <see cref="PeerIdResumeGrace"/> for their holders to register again through another instance.</summary>
    public TimeSpan ClusterPresenceTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Lifetime of rooms created without an explicit expiry.</summary>
    public TimeSpan DefaultRoomTtl { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Lifetime of id_tokens from /anonymous-signin. Long, because classic workers re-send their original token when they re-register.</summary>
    public TimeSpan IdTokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often every connection gets {"type":"ping"}.</summary>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often expired rooms are purged from the store.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Largest WebSocket message (and HTTP body) accepted; bigger messages close the socket with 1009.</summary>
    public int MaxMessageBytes { get; set; } = 1024 * 1024;

    /// <summary>Wrong credentials (room token on register and the HTTP API, id_token, monitor token) answered at once,
    /// per remote address and per room; after these, one wrong answer per <see cref="FailedAuthInterval"/> per key.
    /// A right credential is never held back.</summary>
    public int FreeFailedAuthAttempts { get; set; } = 5;

    /// <summary>Spacing of wrong-credential answers per address and per room once the free ones are used.</summary>
    public TimeSpan FailedAuthInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>After a connection holding a peer id is lost without a close frame, how long the id stays reserved for
    /// the id_token that registered it (so only the holder can resume it). A close frame frees it at once.</summary>
    public TimeSpan PeerIdResumeGrace { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long a drain (<see cref="SignalingServerHost.DrainAsync"/>: Stop-SleapSignalingServer, SIGTERM to a
    /// service) waits for the peers to move to other instances before it closes what is left. Zero stops at once.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = DefaultDrainTimeout;

    public static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Whether to answer STUN binding requests on UDP (same port number as HTTP when free).</summary>
    public bool EnableStun { get; set; } = true;

    /// <summary>TURN servers (turn:host:3478, turns:host:5349, turn:host?transport=tcp) offered to every peer in
    /// registered_auth's ice_servers, with credentials minted from <see cref="TurnSecret"/>. Empty: no relay.</summary>
    public IReadOnlyList<string> TurnUrls { get; set; } = Array.Empty<string>();

    /// <summary>coturn's static-auth-secret (use-auth-secret): the server mints per-peer, time-limited credentials
    /// from it. Never logged and never sent to peers.</summary>
    public string? TurnSecret { get; set; }

    /// <summary>How long minted TURN credentials stay valid; a peer that re-registers gets fresh ones.</summary>
    public TimeSpan TurnCredentialLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Checks the TURN settings as the server will at start.</summary>
    /// <exception cref="ArgumentException">A URL that is not turn:/turns:, or URLs and secret not given together.</exception>
    public void ValidateTurn() => TurnCredentialIssuer.From(this);

    /// <summary>Messages queued for one slow connection before the server drops it.</summary>
    public int MaxQueuedMessagesPerConnection { get; set; } = 8192;

    /// <summary>Bytes queued for one connection before the server drops it (a message bigger than this still goes
    /// out when nothing else is queued). With <see cref="MaxConnectionsPerAddress"/> it bounds what one address
    /// can make the server hold.</summary>
    public long MaxQueuedBytesPerConnection { get; set; } = 4L * 1024 * 1024;

    /// <summary>A send to a connection that has not completed within this time drops the connection (its reader
    /// stopped reading and the socket buffers are full).</summary>
    public TimeSpan SendStallTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Messages that are not signaling messages at all (not JSON, no string type, unknown type) one connection
    /// may send at once; after these, ten a second. Each costs one plus one per 16 KiB of its size. More closes the
    /// connection (1008).</summary>
    public int MalformedMessageAllowance { get; set; } = 100;

    /// <summary>Open TCP connections (HTTP and WebSocket) from one remote address; more are answered 503 and closed.
    /// 0 = no cap. The default leaves room for a lab behind one NAT address (dozens of workers and clients).</summary>
    public int MaxConnectionsPerAddress { get; set; } = 256;

    /// <summary>Whether loopback connections are exempt from <see cref="MaxConnectionsPerAddress"/>: everything on this
    /// machine is one address, and the scale benchmarks run 10,000 peers over loopback.</summary>
    public bool ExemptLoopbackFromConnectionCap { get; set; } = true;

    /// <summary>Limits, timings and retention of the room job queue and job records (issue 12).</summary>
    public Jobs.JobQueueOptions Jobs { get; set; } = new();

    /// <summary>Settings of the live monitor served on the same port (/monitor, /api/rooms/{id}/state|events).</summary>
    public Monitor.MonitorOptions Monitor { get; set; } = new();

    public ILogSink Log { get; set; } = Protocol.Logging.Log.Null;

    /// <summary>&lt;LocalApplicationData&gt;/SleapRtc/rooms.db</summary>
    public static string DefaultDatabasePath
        => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "SleapRtc", "rooms.db");
}
