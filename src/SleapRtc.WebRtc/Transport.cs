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
    /// <summary>ICE servers with credentials (the signaling server's "ice_servers"): each turn:/turns: URL gives a
    /// relayed candidate; stun: URLs among them are used like <see cref="StunServers"/>.</summary>
    public IReadOnlyList<IceServer> IceServers { get; init; } = Array.Empty<IceServer>();
    /// <summary>Certificates trusted for turns: servers besides the system's roots (a lab CA or coturn's self-signed
    /// certificate); see <see cref="IceServer.LoadTrustedCertificates"/>.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? TurnTrustedCertificates { get; init; }
    /// <summary>Offer loopback host candidates too (tests, single-machine use).</summary>
    public bool IncludeLoopback { get; init; }
    /// <summary>Restrict gathering to these local addresses (tests inside network namespaces).</summary>
    public IReadOnlyList<System.Net.IPAddress>? LocalAddresses { get; init; }
    /// <summary>Offer relayed candidates only (RTCConfiguration iceTransportPolicy "relay"): hides this machine's
    /// addresses from the peer and always sends through TURN (benchmarks compare it with direct).</summary>
    public bool RelayOnly { get; init; }
    /// <summary>Largest message the local side accepts, advertised as a=max-message-size.</summary>
    public int MaxMessageSize { get; init; } = 262144;
}

/// <summary>One entry of an RTCConfiguration-style ICE server list: URLs sharing one username and credential.</summary>
public sealed class IceServer
{
    /// <summary>Names a PEM or DER file of certificates to trust for turns: servers (the same setting for every
    /// worker and client on the machine); the value of <see cref="LoadTrustedCertificates"/> when no path is given.</summary>
    public const string TrustedCertificatesVariable = "SLEAP_RTC_TURN_CA_FILE";

    public IceServer(IReadOnlyList<string> urls, string? username = null, string? credential = null)
    {
        Urls = urls;
        Username = username;
        Credential = credential;
    }

    public IReadOnlyList<string> Urls { get; }
    public string? Username { get; }
    /// <summary>The password; never logged.</summary>
    public string? Credential { get; }

    /// <summary>The URLs and whether credentials are present; the credential itself is never part of the text.</summary>
    public override string ToString() => string.Join(",", Urls) + (Username is null ? "" : $" (user {Username})");

    /// <summary>
    /// Reads the certificates in <paramref name="path"/> (PEM, possibly several, or one DER file), or in the file named
    /// by SLEAP_RTC_TURN_CA_FILE when <paramref name="path"/> is null; null when neither is set.
    /// </summary>
    public static System.Security.Cryptography.X509Certificates.X509Certificate2Collection? LoadTrustedCertificates(string? path = null)
    {
        path ??= Environment.GetEnvironmentVariable(TrustedCertificatesVariable);
        if (string.IsNullOrWhiteSpace(path)) return null;
        var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        var text = File.ReadAllText(path);
        const string Begin = "-----BEGIN CERTIFICATE-----", End = "-----END CERTIFICATE-----";
        var start = text.IndexOf(Begin, StringComparison.Ordinal);
        if (start < 0)
        {
            collection.Add(new System.Security.Cryptography.X509Certificates.X509Certificate2(File.ReadAllBytes(path)));
            return collection;
        }
        while (start >= 0)
        {
            var end = text.IndexOf(End, start, StringComparison.Ordinal);
            if (end < 0) break;
            var body = text.Substring(start + Begin.Length, end - start - Begin.Length);
            collection.Add(new System.Security.Cryptography.X509Certificates.X509Certificate2(Convert.FromBase64String(body)));
            start = text.IndexOf(Begin, end, StringComparison.Ordinal);
        }
        if (collection.Count == 0) throw new InvalidDataException($"{path} holds no certificate");
        return collection;
    }
}

/// <summary>Which local and remote candidates carry a connection's data (types host, srflx, prflx or relay).</summary>
public sealed class IceCandidatePairInfo
{
    public IceCandidatePairInfo(string localType, string localAddress, string remoteType, string remoteAddress, string? relayProtocol)
    {
        LocalType = localType;
        LocalAddress = localAddress;
        RemoteType = remoteType;
        RemoteAddress = remoteAddress;
        RelayProtocol = relayProtocol;
    }

    public string LocalType { get; }
    /// <summary>"address:port" of the local candidate (the relayed address for a relay).</summary>
    public string LocalAddress { get; }
    public string RemoteType { get; }
    public string RemoteAddress { get; }
    /// <summary>How this machine reaches its TURN server ("udp", "tcp" or "tls") when the local candidate is a relay.</summary>
    public string? RelayProtocol { get; }
    public bool IsRelayed => LocalType == "relay" || RemoteType == "relay";

    /// <summary>E.g. "relay 10.9.0.1:50123 (turn tcp) -> host 10.8.0.2:41000".</summary>
    public override string ToString() =>
        $"{LocalType} {LocalAddress}{(RelayProtocol is null ? "" : $" (turn {RelayProtocol})")} -> {RemoteType} {RemoteAddress}";
}

public enum PeerConnectionState { New, Connecting, Connected, Disconnected, Failed, Closed }

/// <summary>A data-channel-only WebRTC session with non-trickle offer/answer (classic peers require complete SDPs).</summary>
public interface IPeerConnection : IAsyncDisposable
{
    PeerConnectionState State { get; }
    event Action<PeerConnectionState>? StateChanged;

    /// <summary>Why the connection failed (ICE found no path, with the TURN servers' reasons; DTLS; SCTP), if it did.</summary>
    Exception? Error { get; }

    /// <summary>The candidate pair ICE selected (which path carries the data); null before it is connected.</summary>
    IceCandidatePairInfo? SelectedCandidatePair { get; }

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
