namespace SleapRtc.Interop;

/// <summary>
/// Two fixtures in separate network namespaces joined only by an in-process <see cref="LossyUdpRelay"/>: every
/// packet (ICE, DTLS, SCTP) crosses the impaired path. The offerer is side A, the answerer side B.
/// </summary>
public sealed class RelayedPair : IAsyncDisposable
{
    public PeerPair Pair { get; }
    public LossyUdpRelay Relay { get; }

    private RelayedPair(PeerPair pair, LossyUdpRelay relay)
    {
        Pair = pair;
        Relay = relay;
    }

    /// <summary>Starts both fixtures, the relay between their namespaces, and connects them through it.</summary>
    public static async Task<RelayedPair> ConnectAsync(FixtureCommand offerer, FixtureCommand answerer,
        Impairment offererToAnswerer, Impairment answererToOfferer, int seed)
    {
        var pair = await PeerPair.StartAsync(PinToOnlyAddress(offerer), PinToOnlyAddress(answerer), separateNamespaces: true)
            .ConfigureAwait(false);
        LossyUdpRelay? relay = null;
        try
        {
            relay = new LossyUdpRelay(offererToAnswerer, answererToOfferer, seed, pair.OffererNetwork, pair.AnswererNetwork);
            var route = relay;
            // The answerer reaches the offerer through EndpointForB, the offerer the answerer through EndpointForA.
            await pair.ConnectAsync(
                rewriteOffer: sdp => LossyUdpRelay.RouteThrough(sdp, route.EndpointForB),
                rewriteAnswer: sdp => LossyUdpRelay.RouteThrough(sdp, route.EndpointForA)).ConfigureAwait(false);
            return new RelayedPair(pair, relay);
        }
        catch
        {
            relay?.Dispose();
            await pair.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The relay latches one source address per side, so each peer must send from the namespace's one address, not
    /// also from 127.0.0.1 (ours: PEER_LOCAL; libdatachannel: PEER_BIND; libwebrtc never gathers loopback).
    /// </summary>
    private static FixtureCommand PinToOnlyAddress(FixtureCommand command)
    {
        var address = NetworkNamespace.OnlyAddress.ToString();
        return command.WithEnvironment("PEER_LOCAL", address).WithEnvironment("PEER_BIND", address);
    }

    public async ValueTask DisposeAsync()
    {
        await Pair.DisposeAsync().ConfigureAwait(false);
        Relay.Dispose();
    }
}
