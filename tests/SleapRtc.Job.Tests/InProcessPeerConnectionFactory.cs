using System.Collections.Concurrent;
using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// TEST-ONLY transport: peer connections whose "SDP" is a token naming an in-process channel pair. Offers and
/// answers still travel through the real signaling server, so discovery, reservation and busy refusal are
/// exercised for real; only ICE/DTLS/SCTP are replaced. End-to-end tests over the real WebRTC stack use
/// its factory instead.
/// </summary>
internal sealed class InProcessPeerConnectionFactory : IPeerConnectionFactory
{
    private const string TokenPrefix = "a=x-inproc:";
    private readonly ConcurrentDictionary<string, Connection> _offers = new();
    private readonly ConcurrentBag<InProcessChannelPair> _pairs = new();

    public IPeerConnection Create(PeerConnectionOptions options) => new Connection(this);

    /// <summary>Every connection made so far drops at once, as if the network vanished.</summary>
    public void SeverAll()
    {
        foreach (var pair in _pairs) pair.Sever();
    }

    private sealed class Connection : IPeerConnection
    {
        private readonly InProcessPeerConnectionFactory _factory;
        private string? _token;
        private InProcessChannelPair? _pair;
        private Connection? _remote;

        public Connection(InProcessPeerConnectionFactory factory) => _factory = factory;

        public PeerConnectionState State { get; private set; } = PeerConnectionState.New;
        public event Action<PeerConnectionState>? StateChanged;
        public event Action<IDataChannel>? DataChannelOpened;

        public Task<string> CreateOfferAsync(CancellationToken cancellationToken)
        {
            _token = Guid.NewGuid().ToString("N");
            _factory._offers[_token] = this;
            SetState(PeerConnectionState.Connecting);
            return Task.FromResult("v=0\r\n" + TokenPrefix + _token + "\r\n");
        }

        public Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken)
        {
            var token = ReadToken(offerSdp);
            if (!_factory._offers.TryRemove(token, out var offerer)) throw new InvalidOperationException("unknown in-process offer");
            _token = token;
            _remote = offerer;
            offerer._remote = this;
            var pair = new InProcessChannelPair();
            _factory._pairs.Add(pair);
            _pair = pair;
            offerer._pair = pair;
            pair.Worker.Closed += _ => SetState(PeerConnectionState.Closed);
            pair.Client.Closed += _ => offerer.SetState(PeerConnectionState.Closed);
            SetState(PeerConnectionState.Connecting);
            return Task.FromResult("v=0\r\n" + TokenPrefix + token + "\r\n");
        }

        public Task AcceptAnswerAsync(string answerSdp, CancellationToken cancellationToken)
        {
            if (ReadToken(answerSdp) != _token) throw new InvalidOperationException("answer for another offer");
            return Task.CompletedTask;
        }

        public void AddRemoteCandidate(string candidate) { }

        public Task<IDataChannel> OpenDataChannelAsync(string label, CancellationToken cancellationToken)
        {
            var pair = _pair ?? throw new InvalidOperationException("no answer applied");
            SetState(PeerConnectionState.Connected);
            _remote!.SetState(PeerConnectionState.Connected);
            _remote.DataChannelOpened?.Invoke(pair.Worker);
            return Task.FromResult<IDataChannel>(pair.Client);
        }

        public async ValueTask DisposeAsync()
        {
            if (_token is not null) _factory._offers.TryRemove(_token, out _);
            if (_pair is not null) await _pair.DisposeAsync();
            SetState(PeerConnectionState.Closed);
        }

        private void SetState(PeerConnectionState state)
        {
            if (State == state || State == PeerConnectionState.Closed) return;
            State = state;
            StateChanged?.Invoke(state);
        }

        private static string ReadToken(string sdp)
        {
            var line = sdp.Split("\r\n").FirstOrDefault(l => l.StartsWith(TokenPrefix, StringComparison.Ordinal))
                ?? throw new InvalidOperationException("not an in-process SDP");
            return line.Substring(TokenPrefix.Length);
        }
    }
}
