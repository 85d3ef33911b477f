using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// A real peer connection seen through a test transport that changes only how an offer is accepted (its SDP rewritten,
/// its path routed through a relay); everything else is the real connection's. One place to follow IPeerConnection.
/// </summary>
internal abstract class ForwardingPeerConnection(IPeerConnection real) : IPeerConnection
{
    protected IPeerConnection Real => real;

    public PeerConnectionState State => real.State;
    public Exception? Error => real.Error;
    public IceCandidatePairInfo? SelectedCandidatePair => real.SelectedCandidatePair;
    public DtlsFingerprints? CertificateFingerprints => real.CertificateFingerprints;
    public IReadOnlyList<IceCandidatePairReport> CandidatePairs => real.CandidatePairs;
    public event Action<PeerConnectionState>? StateChanged { add => real.StateChanged += value; remove => real.StateChanged -= value; }
    public event Action<IDataChannel>? DataChannelOpened { add => real.DataChannelOpened += value; remove => real.DataChannelOpened -= value; }
    public Task<string> CreateOfferAsync(CancellationToken cancellationToken) => real.CreateOfferAsync(cancellationToken);
    public Task AcceptAnswerAsync(string answerSdp, CancellationToken cancellationToken) => real.AcceptAnswerAsync(answerSdp, cancellationToken);
    public void AddRemoteCandidate(string candidate) => real.AddRemoteCandidate(candidate);
    public Task<IDataChannel> OpenDataChannelAsync(string label, CancellationToken cancellationToken) => real.OpenDataChannelAsync(label, cancellationToken);
    public ValueTask DisposeAsync() => real.DisposeAsync();

    public abstract Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken);
}
