using System.Security.Cryptography;
using SleapRtc.WebRtc.Dtls;
using SleapRtc.WebRtc.Ice;
using SleapRtc.WebRtc.Sctp;
using SleapRtc.WebRtc.Sdp;

namespace SleapRtc.WebRtc.PeerConnection;

/// <summary>
/// The managed peer connection: ICE (<see cref="IceAgent"/>) → DTLS (<see cref="DtlsSession"/>) →
/// SCTP (<see cref="SctpAssociation"/>) for a data-channel-only session with complete (non-trickle) SDPs.
/// The offerer controls ICE and offers a=setup:actpass; the answerer takes the DTLS client role when it
/// may (as Chromium does). Disposing releases sockets, threads and timers of every layer.
/// </summary>
public sealed class RtcPeerConnection : IPeerConnection
{
    private const int LocalSctpPort = 5000;

    private readonly PeerConnectionOptions _options;
    private readonly RtcPeerConnectionSettings _settings;
    private readonly DtlsCertificate _certificate;
    private readonly object _gate = new();
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource<SctpAssociation> _association = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _iceConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IceAgent? _ice;
    private DtlsSession? _dtls;
    private SessionDescription? _localDescription;
    private SessionDescription? _remoteDescription;
    private Task? _connectTask;
    private bool _disposed;

    internal RtcPeerConnection(PeerConnectionOptions options, RtcPeerConnectionSettings settings, DtlsCertificate certificate)
    {
        _options = options;
        _settings = settings;
        _certificate = certificate;
    }

    public PeerConnectionState State { get; private set; } = PeerConnectionState.New;

    public event Action<PeerConnectionState>? StateChanged;

    public event Action<IDataChannel>? DataChannelOpened;

    /// <summary>The reason the connection failed, if it did.</summary>
    public Exception? Error { get; private set; }

    /// <summary>DTLS role taken once the remote description is applied.</summary>
    public DtlsRole? DtlsRole { get; private set; }

    internal IceAgent? IceAgent => _ice;

    public IReadOnlyList<IceCandidatePairReport> CandidatePairs => _ice?.PairReports() ?? Array.Empty<IceCandidatePairReport>();

    public DtlsFingerprints? CertificateFingerprints =>
        _dtls is { IsEstablished: true, RemoteFingerprint: { } remote } dtls ? new DtlsFingerprints(dtls.LocalFingerprint, remote) : null;

    public IceCandidatePairInfo? SelectedCandidatePair => _ice?.SelectedPair;

    /// <summary>The DTLS session SCTP runs over (tests speak through it as the authenticated peer).</summary>
    internal DtlsSession? DtlsSession => _dtls;

    internal Task<SctpAssociation> Association => _association.Task;

    public async Task<string> CreateOfferAsync(CancellationToken cancellationToken)
    {
        var ice = CreateAgent(controlling: true);
        var candidates = await ice.GatherAsync(cancellationToken).ConfigureAwait(false);
        var offer = NewLocalDescription(SdpSetup.ActPass, candidates);
        lock (_gate) _localDescription = offer;
        return offer.ToSdp();
    }

