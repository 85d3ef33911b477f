using SleapRtc.Interop;
using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The real transport, with every connection a worker accepts routed through its own UDP relay on 127.0.0.1 (the
/// interop harness's <see cref="LossyUdpRelay"/>, unimpaired): ICE, DTLS and SCTP cross the relay and nothing else,
/// so <see cref="CutLinks"/> (the relays closed, their sockets gone) drops the link for real, mid-flight, as a
/// network that goes away would; new connections get a new relay.
/// </summary>
internal sealed class RelayedTransport(IPeerConnectionFactory inner, Impairment? impairment = null) : IPeerConnectionFactory, IDisposable
{
    private static readonly Impairment Clean = new(0, 0, TimeSpan.Zero);
    private readonly Impairment _impairment = impairment ?? Clean;
    private readonly List<LossyUdpRelay> _relays = new();

    /// <summary>How many connections were routed (each through a relay of its own).</summary>
    public int Connections { get { lock (_relays) return _relays.Count + _cut; } }
    private int _cut;

    public IPeerConnection Create(PeerConnectionOptions options) => new Peer(inner.Create(options), this);

    /// <summary>Closes every live relay: the connections through them lose their path at once.</summary>
    public void CutLinks()
    {
        LossyUdpRelay[] live;
        lock (_relays)
        {
            live = _relays.ToArray();
            _cut += live.Length;
            _relays.Clear();
        }
        foreach (var relay in live) relay.Dispose();
    }

    public void Dispose() => CutLinks();

    private LossyUdpRelay NewRelay()
    {
        var relay = new LossyUdpRelay(_impairment, seed: 16);
        lock (_relays) _relays.Add(relay);
        return relay;
    }

    private sealed class Peer(IPeerConnection real, RelayedTransport owner) : ForwardingPeerConnection(real)
    {
        /// <summary>The answering side (the worker) routes both directions: it reaches the offerer through the relay's
        /// B side, and the offerer reaches it through the A side.</summary>
        public override async Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken)
        {
            var relay = owner.NewRelay();
            var answer = await Real.AcceptOfferAsync(LossyUdpRelay.RouteThrough(offerSdp, relay.EndpointForB), cancellationToken).ConfigureAwait(false);
            return LossyUdpRelay.RouteThrough(answer, relay.EndpointForA);
        }
    }
}
