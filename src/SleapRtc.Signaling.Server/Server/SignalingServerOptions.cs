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

    /// <summary>Failed registrations per address answered at once before answers get delayed.</summary>
    public int FreeFailedRegistrations { get; set; } = 5;

    /// <summary>First delay once the free failures are used; doubles per failure up to <see cref="MaxFailedRegistrationDelay"/>.</summary>
    public TimeSpan FailedRegistrationDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxFailedRegistrationDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether to answer STUN binding requests on UDP (same port number as HTTP when free).</summary>
    public bool EnableStun { get; set; } = true;

    /// <summary>Messages queued for one slow connection before the server drops it.</summary>
    public int MaxQueuedMessagesPerConnection { get; set; } = 8192;

    /// <summary>Settings of the live monitor served on the same port (/monitor, /api/rooms/{id}/state|events).</summary>
    public Monitor.MonitorOptions Monitor { get; set; } = new();

    public ILogSink Log { get; set; } = Protocol.Logging.Log.Null;

    /// <summary>&lt;LocalApplicationData&gt;/SleapRtc/rooms.db</summary>
    public static string DefaultDatabasePath
        => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "SleapRtc", "rooms.db");
}
