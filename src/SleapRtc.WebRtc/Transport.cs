namespace SleapRtc.WebRtc;

// The transport seam the rest of the product uses. Worker and client code depend only on these
// interfaces, so another data-channel implementation can be swapped in without touching them.

/// <summary>Creates peer connections. The managed stack's implementation is <c>RtcPeerConnectionFactory</c>.</summary>
public interface IPeerConnectionFactory
{
    IPeerConnection Create(PeerConnectionOptions options);
}

public sealed class PeerConnectionOptions
{
    /// <summary>STUN server URLs ("stun:host:port"); never an outside server unless the user configured one.</summary>
    public IReadOnlyList<string> StunServers { get; init; } = Array.Empty<string>();
    /// <summary>Offer loopback host candidates too (tests, single-machine use).</summary>
    public bool IncludeLoopback { get; init; }
    /// <summary>Restrict gathering to these local addresses (tests inside network namespaces).</summary>
    public IReadOnlyList<System.Net.IPAddress>? LocalAddresses { get; init; }
    /// <summary>Largest message the local side accepts, advertised as a=max-message-size.</summary>
    public int MaxMessageSize { get; init; } = 262144;
}

public enum PeerConnectionState { New, Connecting, Connected, Disconnected, Failed, Closed }

/// <summary>A data-channel-only WebRTC session with non-trickle offer/answer (classic peers require complete SDPs).</summary>
public interface IPeerConnection : IAsyncDisposable
{
    PeerConnectionState State { get; }
    event Action<PeerConnectionState>? StateChanged;

    /// <summary>Raised on the answering side when the remote opens a channel.</summary>
    event Action<IDataChannel>? DataChannelOpened;

    /// <summary>Gathers candidates, then returns the complete offer SDP.</summary>
    Task<string> CreateOfferAsync(CancellationToken cancellationToken);

    /// <summary>Applies a remote offer, gathers, and returns the complete answer SDP in the form the offer used.</summary>
    Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken);

    /// <summary>Applies the remote answer to our offer; connection establishment starts.</summary>
    Task AcceptAnswerAsync(string answerSdp, CancellationToken cancellationToken);

    /// <summary>Adds a trickled remote candidate ("candidate:..." line); optional for peers that trickle.</summary>
    void AddRemoteCandidate(string candidate);

    /// <summary>Opens an ordered reliable channel (offerer side) and completes when it is open.</summary>
    Task<IDataChannel> OpenDataChannelAsync(string label, CancellationToken cancellationToken);

    /// <summary>
    /// The SHA-256 fingerprints of our DTLS certificate and of the one the peer presented in the handshake; null until
    /// the handshake completed. What the room-token channel binding proves (the SDP's fingerprints come through the
    /// signaling server and prove nothing about who is at the other end).
    /// </summary>
    DtlsFingerprints? CertificateFingerprints { get; }

    /// <summary>Every ICE candidate pair checked so far, with its state and which one carries the traffic (diagnostics).</summary>
    IReadOnlyList<CandidatePairReport> CandidatePairs { get; }
}

/// <summary>
/// One ICE candidate pair as a diagnostic sees it. Types are the candidates' ("host", "srflx", "prflx", "relay");
/// <see cref="State"/> is "Waiting", "InProgress", "Succeeded" or "Failed"; <see cref="Selected"/> marks the pair
/// that carries the connection.
/// </summary>
public sealed record CandidatePairReport(string LocalAddress, string LocalType, string RemoteAddress, string RemoteType, string State, bool Selected)
{
    /// <summary>The path the pair takes: relay when either end relays, else srflx when either end is reflexive, else host.</summary>
    public string Path => LocalType == "relay" || RemoteType == "relay" ? "relay"
        : LocalType is "srflx" or "prflx" || RemoteType is "srflx" or "prflx" ? "srflx" : "host";
}

/// <summary>SHA-256 fingerprints (32 bytes each) of the two certificates of one DTLS association.</summary>
public sealed record DtlsFingerprints(byte[] Local, byte[] Remote);

public enum DataChannelState { Connecting, Open, Closing, Closed }

/// <summary>One message as received: text (PPID 51/56) or binary (PPID 53/57).</summary>
public readonly struct DataChannelMessage
{
    public DataChannelMessage(string text) { Text = text; Binary = default; }
    public DataChannelMessage(ReadOnlyMemory<byte> binary) { Text = null; Binary = binary; }
    public string? Text { get; }
    public ReadOnlyMemory<byte> Binary { get; }
    public bool IsText => Text is not null;
}

public interface IDataChannel : IAsyncDisposable
{
    string Label { get; }
    ushort StreamId { get; }
    DataChannelState State { get; }
    /// <summary>Bytes queued by Send but not yet acknowledged.</summary>
    long BufferedAmount { get; }
    long BufferedAmountLowThreshold { get; set; }
    /// <summary>Largest message the remote accepts.</summary>
    int MaxMessageSize { get; }

    event Action? BufferedAmountLow;
    /// <summary>Raised in order on one thread; binary memory is valid only during the call.</summary>
    event Action<DataChannelMessage>? MessageReceived;
    /// <summary>Raised once; the exception is null for an orderly close.</summary>
    event Action<Exception?>? Closed;

    void Send(string text);
    void Send(ReadOnlySpan<byte> data);

    /// <summary>Sends and then waits until BufferedAmount is at or below <paramref name="highWaterMark"/>.</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> data, long highWaterMark, CancellationToken cancellationToken);

    Task CloseAsync(CancellationToken cancellationToken);
}
