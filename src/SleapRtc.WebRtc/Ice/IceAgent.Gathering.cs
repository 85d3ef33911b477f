using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using SleapRtc.WebRtc.Sdp;
using SleapRtc.WebRtc.Stun;
using SleapRtc.WebRtc.Turn;

namespace SleapRtc.WebRtc.Ice;

public sealed partial class IceAgent
{
    private readonly Dictionary<(ulong, uint), TaskCompletionSource<StunMessage>> _gatherTransactions = new();
    private readonly CancellationTokenSource _gatherCancel = new();
    private readonly List<string> _gatheringProblems = new();
    private bool _gathered;

    /// <summary>Why a configured TURN server gave no relayed candidate (credentials refused, unreachable...), for error messages.</summary>
    public IReadOnlyList<string> GatheringProblems { get { lock (_gate) return _gatheringProblems.ToArray(); } }

    /// <summary>
    /// Binds one socket per usable IPv4 address (host candidates), then asks the configured STUN servers
    /// for server-reflexive addresses and the TURN servers for relayed ones, all at once. Completes when every
    /// candidate is known (non-trickle SDP).
    /// </summary>
    public async Task<IReadOnlyList<SdpCandidate>> GatherAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_gathered) return _localCandidates.ToArray();
            _gathered = true;
            var index = 0;
            // A relay-only policy (RTCConfiguration iceTransportPolicy "relay") binds no host socket at all.
            foreach (var address in _options.RelayOnly ? Array.Empty<IPAddress>() : SelectLocalAddresses())
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                try
                {
                    socket.ReceiveBufferSize = _options.SocketBufferSize;
                    socket.SendBufferSize = _options.SocketBufferSize;
                    socket.Bind(new IPEndPoint(address, 0));
                }
                catch (SocketException)
                {
                    socket.Dispose();
                    continue;
                }
                var endPoint = (IPEndPoint)socket.LocalEndPoint!;
                // RFC 8445 §5.1.2.1: host type preference 126, earlier addresses preferred.
                var localPreference = (uint)Math.Max(0, 65535 - index++);
                var priority = (126u << 24) | (localPreference << 8) | 255u;
                var host = new SdpCandidate(Foundation("host", address), 1, "udp", priority, address.ToString(), endPoint.Port, "host");
                var local = new LocalSocket(socket, endPoint, host);
                _sockets.Add(local);
                _localCandidates.Add(host);
                local.ReceiveThread = new Thread(() => ReceiveLoop(local)) { IsBackground = true, Name = "ice-receive" };
                local.ReceiveThread.Start();
            }
            // Remote candidates that arrived before gathering (answerer) get paired now.
            var early = _remoteCandidates.ToArray();
            _remoteCandidates.Clear();
            foreach (var candidate in early) AddRemoteCandidateLocked(candidate);
        }
        var relays = _options.TurnServers.Count > 0 ? GatherRelayedAsync(cancellationToken) : Task.CompletedTask;
        if (_options.StunServers.Count > 0) await GatherServerReflexiveAsync(cancellationToken).ConfigureAwait(false);
        await relays.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return _localCandidates.ToArray();
    }

    private IEnumerable<IPAddress> SelectLocalAddresses()
    {
        if (_options.LocalAddresses is { Count: > 0 } explicitAddresses)
            return explicitAddresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork).Distinct().ToArray();
        var found = new List<IPAddress>();
        try
        {
            foreach (var networkInterface in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (networkInterface.OperationalStatus is not (OperationalStatus.Up or OperationalStatus.Unknown)) continue;
                foreach (var unicast in networkInterface.GetIPProperties().UnicastAddresses)
                {
                    var address = unicast.Address;
                    if (address.AddressFamily != AddressFamily.InterNetwork) continue;
                    if (IPAddress.IsLoopback(address) && !_options.IncludeLoopback) continue;
                    if (address.GetAddressBytes() is [169, 254, ..]) continue; // link-local never routes
                    if (!found.Contains(address)) found.Add(address);
                }
            }
        }
        catch (NetworkInformationException)
        {
        }
        if (_options.IncludeLoopback && !found.Contains(IPAddress.Loopback)) found.Add(IPAddress.Loopback);
        // A machine with no usable interface can still talk to itself.
        if (found.Count == 0) found.Add(IPAddress.Loopback);
        // Non-loopback first so they get the higher local preference.
        return found.OrderBy(a => IPAddress.IsLoopback(a) ? 1 : 0).ToArray();
    }

    private static string Foundation(string type, IPAddress baseAddress) =>
        Crc32.Compute(Encoding.ASCII.GetBytes(type + "|" + baseAddress)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Parses "stun:host[:port]" (RFC 7064); returns null for other schemes.</summary>
    internal static (string Host, int Port)? ParseStunUrl(string url)
    {
        if (!url.StartsWith("stun:", StringComparison.OrdinalIgnoreCase)) return null;
        var rest = url[5..];
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0) rest = rest[..query];
        var port = 3478;
        var colon = rest.LastIndexOf(':');
        if (colon > 0 && !rest.EndsWith(']') && int.TryParse(rest[(colon + 1)..], out var parsed))
        {
            port = parsed;
            rest = rest[..colon];
        }
        return (rest.Trim('[', ']'), port);
    }

    private async Task GatherServerReflexiveAsync(CancellationToken cancellationToken)
    {
        var servers = new List<IPEndPoint>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _gatherCancel.Token);
        timeout.CancelAfter(_options.StunGatherTimeout);
        foreach (var url in _options.StunServers)
        {
            if (ParseStunUrl(url) is not { } parsed) continue;
            try
            {
                var addresses = IPAddress.TryParse(parsed.Host, out var literal)
                    ? new[] { literal }
                    : await Dns.GetHostAddressesAsync(parsed.Host, AddressFamily.InterNetwork, timeout.Token).ConfigureAwait(false);
                if (addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) is { } address)
                    servers.Add(new IPEndPoint(address, parsed.Port));
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // An unresolvable STUN server only costs us its srflx candidate.
            }
        }
        var queries = new List<Task>();
        LocalSocket[] sockets;
        lock (_gate) sockets = _sockets.ToArray();
        foreach (var server in servers)
            foreach (var local in sockets)
                if (!local.IsRelay && local.IsLoopback == IPAddress.IsLoopback(server.Address))
                    queries.Add(QueryServerReflexiveAsync(local, server, timeout.Token));
        await Task.WhenAll(queries).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task QueryServerReflexiveAsync(LocalSocket local, IPEndPoint server, CancellationToken cancellationToken)
    {
        var transactionId = StunMessageBuilder.NewTransactionId();
        var key = TransactionKey(transactionId);
        var completion = new TaskCompletionSource<StunMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var request = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, transactionId).AddFingerprint().ToArray();
        lock (_gate) _gatherTransactions[key] = completion;
        try
        {
            // RFC 8489 §6.2.1 retransmission, with a shorter first RTO because gathering delays the SDP.
            var rto = TimeSpan.FromMilliseconds(50);
            while (!cancellationToken.IsCancellationRequested)
            {
                lock (_gate) SendRawLocked(local, request, server);
                try
                {
                    var response = await completion.Task.WaitAsync(rto, cancellationToken).ConfigureAwait(false);
                    if (response.Class == StunClass.SuccessResponse && (response.XorMappedAddress ?? response.MappedAddress) is { } mapped
                        && !mapped.Equals(local.EndPoint))
                    {
                        lock (_gate)
                        {
                            var srflx = new SdpCandidate(Foundation("srflx", local.EndPoint.Address), 1, "udp",
                                (100u << 24) | (local.Candidate.Priority & 0x00FFFF00u) | 255u,
                                mapped.Address.ToString(), mapped.Port, "srflx", local.EndPoint.Address.ToString(), local.EndPoint.Port);
                            if (!_localCandidates.Any(c => c.Address == srflx.Address && c.Port == srflx.Port)) _localCandidates.Add(srflx);
                        }
                    }
                    return;
                }
                catch (TimeoutException)
                {
                    rto = TimeSpan.FromTicks(Math.Min(rto.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Gathering ends with whatever answered in time.
        }
        finally
        {
            lock (_gate) _gatherTransactions.Remove(key);
        }
    }

    /// <summary>One allocation per TURN URL (its own connection, so UDP, TCP and TLS work alike), all in parallel.</summary>
    private async Task GatherRelayedAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _gatherCancel.Token);
        timeout.CancelAfter(_options.TurnGatherTimeout);
        var index = 0;
        var allocations = new List<Task>();
        foreach (var server in _options.TurnServers)
            foreach (var url in server.Urls)
            {
                if (!TurnServerUrl.IsTurnUrl(url)) continue;
                if (!TurnServerUrl.TryParse(url, out var parsed))
                {
                    lock (_gate) _gatheringProblems.Add($"'{url}' is not a valid TURN URL (turn:host[:port][?transport=udp|tcp] or turns:host[:port])");
                    continue;
                }
                if (server.Username is null || server.Credential is null)
                {
                    lock (_gate) _gatheringProblems.Add($"TURN server {url}: no username and credential were given");
                    continue;
                }
                allocations.Add(AllocateRelayAsync(parsed!, server.Username, server.Credential, index++, timeout.Token));
            }
        await Task.WhenAll(allocations).ConfigureAwait(false);
    }

    private async Task AllocateRelayAsync(TurnServerUrl server, string username, string password, int index, CancellationToken cancellationToken)
    {
        TurnAllocation allocation;
        try
        {
            allocation = await TurnAllocation.AllocateAsync(server, username, password, _options.Turn, null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TurnException or OperationCanceledException or IOException or System.Security.Authentication.AuthenticationException)
        {
            var reason = e is OperationCanceledException
                ? $"TURN server {server.Url}: no relay within {_options.TurnGatherTimeout.TotalSeconds:0.#} s over {server.TransportName}"
                : e.Message;
            lock (_gate) _gatheringProblems.Add(reason);
            return;
        }
        lock (_gate)
        {
            if (_disposed)
            {
                allocation.Dispose();
                return;
            }
            // RFC 8445 §5.1.2.1: type preference 0 for relayed candidates, so every direct pair ranks above them;
            // among relays UDP first, then TCP, then TLS (RFC 8421 §4), earlier servers first.
            var transportRank = server.Transport switch { TurnTransport.Udp => 2u, TurnTransport.Tcp => 1u, _ => 0u };
            var localPreference = (transportRank << 14) | (uint)Math.Max(0, 16383 - index);
            var relayed = allocation.RelayedEndPoint;
            var mapped = allocation.MappedEndPoint ?? allocation.LocalEndPoint;
            var candidate = new SdpCandidate(Foundation("relay|" + server.TransportName, relayed.Address), 1, "udp", (localPreference << 8) | 255u,
                relayed.Address.ToString(), relayed.Port, "relay", mapped.Address.ToString(), mapped.Port);
            var local = new LocalSocket(allocation, candidate);
            allocation.DataReceived = (peer, data) => OnRelayedData(local, peer, data);
            _sockets.Add(local);
            _localCandidates.Add(candidate);
            foreach (var remote in _remoteCandidates)
                if (IPAddress.TryParse(remote.Address, out var address)) PairLocked(local, remote, address);
        }
    }

    /// <summary>Routes answers of our own srflx queries (no integrity: STUN servers have no credentials).</summary>
    private bool HandleGatherResponseLocked(StunMessage response)
    {
        var key = TransactionKey(response.TransactionId);
        if (!_gatherTransactions.TryGetValue(key, out var completion)) return false;
        completion.TrySetResult(response);
        return true;
    }

    private void CancelGathering()
    {
        try
        {
            _gatherCancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
