using SleapRtc.WebRtc.Dtls;

namespace SleapRtc.WebRtc.PeerConnection;

/// <summary>Timers and limits of the managed stack that the product normally leaves at their defaults.</summary>
public sealed class RtcPeerConnectionSettings
{
    /// <summary>Give up when no candidate pair is nominated within this time.</summary>
    public TimeSpan IceConnectTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>RFC 7675 consent check interval (randomised ±20 %).</summary>
    public TimeSpan ConsentInterval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>RFC 7675: the peer is gone after this long without a consent response.</summary>
    public TimeSpan ConsentTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan DtlsHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Longest wait for the SCTP association after DTLS is up.</summary>
    public TimeSpan SctpConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Longest a graceful SCTP shutdown may take on dispose before the association is aborted.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Creates managed peer connections. One certificate per factory (RFC 8827 allows reuse; generating one
/// costs ~1.5 ms warm, 60 ms cold, which would otherwise land on every connect).
/// </summary>
public sealed class RtcPeerConnectionFactory : IPeerConnectionFactory
{
    private readonly RtcPeerConnectionSettings _settings;
    private readonly Lazy<DtlsCertificate> _certificate = new(DtlsCertificate.Generate, LazyThreadSafetyMode.ExecutionAndPublication);

    public RtcPeerConnectionFactory(RtcPeerConnectionSettings? settings = null) => _settings = settings ?? new RtcPeerConnectionSettings();

    public IPeerConnection Create(PeerConnectionOptions options) => CreateConnection(options);

    public RtcPeerConnection CreateConnection(PeerConnectionOptions options) =>
        new(options ?? throw new ArgumentNullException(nameof(options)), _settings, _certificate.Value);
}
