namespace SleapRtc.WebRtc.Sctp;

/// <summary>Settings of one SCTP association over DTLS. Defaults follow RFC 9260 and dcSCTP where they differ (noted).</summary>
public sealed class SctpAssociationOptions
{
    /// <summary>Local SCTP port (a=sctp-port of our SDP; everyone uses 5000).</summary>
    public ushort LocalPort { get; init; } = 5000;
    /// <summary>Remote SCTP port (a=sctp-port of the remote SDP).</summary>
    public ushort RemotePort { get; init; } = 5000;
    /// <summary>True when this side is the DTLS client: it then opens channels on even stream ids (RFC 8832 §6).</summary>
    public bool IsDtlsClient { get; init; }
    /// <summary>Largest message the remote accepts (its a=max-message-size; 0 there means unlimited, absent 65536).</summary>
    public int RemoteMaxMessageSize { get; init; } = 65536;
    /// <summary>Largest inbound message we reassemble; should be what our SDP advertises. Larger ones abort the association.</summary>
    public int LocalMaxMessageSize { get; init; } = 262144;
    /// <summary>Receive buffer advertised as a_rwnd. dcSCTP uses 5 MiB; 4 MiB keeps a 1 GiB transfer well fed on loopback.</summary>
    public int ReceiveWindow { get; init; } = 4 * 1024 * 1024;
    /// <summary>Initial retransmission timeout (RFC 9260: 1 s; dcSCTP 500 ms).</summary>
    public TimeSpan RtoInitial { get; init; } = TimeSpan.FromMilliseconds(1000);
    /// <summary>Lower bound for the RTO. RFC 9260 says 1 s; dcSCTP uses 400 ms; 200 ms recovers faster on loopback and LAN.</summary>
    public TimeSpan RtoMin { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan RtoMax { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Association.Max.Retrans: consecutive T3/heartbeat failures before the peer is declared gone.</summary>
    public int MaxRetransmissions { get; init; } = 10;
    /// <summary>Max.Init.Retransmits for INIT and COOKIE ECHO.</summary>
    public int MaxInitRetransmissions { get; init; } = 8;
    /// <summary>Idle time after which a HEARTBEAT is sent (RFC 9260 and dcSCTP: 30 s).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Longest a SACK is delayed (RFC 9260 §6.2: at most 500 ms; 200 ms is common).</summary>
    public TimeSpan DelayedAckTimeout { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>New packets allowed per SACK beyond those it acknowledged (dcSCTP max burst 4).</summary>
    public int MaxBurst { get; init; } = 4;
    /// <summary>Initial congestion window in packets (dcSCTP: 10 MTU).</summary>
    public int InitialCwndPackets { get; init; } = 10;
    /// <summary>Lifetime of the state cookie.</summary>
    public TimeSpan CookieLifetime { get; init; } = TimeSpan.FromSeconds(60);
}

public enum SctpAssociationState { Closed, CookieWait, CookieEchoed, Established, ShutdownPending, ShutdownSent, ShutdownReceived, ShutdownAckSent }

/// <summary>The association ended abnormally (ABORT, retransmission limit, protocol violation, transport loss).</summary>
public sealed class SctpAssociationException : Exception
{
    public SctpAssociationException(string message) : base(message) { }
    public SctpAssociationException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>Counters for tests and diagnostics; a snapshot taken under the association lock.</summary>
public sealed record SctpAssociationStatistics
{
    public long PacketsSent { get; init; }
    public long PacketsReceived { get; init; }
    public long DataChunksSent { get; init; }
    public long DataChunksRetransmitted { get; init; }
    public long FastRetransmits { get; init; }
    public long T3Expirations { get; init; }
    public long SacksSent { get; init; }
    public long SacksReceived { get; init; }
    public long DuplicateTsnsReceived { get; init; }
    public long ChecksumErrors { get; init; }
    public long PacketsDiscarded { get; init; }
    public long HeartbeatsSent { get; init; }
    /// <summary>Exceptions caught inside packet or timer handling (each closes the association); should stay 0.</summary>
    public long InternalErrors { get; init; }
    public long CongestionWindow { get; init; }
    /// <summary>Bytes of DATA chunks (with headers) sent and not yet acknowledged.</summary>
    public long BytesInFlight { get; init; }
    /// <summary>User bytes queued and not yet given a TSN.</summary>
    public long QueuedBytes { get; init; }
    /// <summary>The peer's window as last estimated (its a_rwnd minus what is in flight).</summary>
    public long PeerReceiveWindow { get; init; }
    public long SlowStartThreshold { get; init; }
    public double SmoothedRttMs { get; init; }
    /// <summary>Smallest RTT sample: the path without queues (whether a loss is congestion: SctpSender.PathUncongested).</summary>
    public double MinRttMs { get; init; }
    public double RtoMs { get; init; }
}
