using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using SleapRtc.WebRtc.Stun;

namespace SleapRtc.WebRtc.Turn;

/// <summary>Receives one datagram a peer sent to our relayed address.</summary>
public delegate void TurnDataHandler(IPEndPoint peer, ReadOnlySpan<byte> data);

/// <summary>A TURN server refused or failed a request; the message says which server and why, in user terms.</summary>
public sealed class TurnException : IOException
{
    public TurnException(TurnServerUrl server, int? errorCode, string reason, Exception? inner = null)
        : base($"TURN server {server.Url}: {reason}", inner)
    {
        Server = server.Url;
        ErrorCode = errorCode;
    }

    public string Server { get; }
    /// <summary>The STUN error code the server answered (401, 437, 441, 486...), or null for a transport failure.</summary>
    public int? ErrorCode { get; }
}

/// <summary>Timers and trust of TURN clients. Defaults follow RFC 8656; tests shorten them.</summary>
public sealed class TurnClientOptions
{
    /// <summary>Certificates (a private CA or a self-signed server certificate) trusted for turns: besides the system's roots.</summary>
    public X509Certificate2Collection? TrustedCertificates { get; init; }
    /// <summary>Longest wait for the answer to one request (all retransmissions over UDP included).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>First UDP retransmission timeout; doubles per retransmission (RFC 8489 §6.2.1, shortened for LANs).</summary>
    public TimeSpan InitialRetransmitTimeout { get; init; } = TimeSpan.FromMilliseconds(150);
    /// <summary>Allocation lifetime asked for; the server may grant less (RFC 8656 default 10 min).</summary>
    public TimeSpan RequestedLifetime { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Permissions live 5 min on the server (RFC 8656 §9); they are renewed this often while in use.</summary>
    public TimeSpan PermissionRefreshInterval { get; init; } = TimeSpan.FromMinutes(4);
    /// <summary>Channel bindings live 10 min (RFC 8656 §12); they are renewed this often.</summary>
    public TimeSpan ChannelRefreshInterval { get; init; } = TimeSpan.FromMinutes(9);
}

/// <summary>
/// One allocation on a TURN server (RFC 8656), made with long-term credentials (RFC 8489 §9.2): the first
/// Allocate is answered 401 with a realm and nonce, every later request carries USERNAME, REALM, NONCE and
/// MESSAGE-INTEGRITY keyed by MD5(username:realm:password), and a 438 (stale nonce) is retried with the new
/// nonce. The allocation is refreshed before its lifetime ends and deleted (lifetime 0) on disposal.
/// Datagrams to a peer go in Send indications until a channel is bound to it, then as ChannelData; each
/// peer address needs a permission first, which <see cref="Send"/> asks for and waits on by itself.
/// </summary>
public sealed class TurnAllocation : IDisposable
{
    private const byte UdpProtocolNumber = 17;
    private const ushort FirstChannel = 0x4000;
    private const ushort LastChannel = 0x4FFF;
    private const int MaxQueuedPerPermission = 32;

    private readonly TurnConnection _connection;
    private readonly TurnClientOptions _options;
    private readonly string _username;
    private readonly string _password;
    private readonly object _gate = new();
    private readonly Dictionary<(ulong, uint), TaskCompletionSource<byte[]>> _transactions = new();
    private readonly Dictionary<IPAddress, Permission> _permissions = new();
    private readonly Dictionary<IPEndPoint, Channel> _channelsByPeer = new();
    private readonly Dictionary<ushort, Channel> _channelsByNumber = new();
    private readonly CancellationTokenSource _lifetime = new();
    private string? _realm;
    private string? _nonce;
    private byte[]? _key;
    private ushort _nextChannel = FirstChannel;
    private Timer? _timer;
    private long _refreshAt;
    private volatile bool _disposed;
    private volatile bool _deallocating;

    private TurnAllocation(TurnServerUrl server, TurnConnection connection, string username, string password, TurnClientOptions options)
    {
        Server = server;
        _connection = connection;
        _username = username;
        _password = password;
        _options = options;
        _connection.FrameReceived = OnFrame;
        _connection.Closed += OnConnectionClosed;
    }