    public async Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken)
    {
        var offer = SessionDescription.Parse(offerSdp);
        // The answerer is the DTLS client unless the offer insists on being it (RFC 8842 §5.3).
        var (ourSetup, role) = offer.Setup switch
        {
            SdpSetup.Active => (SdpSetup.Passive, Dtls.DtlsRole.Server),
            SdpSetup.HoldConn => throw new SdpException("a=setup:holdconn offers no connection"),
            _ => (SdpSetup.Active, Dtls.DtlsRole.Client),
        };
        var ice = CreateAgent(controlling: false);
        var candidates = await ice.GatherAsync(cancellationToken).ConfigureAwait(false);
        var answer = NewLocalDescription(ourSetup, candidates);
        answer.Mid = offer.Mid;
        answer.LegacySctpMap = offer.LegacySctpMap;
        lock (_gate)
        {
            _localDescription = answer;
            _remoteDescription = offer;
        }
        ApplyRemote(offer, role);
        return answer.ToSdp();
    }

    public Task AcceptAnswerAsync(string answerSdp, CancellationToken cancellationToken)
    {
        var answer = SessionDescription.Parse(answerSdp);
        lock (_gate)
        {
            if (_localDescription is null || _remoteDescription is not null) throw new InvalidOperationException("no offer of ours is waiting for an answer");
            _remoteDescription = answer;
        }
        // An answer's active means the answerer is DTLS client; actpass is invalid there and read as passive.
        var role = answer.Setup == SdpSetup.Active ? Dtls.DtlsRole.Server : Dtls.DtlsRole.Client;
        ApplyRemote(answer, role);
        return Task.CompletedTask;
    }

    public void AddRemoteCandidate(string candidate)
    {
        if (!SdpCandidate.TryParse(candidate, out var parsed)) return;
        _ice?.AddRemoteCandidate(parsed!);
    }

    public async Task<IDataChannel> OpenDataChannelAsync(string label, CancellationToken cancellationToken)
    {
        var association = await _association.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await association.OpenChannelAsync(label, cancellationToken).ConfigureAwait(false);
    }

    private IceAgent CreateAgent(bool controlling)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_ice is not null) throw new InvalidOperationException("a description was already created for this connection");
            _ice = new IceAgent(new IceAgentOptions
            {
                IncludeLoopback = _options.IncludeLoopback,
                LocalAddresses = _options.LocalAddresses,
                StunServers = _options.StunServers.Concat(_options.IceServers.SelectMany(s => s.Urls)
                    .Where(u => u.StartsWith("stun:", StringComparison.OrdinalIgnoreCase))).Distinct().ToArray(),
                TurnServers = _options.IceServers.Where(s => s.Urls.Any(Turn.TurnServerUrl.IsTurnUrl)).ToArray(),
                RelayOnly = _options.RelayOnly,
                Turn = new Turn.TurnClientOptions { TrustedCertificates = _options.TurnTrustedCertificates },
                ConnectTimeout = _settings.IceConnectTimeout,
                ConsentInterval = _settings.ConsentInterval,
                ConsentTimeout = _settings.ConsentTimeout,
            }, controlling);
            var ice = _ice;
            // The DTLS session exists before checks start so that a ClientHello racing nomination is queued.
            _dtls = new DtlsSession(_certificate, ice.Send, ice);
            ice.DtlsPacketReceived = _dtls.DeliverFromNetwork;
            ice.StateChanged += OnIceStateChanged;
            return ice;
        }
    }

    private SessionDescription NewLocalDescription(SdpSetup setup, IReadOnlyList<SdpCandidate> candidates)
    {
        var description = new SessionDescription
        {
            SessionId = (ulong)RandomNumberGenerator.GetInt32(int.MaxValue) << 20,
            IceUfrag = _ice!.LocalUfrag,
            IcePwd = _ice.LocalPassword,
            Fingerprint = _certificate.Fingerprint,
            Setup = setup,
            SctpPort = LocalSctpPort,
            MaxMessageSize = _options.MaxMessageSize,
            EndOfCandidates = true,
        };
        description.Candidates.AddRange(candidates);
        return description;
    }

    private void ApplyRemote(SessionDescription remote, DtlsRole role)
    {
        if (!remote.FingerprintAlgorithm.Equals("sha-256", StringComparison.OrdinalIgnoreCase))
            throw new SdpException($"unsupported fingerprint hash '{remote.FingerprintAlgorithm}'");
        var ice = _ice!;
        DtlsRole = role;
        ice.SetRemoteDescription(remote.IceUfrag, remote.IcePwd, remote.Candidates, remote.IceLite);
        SetState(PeerConnectionState.Connecting);
        ice.Start();
        _connectTask = Task.Run(() => ConnectAsync(remote, role));
    }

    private void OnIceStateChanged(IceConnectionState state)
    {
        switch (state)
        {
            case IceConnectionState.Connected:
                _iceConnected.TrySetResult();
                break;
            case IceConnectionState.Failed:
                // A relay that could not be allocated is the likely reason when nothing direct works: say why.
                var problems = _ice?.GatheringProblems ?? Array.Empty<string>();
                var error = new IOException(_iceConnected.Task.IsCompleted
                    ? "ICE consent lost: the peer stopped answering"
                    : "ICE found no working candidate pair" + (problems.Count == 0 ? "" : "; " + string.Join("; ", problems)));
                _iceConnected.TrySetException(error);
                // Once data flows, the transport below the association is gone: tell SCTP (channels close).
                _dtls?.ReportClosed(error);
                Fail(error);
                break;
        }
    }

    private async Task ConnectAsync(SessionDescription remote, DtlsRole role)
    {
        var cancellation = _lifetime.Token;
        try
        {
            await _iceConnected.Task.WaitAsync(cancellation).ConfigureAwait(false);
            var dtls = _dtls!;
            await dtls.HandshakeAsync(role, remote.Fingerprint, _settings.DtlsHandshakeTimeout, cancellation).ConfigureAwait(false);
            var association = new SctpAssociation(dtls, new SctpAssociationOptions
            {
                IsDtlsClient = role == Dtls.DtlsRole.Client,
                LocalPort = LocalSctpPort,
                RemotePort = (ushort)remote.SctpPort,
                RemoteMaxMessageSize = remote.MaxMessageSize ?? SessionDescription.DefaultMaxMessageSize,
                LocalMaxMessageSize = _options.MaxMessageSize,
            });
            association.ChannelOpened += channel => DataChannelOpened?.Invoke(channel);
            association.Closed += OnAssociationClosed;
            lock (_gate)
            {
                if (_disposed) throw new OperationCanceledException(cancellation);
            }
            dtls.BatchEnd = association.OnDatagramBatchEnd;
            dtls.StartReceiving(association);
            _association.TrySetResult(association);
            association.Start();
            await association.Established.WaitAsync(_settings.SctpConnectTimeout, cancellation).ConfigureAwait(false);
            SetState(PeerConnectionState.Connected);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            _association.TrySetCanceled(cancellation);
        }
        catch (Exception ex)
        {
            _association.TrySetException(ex);
            Fail(ex);
        }
    }

    private void OnAssociationClosed(Exception? error)
    {
        if (error is null) SetState(PeerConnectionState.Closed);
        else Fail(error);
    }

    private void Fail(Exception error)
    {
        lock (_gate)
        {
            if (_disposed || State is PeerConnectionState.Failed or PeerConnectionState.Closed) return;
            Error = error;
        }
        _association.TrySetException(error);
        SetState(PeerConnectionState.Failed);
    }

    private void SetState(PeerConnectionState state)
    {
        lock (_gate)
        {
            if (State == state || State is PeerConnectionState.Closed) return;
            if (State == PeerConnectionState.Failed && state != PeerConnectionState.Closed) return;
            State = state;
        }
        StateChanged?.Invoke(state);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _lifetime.Cancel();
        if (_association.Task.IsCompletedSuccessfully)
        {
            var association = _association.Task.Result;
            using var timeout = new CancellationTokenSource(_settings.ShutdownTimeout);
            try
            {
                await association.ShutdownAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                association.Abort("peer connection disposed");
            }
            await association.DisposeAsync().ConfigureAwait(false);
        }
        _association.TrySetCanceled();
        _dtls?.Dispose();
        _ice?.Dispose();
        if (_connectTask is not null)
        {
            try
            {
                await _connectTask.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Its outcome no longer matters.
            }
        }
        lock (_gate) State = PeerConnectionState.Closed;
        StateChanged?.Invoke(PeerConnectionState.Closed);
        _lifetime.Dispose();
    }
}