    public TurnServerUrl Server { get; }
    /// <summary>The address peers send to; the relayed candidate.</summary>
    public IPEndPoint RelayedEndPoint { get; private set; } = null!;
    /// <summary>This machine's address as the TURN server sees it (a server-reflexive address).</summary>
    public IPEndPoint? MappedEndPoint { get; private set; }
    /// <summary>This machine's end of the connection to the server.</summary>
    public IPEndPoint LocalEndPoint => _connection.LocalEndPoint;
    public TimeSpan Lifetime { get; private set; }
    /// <summary>Refreshes the server accepted (the allocation outlived its first lifetime this many times).</summary>
    public int Refreshes { get; private set; }
    public bool IsDisposed => _disposed;

    /// <summary>Datagrams from peers, on the connection's receive thread; the span is valid during the call only.</summary>
    public TurnDataHandler? DataReceived { get; set; }

    /// <summary>The allocation is gone (connection lost, refresh refused); raised once, not on disposal.</summary>
    public event Action<Exception>? Failed;

    /// <summary>Connects to <paramref name="server"/> and allocates a UDP relay.</summary>
    /// <param name="localAddress">Local address to connect from (null: any).</param>
    /// <exception cref="TurnException">Unreachable, refused credentials, or no relay granted; the message says which.</exception>
    public static async Task<TurnAllocation> AllocateAsync(TurnServerUrl server, string username, string password, TurnClientOptions? options,
        IPAddress? localAddress, CancellationToken cancellationToken)
    {
        options ??= new TurnClientOptions();
        var endPoint = await ResolveAsync(server, localAddress, cancellationToken).ConfigureAwait(false);
        TurnConnection connection;
        try
        {
            connection = await TurnConnection.OpenAsync(server, endPoint, localAddress, options.TrustedCertificates, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new TurnException(server, null, $"cannot connect over {server.TransportName} to {endPoint} ({e.SocketErrorCode})", e);
        }
        var allocation = new TurnAllocation(server, connection, username, password, options);
        try
        {
            await allocation.AllocateAsync(cancellationToken).ConfigureAwait(false);
            return allocation;
        }
        catch
        {
            allocation._disposed = true;
            connection.Dispose();
            throw;
        }
    }

    private static async Task<IPEndPoint> ResolveAsync(TurnServerUrl server, IPAddress? localAddress, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(server.Host, out var literal)) return new IPEndPoint(literal, server.Port);
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(server.Host).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new TurnException(server, null, $"the host name '{server.Host}' does not resolve ({e.SocketErrorCode})", e);
        }
        var family = localAddress?.AddressFamily ?? AddressFamily.InterNetwork;
        var address = addresses.FirstOrDefault(a => a.AddressFamily == family) ?? addresses.FirstOrDefault()
            ?? throw new TurnException(server, null, $"the host name '{server.Host}' has no address");
        return new IPEndPoint(address, server.Port);
    }

    private async Task AllocateAsync(CancellationToken cancellationToken)
    {
        var response = await RequestAsync(StunMethod.Allocate, b => b
            .AddRequestedTransport(UdpProtocolNumber)
            .AddLifetime((uint)_options.RequestedLifetime.TotalSeconds), cancellationToken).ConfigureAwait(false);
        if (response.XorRelayedAddress is null)
            throw new TurnException(Server, null, "the Allocate answer carries no relayed address");
        RelayedEndPoint = response.XorRelayedAddress;
        MappedEndPoint = response.XorMappedAddress;
        ScheduleRefresh(response.Lifetime ?? 600);
        var tick = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(200).Ticks,
            Math.Min(_options.PermissionRefreshInterval.Ticks, Math.Min(_options.ChannelRefreshInterval.Ticks, Lifetime.Ticks / 4)) / 4));
        _timer = new Timer(_ => OnTimer(), null, tick, tick);
    }

    private void ScheduleRefresh(uint lifetimeSeconds)
    {
        Lifetime = TimeSpan.FromSeconds(lifetimeSeconds);
        // A minute before expiry, or half-way for short lifetimes, leaving time for retransmissions.
        var refreshIn = lifetimeSeconds > 120 ? Lifetime - TimeSpan.FromMinutes(1) : TimeSpan.FromTicks(Lifetime.Ticks / 2);
        Interlocked.Exchange(ref _refreshAt, Stopwatch.GetTimestamp() + (long)(refreshIn.TotalSeconds * Stopwatch.Frequency));
    }

    /// <summary>Installs (or renews) a permission for <paramref name="peer"/>'s IP address (any port, RFC 8656 §9).</summary>
    public Task CreatePermissionAsync(IPAddress peer, CancellationToken cancellationToken)
    {
        Permission permission;
        lock (_gate) permission = PermissionLocked(peer);
        return permission.Installed.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Binds a channel to <paramref name="peer"/> so that its datagrams travel with a 4-byte header instead of 36.</summary>
    public async Task BindChannelAsync(IPEndPoint peer, CancellationToken cancellationToken)
    {
        Channel channel;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_channelsByPeer.TryGetValue(peer, out channel!))
            {
                if (_nextChannel > LastChannel) throw new TurnException(Server, null, "no channel numbers left");
                channel = new Channel(_nextChannel++, peer);
                _channelsByPeer[peer] = channel;
                _channelsByNumber[channel.Number] = channel;
            }
        }
        await RequestChannelBindAsync(channel, cancellationToken).ConfigureAwait(false);
    }

    private async Task RequestChannelBindAsync(Channel channel, CancellationToken cancellationToken)
    {
        channel.LastBoundAt = Stopwatch.GetTimestamp();
        await RequestAsync(StunMethod.ChannelBind, b => b.AddChannelNumber(channel.Number).AddXorPeerAddress(channel.Peer), cancellationToken).ConfigureAwait(false);
        channel.Bound = true;
        // A channel binding installs or refreshes the permission for the peer's address too (RFC 8656 §12.2).
        lock (_gate)
        {
            var permission = PermissionLocked(channel.Peer.Address, request: false);
            permission.LastRequestedAt = channel.LastBoundAt;
            MarkInstalledLocked(permission);
        }
    }

    /// <summary>Sends one datagram to <paramref name="peer"/> through the relay; queued briefly while its permission is being installed.</summary>
    public void Send(IPEndPoint peer, ReadOnlySpan<byte> data)
    {
        if (_disposed) return;
        Channel? channel;
        lock (_gate)
        {
            _channelsByPeer.TryGetValue(peer, out channel);
            if (channel is not { Bound: true })
            {
                var permission = PermissionLocked(peer.Address);
                if (!permission.Installed.Task.IsCompleted || permission.Installed.Task.IsFaulted)
                {
                    // The server would drop it: hold a few until the permission is in place (ICE retransmits the rest).
                    if (permission.Queue.Count < MaxQueuedPerPermission) permission.Queue.Add((peer, data.ToArray()));
                    return;
                }
            }
        }
        if (channel is { Bound: true }) SendChannelData(channel.Number, data);
        else SendIndication(peer, data);
    }

    private void SendChannelData(ushort number, ReadOnlySpan<byte> data)
    {
        var frame = System.Buffers.ArrayPool<byte>.Shared.Rent(4 + data.Length);
        try
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame, number);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)data.Length);
            data.CopyTo(frame.AsSpan(4));
            _connection.Send(frame.AsSpan(0, 4 + data.Length));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(frame);
        }
    }

    private void SendIndication(IPEndPoint peer, ReadOnlySpan<byte> data)
    {
        // Indications carry no integrity (RFC 8656 §11): the permission, not the message, authorises them.
        var indication = new StunMessageBuilder(StunMethod.Send, StunClass.Indication, StunMessageBuilder.NewTransactionId(), data.Length + 64)
            .AddXorPeerAddress(peer).AddData(data);
        _connection.Send(indication.Span);
    }

    private Permission PermissionLocked(IPAddress address, bool request = true)
    {
        if (!_permissions.TryGetValue(address, out var permission))
        {
            permission = new Permission(address);
            _permissions[address] = permission;
            if (request) RequestPermission(permission);
        }
        else if (request && permission.Installed.Task.IsFaulted && !permission.Pending)
        {
            // A refused or lost request is asked again when someone needs the permission.
            permission.Installed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            RequestPermission(permission);
        }
        return permission;
    }

    private void RequestPermission(Permission permission)
    {
        if (_disposed) return;
        permission.Pending = true;
        permission.LastRequestedAt = Stopwatch.GetTimestamp();
        _ = Task.Run(async () =>
        {
            try
            {
                await RequestAsync(StunMethod.CreatePermission, b => b.AddXorPeerAddress(new IPEndPoint(permission.Address, 0)), _lifetime.Token).ConfigureAwait(false);
                lock (_gate) MarkInstalledLocked(permission);
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    permission.Pending = false;
                    permission.Queue.Clear();
                    permission.Installed.TrySetException(e);
                }
            }
        });
    }

    private void MarkInstalledLocked(Permission permission)
    {
        permission.Pending = false;
        permission.Installed.TrySetResult(true);
        if (permission.Queue.Count == 0) return;
        var queued = permission.Queue.ToArray();
        permission.Queue.Clear();
        // Sent off the lock (Send takes it again); order is kept.
        _ = Task.Run(() =>
        {
            foreach (var (peer, data) in queued) Send(peer, data);
        });
    }

    private void OnTimer()
    {
        if (_disposed) return;
        var now = Stopwatch.GetTimestamp();
        if (now >= Interlocked.Read(ref _refreshAt))
        {
            Interlocked.Exchange(ref _refreshAt, long.MaxValue);
            _ = RefreshAsync();
        }
        lock (_gate)
        {
            var permissionAge = (long)(_options.PermissionRefreshInterval.TotalSeconds * Stopwatch.Frequency);
            foreach (var permission in _permissions.Values)
                if (!permission.Pending && permission.Installed.Task.IsCompleted && now - permission.LastRequestedAt >= permissionAge)
                    RequestPermission(permission);
            var channelAge = (long)(_options.ChannelRefreshInterval.TotalSeconds * Stopwatch.Frequency);
            foreach (var channel in _channelsByPeer.Values)
                if (channel.Bound && now - channel.LastBoundAt >= channelAge)
                    _ = RebindAsync(channel);
        }
    }

    private async Task RebindAsync(Channel channel)
    {
        try
        {
            await RequestChannelBindAsync(channel, _lifetime.Token).ConfigureAwait(false);
        }
        catch (Exception) when (_disposed)
        {
        }
        catch (Exception e)
        {
            Fail(new TurnException(Server, (e as TurnException)?.ErrorCode, "renewing a channel binding failed: " + e.Message, e));
        }
    }

    private async Task RefreshAsync()
    {
        try
        {
            var response = await RequestAsync(StunMethod.Refresh, b => b.AddLifetime((uint)_options.RequestedLifetime.TotalSeconds), _lifetime.Token).ConfigureAwait(false);
            Refreshes++;
            ScheduleRefresh(response.Lifetime ?? (uint)_options.RequestedLifetime.TotalSeconds);
        }
        catch (Exception) when (_disposed)
        {
        }
        catch (Exception e)
        {
            Fail(new TurnException(Server, (e as TurnException)?.ErrorCode, "refreshing the allocation failed: " + e.Message, e));
        }
    }

    /// <summary>
    /// Sends one authenticated request and returns the verified success response; 401 (first contact) and 438 (stale
    /// nonce) are answered by retrying with the server's realm and nonce. Over UDP the request is retransmitted.
    /// </summary>
    private async Task<StunMessage> RequestAsync(ushort method, Action<StunMessageBuilder> addAttributes, CancellationToken cancellationToken)
    {
        var nonceRetries = 0;
        while (true)
        {
            string? realm, nonce;
            byte[]? key;
            lock (_gate) (realm, nonce, key) = (_realm, _nonce, _key);
            var transactionId = StunMessageBuilder.NewTransactionId();
            var builder = new StunMessageBuilder(method, StunClass.Request, transactionId);
            addAttributes(builder);
            if (key is not null) builder.AddUsername(_username).AddRealm(realm!).AddNonce(nonce!).AddMessageIntegrity(key);
            builder.AddFingerprint();
            var packet = await TransactAsync(builder.ToArray(), transactionId, cancellationToken).ConfigureAwait(false);
            StunMessage.TryParse(packet, out var response);
            if (response!.Class == StunClass.SuccessResponse)
            {
                // A success must prove the server knows the key too; an unauthenticated one (an attacker's) is no answer.
                if (key is not null && !response.VerifyMessageIntegrity(packet, key))
                    throw new TurnException(Server, null, "the answer's MESSAGE-INTEGRITY does not verify (the server does not share our credentials)");
                return response;
            }
            var code = response.ErrorCode ?? 0;
            if (code == StunErrorCode.Unauthorized && key is null && response.Realm is not null && response.Nonce is not null)
            {
                lock (_gate)
                {
                    _realm = response.Realm;
                    _nonce = response.Nonce;
                    _key = LongTermKey(_username, response.Realm, _password);
                }
                continue;
            }
            if (code == StunErrorCode.StaleNonce && response.Nonce is not null && nonceRetries++ < 3)
            {
                lock (_gate) _nonce = response.Nonce;
                continue;
            }
            throw new TurnException(Server, code, Explain(method, code, response.ErrorReason));
        }
    }

    private string Explain(ushort method, int code, string? reason)
    {
        var what = method switch
        {
            StunMethod.Allocate => "refused the allocation",
            StunMethod.Refresh => "refused to refresh the allocation",
            StunMethod.CreatePermission => "refused a permission",
            StunMethod.ChannelBind => "refused a channel binding",
            _ => "refused a request",
        };
        var answer = $"({code}{(string.IsNullOrEmpty(reason) ? "" : " " + reason)})";
        switch (code)
        {
            case StunErrorCode.Unauthorized:
            case StunErrorCode.WrongCredentials:
                var expiry = TurnSharedSecret.ExpiryOf(_username);
                if (expiry is { } expires && expires < DateTimeOffset.UtcNow)
                    return $"{what} {answer}: the time-limited TURN credentials expired at {expires:u}; get fresh ones (reconnect to the signaling server)";
                return $"{what} {answer}: the TURN username or password is wrong (for shared-secret credentials, the signaling server's -TurnSecret must equal coturn's static-auth-secret)";
            case StunErrorCode.Forbidden:
                return $"{what} {answer}: the server does not allow this peer address";
            case StunErrorCode.AllocationQuotaReached:
                return $"{what} {answer}: this user has too many allocations on the server";
            case StunErrorCode.InsufficientCapacity:
                return $"{what} {answer}: the server has no relay ports left";
            case StunErrorCode.UnsupportedTransportProtocol:
                return $"{what} {answer}: the server does not relay UDP";
            default:
                return $"{what} {answer}";
        }
    }

    /// <summary>RFC 8489 §9.2.2: key = MD5(username ":" realm ":" password), with SASLprep left out (ASCII credentials).</summary>
    internal static byte[] LongTermKey(string username, string realm, string password)
    {
        using var md5 = MD5.Create();
        return md5.ComputeHash(Encoding.UTF8.GetBytes(username + ":" + realm + ":" + password));
    }

    private async Task<byte[]> TransactAsync(byte[] request, byte[] transactionId, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed && !_deallocating, this);
        var key = TransactionKey(transactionId);
        var completion = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate) _transactions[key] = completion;
        var clock = Stopwatch.StartNew();
        try
        {
            var rto = _options.InitialRetransmitTimeout;
            while (true)
            {
                _connection.Send(request);
                var left = _options.RequestTimeout - clock.Elapsed;
                if (left <= TimeSpan.Zero) break;
                var wait = _connection.IsReliable || rto > left ? left : rto;
                try
                {
                    return await completion.Task.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    rto = TimeSpan.FromTicks(rto.Ticks * 2);
                    if (_connection.IsReliable) break;
                }
            }
            throw new TurnException(Server, null, $"no answer over {Server.TransportName} within {_options.RequestTimeout.TotalSeconds:0.#} s (is the server running and reachable from this network?)");
        }
        finally
        {
            lock (_gate) _transactions.Remove(key);
        }
    }

    private void OnFrame(ReadOnlySpan<byte> frame)
    {
        if (frame.Length >= 4 && frame[0] is >= 0x40 and <= 0x4F)
        {
            var number = BinaryPrimitives.ReadUInt16BigEndian(frame);
            var length = BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(2));
            if (4 + length > frame.Length) return;
            Channel? channel;
            lock (_gate) _channelsByNumber.TryGetValue(number, out channel);
            if (channel is not null) DataReceived?.Invoke(channel.Peer, frame.Slice(4, length));
            return;
        }
        if (!StunMessage.TryParse(frame, out var message)) return;
        if (message!.Class == StunClass.Indication)
        {
            if (message.Method == StunMethod.Data && message.XorPeerAddress is { } peer && message.DataOffset >= 0)
                DataReceived?.Invoke(peer, frame.Slice(message.DataOffset, message.DataLength));
            return;
        }
        if (message.Class is StunClass.SuccessResponse or StunClass.ErrorResponse)
        {
            TaskCompletionSource<byte[]>? completion;
            lock (_gate) _transactions.TryGetValue(TransactionKey(message.TransactionId), out completion);
            completion?.TrySetResult(frame.ToArray());
        }
    }

    private void OnConnectionClosed(Exception error) =>
        Fail(new TurnException(Server, null, $"the connection to the server was lost ({error.Message})", error));

    private void Fail(Exception error)
    {
        if (_disposed) return;
        Dispose(deallocate: false);
        Failed?.Invoke(error);
    }

    private static (ulong, uint) TransactionKey(ReadOnlySpan<byte> transactionId) =>
        (BinaryPrimitives.ReadUInt64BigEndian(transactionId), BinaryPrimitives.ReadUInt32BigEndian(transactionId.Slice(8)));

    /// <summary>Deletes the allocation on the server (a Refresh with lifetime 0, RFC 8656 §7), then closes the connection.</summary>
    public void Dispose() => Dispose(deallocate: true);

    private void Dispose(bool deallocate)
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _deallocating = deallocate && _key is not null;
            foreach (var permission in _permissions.Values) permission.Installed.TrySetCanceled();
        }
        _timer?.Dispose();
        _lifetime.Cancel();
        if (!_deallocating)
        {
            _connection.Dispose();
            return;
        }
        // Not waited for by the caller: the server frees the relay at once instead of after the lifetime (a stale
        // nonce is retried like any request); the connection closes after the answer or a second at most.
        _ = Task.Run(async () =>
        {
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await RequestAsync(StunMethod.Refresh, b => b.AddLifetime(0), limit.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Unanswered: the allocation expires on the server by itself.
            }
            finally
            {
                _connection.Dispose();
            }
        });
    }

    private sealed class Permission(IPAddress address)
    {
        public IPAddress Address { get; } = address;
        public TaskCompletionSource<bool> Installed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public bool Pending { get; set; }
        public long LastRequestedAt { get; set; }
        public List<(IPEndPoint Peer, byte[] Data)> Queue { get; } = new();
    }

    private sealed class Channel(ushort number, IPEndPoint peer)
    {
        public ushort Number { get; } = number;
        public IPEndPoint Peer { get; } = peer;
        public volatile bool Bound;
        public long LastBoundAt { get; set; }
    }
}
