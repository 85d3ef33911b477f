using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using SleapRtc.WebRtc.Dtls;
using SleapRtc.WebRtc.Sdp;
using SleapRtc.WebRtc.Stun;

namespace SleapRtc.WebRtc.Ice;

/// <summary>
/// A full ICE agent (RFC 8445 subset) for one data-channel component: host and server-reflexive
/// gathering, paced connectivity checks with triggered checks and peer-reflexive candidates, role
/// conflict repair, regular nomination and consent freshness (RFC 7675). It owns one UDP socket per
/// local address and demultiplexes by first byte (RFC 7983): STUN is handled here, DTLS is handed to
/// <see cref="DtlsPacketReceived"/>. All state is guarded by one lock; events are raised outside it.
/// </summary>
public sealed partial class IceAgent : IDatagramBatching, IDisposable
{
    private const string IceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    private static readonly TimeSpan MaxRetransmitTimeout = TimeSpan.FromMilliseconds(1600);

    private readonly IceAgentOptions _options;
    private readonly object _gate = new();
    private readonly List<LocalSocket> _sockets = new();
    private readonly List<SdpCandidate> _localCandidates = new();
    private readonly List<CandidatePair> _pairs = new();
    private readonly LinkedList<CandidatePair> _triggered = new();
    private readonly Dictionary<(ulong, uint), CheckTransaction> _transactions = new();
    private readonly HashSet<IPEndPoint> _authenticatedSources = new();
    private readonly List<SdpCandidate> _remoteCandidates = new();
    private readonly byte[] _localKey;
    private readonly List<Action> _deferredEvents = new();
    private byte[]? _remoteKey;
    private string? _remoteUfrag;
    private Timer? _timer;
    private long _checkingSince;
    private long _lastConsentResponse;
    private long _nextConsentAt;
    private long _firstUnansweredConsentAt;
    private bool _nominating;
    private volatile CandidatePair? _selected;
    private volatile bool _disposed;
    // The thread inside a send batch (0: none), its nesting depth, and the host socket gathering its datagrams.
    private int _batchOwner;
    private int _batchDepth;
    private UdpSegmentBatcher? _batchTarget;

    public IceAgent(IceAgentOptions options, bool controlling)
    {
        _options = options;
        IsControlling = controlling;
        LocalUfrag = RandomIceString(8);
        LocalPassword = RandomIceString(24);
        _localKey = Encoding.UTF8.GetBytes(LocalPassword);
        TieBreaker = BinaryPrimitives.ReadUInt64BigEndian(RandomNumberGenerator.GetBytes(8));
    }

    public string LocalUfrag { get; }
    public string LocalPassword { get; }
    public ulong TieBreaker { get; }
    public bool IsControlling { get; private set; }
    public IceConnectionState State { get; private set; } = IceConnectionState.New;
    /// <summary>How often a role conflict made this agent switch roles (RFC 8445 §7.3.1.1).</summary>
    public int RoleSwitches { get; private set; }

    /// <summary>Raised outside the agent's lock, in order.</summary>
    public event Action<IceConnectionState>? StateChanged;

    /// <summary>Receives DTLS datagrams (first byte 20–63) from authenticated remote addresses.</summary>
    public SpanAction? DtlsPacketReceived { get; set; }

    public IReadOnlyList<SdpCandidate> LocalCandidates { get { lock (_gate) return _localCandidates.ToArray(); } }

    public IPEndPoint? SelectedRemoteEndPoint => _selected?.Remote;

    /// <summary>Every candidate pair with its check state and whether it is the selected one (diagnostics).</summary>
    public IReadOnlyList<IceCandidatePairReport> PairReports()
    {
        lock (_gate) return _pairs.Select(p => new IceCandidatePairReport(InfoOf(p), p.State.ToString(), p == _selected)).ToArray();
    }
    public IPEndPoint? SelectedLocalEndPoint => _selected?.Local.EndPoint;

    /// <summary>The selected pair with both candidates' types: which path carries the data.</summary>
    public IceCandidatePairInfo? SelectedPair
    {
        get
        {
            var selected = _selected;
            return selected is null ? null : InfoOf(selected);
        }
    }

    private static IceCandidatePairInfo InfoOf(CandidatePair pair) =>
        new(pair.Local.Candidate.Type, pair.Local.EndPoint.ToString(), pair.RemoteType, pair.Remote.ToString(), pair.Local.Relay?.Server.TransportName);

    private static string RandomIceString(int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++) chars[i] = IceChars[RandomNumberGenerator.GetInt32(IceChars.Length)];
        return new string(chars);
    }

    private static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Sets the peer's ICE credentials and candidates from its SDP; trickled ones may follow.</summary>
    public void SetRemoteDescription(string ufrag, string password, IEnumerable<SdpCandidate> candidates, bool remoteIsLite = false)
    {
        lock (_gate)
        {
            _remoteUfrag = ufrag;
            _remoteKey = Encoding.UTF8.GetBytes(password);
            // An ICE-lite peer never checks or nominates: we must control (RFC 8445 §6.1.1).
            if (remoteIsLite && !IsControlling) SwitchRole(true);
            foreach (var candidate in candidates) AddRemoteCandidateLocked(candidate);
        }
    }

    /// <summary>Adds a trickled remote candidate; checks start on it at once if checking is under way.</summary>
    public void AddRemoteCandidate(SdpCandidate candidate)
    {
        lock (_gate) AddRemoteCandidateLocked(candidate);
    }

    private void AddRemoteCandidateLocked(SdpCandidate candidate)
    {
        if (candidate.Component != 1 || candidate.Transport != "udp") return;
        if (!IPAddress.TryParse(candidate.Address, out var address) || address.AddressFamily != AddressFamily.InterNetwork) return;
        _remoteCandidates.Add(candidate);
        foreach (var local in _sockets) PairLocked(local, candidate, address);
    }

    private void PairLocked(LocalSocket local, SdpCandidate candidate, IPAddress address)
    {
        // Loopback only reaches loopback; other addresses are paired with each other.
        if (local.IsLoopback != IPAddress.IsLoopback(address)) return;
        FindOrCreatePair(local, new IPEndPoint(address, candidate.Port), candidate.Priority, candidate.Type);
    }

    private CandidatePair FindOrCreatePair(LocalSocket local, IPEndPoint remote, uint remotePriority, string remoteType)
    {
        foreach (var existing in _pairs)
        {
            if (existing.Local != local || !existing.Remote.Equals(remote)) continue;
            // A check can arrive before the description naming its source: the signalled type then replaces "prflx".
            if (existing.RemoteType == "prflx" && remoteType != "prflx") existing.RemoteType = remoteType;
            return existing;
        }
        var pair = new CandidatePair(local, remote, remotePriority, remoteType);
        pair.ComputePriority(IsControlling);
        _pairs.Add(pair);
        // The TURN server drops the peer's checks to our relayed address until it holds a permission for it.
        if (local.Relay is { } relay) ObserveFailure(relay.CreatePermissionAsync(remote.Address, CancellationToken.None));
        return pair;
    }

    private static void ObserveFailure(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The type a remote address was signalled with, "prflx" when it is only known from a check.</summary>
    private string RemoteTypeLocked(IPEndPoint source)
    {
        foreach (var candidate in _remoteCandidates)
            if (candidate.Port == source.Port && IPAddress.TryParse(candidate.Address, out var address) && address.Equals(source.Address)) return candidate.Type;
        return "prflx";
    }

    /// <summary>Begins connectivity checks (call after gathering and <see cref="SetRemoteDescription"/>).</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (State != IceConnectionState.New) return;
            if (_remoteKey is null) throw new InvalidOperationException("remote ICE credentials are not set");
            _checkingSince = Stopwatch.GetTimestamp();
            SetStateLocked(IceConnectionState.Checking);
            SendNextCheckLocked(_checkingSince);
            _timer = new Timer(_ => OnTick(), null, _options.CheckPacing, _options.CheckPacing);
        }
        RaiseDeferred();
    }

    /// <summary>Sends one datagram on the selected pair; dropped silently when none is selected yet.</summary>
    public void Send(ReadOnlySpan<byte> datagram)
    {
        var selected = _selected;
        if (selected is null || _disposed) return;
        // Inside the sending thread's batch a host socket gathers the burst for one segmented send; other threads
        // (DTLS retransmissions, alerts) and STUN keep sending one datagram per call.
        if (selected.Local.Batcher is { } batcher && Volatile.Read(ref _batchOwner) == Environment.CurrentManagedThreadId)
        {
            if (_batchTarget != batcher)
            {
                _batchTarget?.Flush();
                _batchTarget = batcher;
            }
            batcher.Append(datagram, selected.Remote, selected.RemoteAddress);
            return;
        }
        // UDP semantics: a failed send is a lost datagram (SCTP retransmits).
        selected.Local.SendTo(datagram, selected.Remote, selected.RemoteAddress);
    }

    /// <summary>Diagnostics: datagrams that left in segmented (GSO) sends, over all host sockets.</summary>
    internal long SegmentedDatagramsSent
    {
        get
        {
            lock (_gate) return _sockets.Sum(local => local.Batcher?.SegmentedDatagrams ?? 0);
        }
    }

    /// <summary>
    /// Opens a send batch for the calling thread (nested calls count); while another thread holds one, this thread's
    /// sends simply stay plain. The SCTP sender wraps one burst in it.
    /// </summary>
    public void BeginBatch()
    {
        var thread = Environment.CurrentManagedThreadId;
        if (Volatile.Read(ref _batchOwner) == thread) _batchDepth++;
        else if (Interlocked.CompareExchange(ref _batchOwner, thread, 0) == 0) _batchDepth = 1;
    }

    /// <summary>Closes the calling thread's batch; the outermost close sends whatever it gathered.</summary>
    public void EndBatch()
    {
        if (Volatile.Read(ref _batchOwner) != Environment.CurrentManagedThreadId || --_batchDepth > 0) return;
        try
        {
            _batchTarget?.Flush();
        }
        finally
        {
            _batchTarget = null;
            Volatile.Write(ref _batchOwner, 0);
        }
    }

    private void ReceiveLoop(LocalSocket local)
    {
        var buffer = new byte[2048];
        var address = new SocketAddress(local.EndPoint.AddressFamily);
        while (!_disposed)
        {
            int received;
            try
            {
                received = local.Socket!.ReceiveFrom(buffer, SocketFlags.None, address);
            }
            catch (SocketException ex) when (!_disposed && ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue;
            }
            catch (Exception)
            {
                break; // socket closed by Dispose
            }
            if (received <= 0) continue;
            Dispatch(local, buffer.AsSpan(0, received), address);
        }
    }

    /// <summary>Datagrams a peer sent to our relayed address, unwrapped by the TURN client.</summary>
    private void OnRelayedData(LocalSocket relay, IPEndPoint peer, ReadOnlySpan<byte> data)
    {
        if (!_disposed && data.Length > 0) Dispatch(relay, data, peer.Serialize());
    }

    private void Dispatch(LocalSocket local, ReadOnlySpan<byte> packet, SocketAddress address)
    {
        try
        {
            var first = packet[0];
            if (first is >= 20 and <= 63) DeliverDtls(local, packet, address);
            else if (first < 4) HandleStun(local, packet, address);
            // Anything else (RTP, TURN channel data, garbage) is dropped, RFC 7983 §7.
        }
        catch (Exception)
        {
            // Hostile or malformed input must never stop the receive loop.
        }
    }

    private void DeliverDtls(LocalSocket local, ReadOnlySpan<byte> packet, SocketAddress address)
    {
        var selected = _selected;
        if (selected is null || selected.Local != local || !address.Equals(selected.RemoteAddress))
        {
            // Before or besides the selected pair, only sources that passed a STUN integrity check count.
            var source = (IPEndPoint)local.EndPoint.Create(address);
            lock (_gate)
            {
                if (!_authenticatedSources.Contains(source)) return;
            }
        }
        DtlsPacketReceived?.Invoke(packet);
    }

    private void HandleStun(LocalSocket local, ReadOnlySpan<byte> packet, SocketAddress address)
    {
        if (!StunMessage.TryParse(packet, out var message) || message!.Method != StunMethod.Binding) return;
        var source = (IPEndPoint)local.EndPoint.Create(address);
        lock (_gate)
        {
            if (_disposed) return;
            switch (message.Class)
            {
                case StunClass.Request:
                    HandleRequestLocked(local, message, packet, source);
                    break;
                case StunClass.SuccessResponse:
                case StunClass.ErrorResponse:
                    if (!HandleGatherResponseLocked(message)) HandleResponseLocked(local, message, packet, source);
                    break;
            }
        }
        RaiseDeferred();
    }

    private void HandleRequestLocked(LocalSocket local, StunMessage request, ReadOnlySpan<byte> packet, IPEndPoint source)
    {
        // Only checks that prove knowledge of our password are answered at all (no reflection for strangers).
        var username = request.Username;
        if (username is null) return;
        var colon = username.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || !username.AsSpan(0, colon).SequenceEqual(LocalUfrag)) return;
        if (!request.VerifyMessageIntegrity(packet, _localKey)) return;

        if (request.UnknownRequiredAttributes.Count > 0)
        {
            SendErrorLocked(local, request, source, StunErrorCode.UnknownAttribute, "Unknown Attribute", request.UnknownRequiredAttributes);
            return;
        }
        if (IsControlling && request.IceControlling is { } theirControlling)
        {
            if (TieBreaker >= theirControlling)
            {
                SendErrorLocked(local, request, source, StunErrorCode.RoleConflict, "Role Conflict", null);
                return;
            }
            SwitchRole(false);
        }
        else if (!IsControlling && request.IceControlled is { } theirControlled)
        {
            if (TieBreaker >= theirControlled) SwitchRole(true);
            else
            {
                SendErrorLocked(local, request, source, StunErrorCode.RoleConflict, "Role Conflict", null);
                return;
            }
        }

        var response = new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, request.TransactionId)
            .AddXorMappedAddress(source).AddMessageIntegrity(_localKey).AddFingerprint();
        SendRawLocked(local, response.Span, source);
        _authenticatedSources.Add(source);

        if (State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        // A source we did not know is a peer-reflexive candidate (RFC 8445 §7.3.1.3).
        var pair = FindOrCreatePair(local, source, request.Priority ?? 0, RemoteTypeLocked(source));
        if (request.UseCandidate && !IsControlling)
        {
            if (pair.State == PairState.Succeeded) SelectLocked(pair);
            else pair.NominateOnSuccess = true;
        }
        if (_selected is null && pair.State is PairState.Waiting or PairState.Failed)
        {
            pair.State = PairState.Waiting;
            TriggerLocked(pair);
        }
    }

    private void HandleResponseLocked(LocalSocket local, StunMessage response, ReadOnlySpan<byte> packet, IPEndPoint source)
    {
        var key = TransactionKey(response.TransactionId);
        if (!_transactions.TryGetValue(key, out var transaction)) return;
        if (_remoteKey is null || !response.VerifyMessageIntegrity(packet, _remoteKey)) return;
        var pair = transaction.Pair;
        // Checks must be symmetric (RFC 8445 §7.2.5.2.1): the answer comes from where we sent it.
        if (pair.Local != local || !pair.Remote.Equals(source)) return;
        _transactions.Remove(key);
        var now = Stopwatch.GetTimestamp();

        if (response.Class == StunClass.ErrorResponse)
        {
            if (transaction.IsConsent) return;
            if (response.ErrorCode == StunErrorCode.RoleConflict)
            {
                SwitchRole(!transaction.SentAsControlling);
                pair.State = PairState.Waiting;
                TriggerLocked(pair);
            }
            else
            {
                pair.State = PairState.Failed;
            }
            if (transaction.UseCandidate) _nominating = false;
            return;
        }

        _authenticatedSources.Add(source);
        if (_selected == pair)
        {
            _lastConsentResponse = now;
            _firstUnansweredConsentAt = 0;
        }
        if (transaction.IsConsent) return;
        pair.State = PairState.Succeeded;
        if (_selected is not null) return;
        if (IsControlling)
        {
            if (transaction.UseCandidate) SelectLocked(pair);
            else NominateLocked(now);
        }
        else if (pair.NominateOnSuccess)
        {
            SelectLocked(pair);
        }
    }

    /// <summary>
    /// Regular nomination (RFC 8445 §8.1.1): the controlling agent repeats the check on a valid pair with USE-CANDIDATE.
    /// A direct pair is nominated as soon as it works; a relayed one only once no direct pair can still work
    /// (each has failed or stayed unanswered for <see cref="IceAgentOptions.DirectPathGrace"/>).
    /// </summary>
    private void NominateLocked(long now)
    {
        if (_nominating || _selected is not null || !IsControlling) return;
        CandidatePair? best = null;
        var directPending = false;
        var grace = ToTicks(_options.DirectPathGrace);
        foreach (var pair in _pairs)
        {
            if (pair.State == PairState.Succeeded)
            {
                if (best is null || (best.IsRelayed && !pair.IsRelayed) || (best.IsRelayed == pair.IsRelayed && pair.Priority > best.Priority)) best = pair;
            }
            else if (!pair.IsRelayed && (pair.State == PairState.Waiting || (pair.State == PairState.InProgress && now - pair.FirstCheckAt < grace)))
            {
                directPending = true;
            }
        }
        if (best is null || (best.IsRelayed && directPending)) return;
        _nominating = true;
        SendCheckLocked(best, useCandidate: true, isConsent: false, now);
    }

    private void SelectLocked(CandidatePair pair)
    {
        if (_selected is not null) return;
        _selected = pair;
        var now = Stopwatch.GetTimestamp();
        _lastConsentResponse = now;
        _nextConsentAt = now + NextConsentDelayTicks();
        SetStateLocked(IceConnectionState.Connected);
        // Data through a relay goes as ChannelData (4 bytes of header) once a channel is bound, Send indications until then.
        if (pair.Local.Relay is { } relay) ObserveFailure(relay.BindChannelAsync(pair.Remote, CancellationToken.None));
        var tick = TimeSpan.FromTicks(Math.Clamp(_options.ConsentInterval.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromMilliseconds(500).Ticks));
        _timer?.Change(tick, tick);
    }

    private long NextConsentDelayTicks() =>
        (long)(ToTicks(_options.ConsentInterval) * (0.8 + 0.4 * Random.Shared.NextDouble()));

    private void SwitchRole(bool controlling)
    {
        if (IsControlling == controlling) return;
        IsControlling = controlling;
        RoleSwitches++;
        foreach (var pair in _pairs) pair.ComputePriority(controlling);
    }

    private void TriggerLocked(CandidatePair pair)
    {
        if (!pair.Triggered)
        {
            pair.Triggered = true;
            _triggered.AddLast(pair);
        }
    }

    private void OnTick()
    {
        lock (_gate)
        {
            if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) return;
            var now = Stopwatch.GetTimestamp();
            RetransmitLocked(now);
            if (State == IceConnectionState.Checking)
            {
                SendNextCheckLocked(now);
                NominateLocked(now);
                if (now - _checkingSince > ToTicks(_options.ConnectTimeout) || EveryPairFailedLocked()) SetStateLocked(IceConnectionState.Failed);
            }
            else if (State == IceConnectionState.Connected && _selected is { } selected)
            {
                if (now >= _nextConsentAt)
                {
                    SendCheckLocked(selected, useCandidate: false, isConsent: true, now);
                    _nextConsentAt = now + NextConsentDelayTicks();
                    if (_firstUnansweredConsentAt == 0) _firstUnansweredConsentAt = now;
                }
                // Consent is lost only if requests really went unanswered for long enough: a stalled
                // process (GC, CPU starvation) that sent nothing must not count as a vanished peer.
                var timeout = ToTicks(_options.ConsentTimeout);
                if (now - _lastConsentResponse > timeout && _firstUnansweredConsentAt != 0 && now - _firstUnansweredConsentAt > timeout / 2)
                    SetStateLocked(IceConnectionState.Failed);
            }
        }
        RaiseDeferred();
    }

    /// <summary>
    /// RFC 8445 §8.1.2: with every pair checked to exhaustion and none working, nothing more can come (gathering ended
    /// before checks began; a peer's own checks would have revived a pair), so fail now rather than at the timeout.
    /// </summary>
    private bool EveryPairFailedLocked()
    {
        if (_pairs.Count == 0 || _transactions.Count > 0 || _triggered.Count > 0) return false;
        foreach (var pair in _pairs)
            if (pair.State != PairState.Failed) return false;
        return true;
    }

    private void RetransmitLocked(long now)
    {
        List<(ulong, uint)>? expired = null;
        foreach (var (key, transaction) in _transactions)
        {
            if (now < transaction.RetransmitAtTicks) continue;
            if (transaction.Transmissions >= _options.MaxCheckTransmissions)
            {
                (expired ??= new()).Add(key);
                continue;
            }
            transaction.Transmissions++;
            transaction.RtoTicks = Math.Min(transaction.RtoTicks * 2, ToTicks(MaxRetransmitTimeout));
            transaction.RetransmitAtTicks = now + transaction.RtoTicks;
            transaction.Pair.Local.SendTo(transaction.Request, transaction.Pair.Remote, transaction.Pair.RemoteAddress);
        }
        if (expired is null) return;
        foreach (var key in expired)
        {
            var transaction = _transactions[key];
            _transactions.Remove(key);
            if (transaction.IsConsent) continue;
            if (transaction.Pair.State == PairState.InProgress) transaction.Pair.State = PairState.Failed;
            if (transaction.UseCandidate) _nominating = false;
        }
    }

    /// <summary>Triggered checks first (RFC 8445 §6.1.4.2), then the best waiting pair; one per Ta.</summary>
    private void SendNextCheckLocked(long now)
    {
        if (_remoteKey is null || _selected is not null) return;
        while (_triggered.First is { } node)
        {
            _triggered.RemoveFirst();
            var pair = node.Value;
            pair.Triggered = false;
            if (pair.State == PairState.Waiting)
            {
                SendCheckLocked(pair, useCandidate: false, isConsent: false, now);
                return;
            }
        }
        CandidatePair? best = null;
        foreach (var pair in _pairs)
            if (pair.State == PairState.Waiting && (best is null || pair.Priority > best.Priority)) best = pair;
        if (best is not null) SendCheckLocked(best, useCandidate: false, isConsent: false, now);
    }

    private void SendCheckLocked(CandidatePair pair, bool useCandidate, bool isConsent, long now)
    {
        if (_remoteKey is null) return;
        var transactionId = StunMessageBuilder.NewTransactionId();
        // PRIORITY carries what a peer-reflexive candidate learned from this check would get (§7.1.1).
        var prflxPriority = (110u << 24) | (pair.Local.Candidate.Priority & 0x00FFFF00u) | 255u;
        var builder = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, transactionId)
            .AddUsername($"{_remoteUfrag}:{LocalUfrag}")
            .AddPriority(prflxPriority);
        if (IsControlling) builder.AddIceControlling(TieBreaker);
        else builder.AddIceControlled(TieBreaker);
        if (useCandidate) builder.AddUseCandidate();
        var request = builder.AddMessageIntegrity(_remoteKey).AddFingerprint().ToArray();
        var rto = ToTicks(_options.CheckRetransmitTimeout);
        _transactions[TransactionKey(transactionId)] = new CheckTransaction(pair, request, useCandidate, isConsent, IsControlling)
        {
            RtoTicks = rto,
            RetransmitAtTicks = now + rto,
        };
        if (!isConsent && pair.State != PairState.Succeeded) pair.State = PairState.InProgress;
        if (pair.FirstCheckAt == 0) pair.FirstCheckAt = now;
        pair.Local.SendTo(request, pair.Remote, pair.RemoteAddress);
    }

    private void SendErrorLocked(LocalSocket local, StunMessage request, IPEndPoint source, int code, string reason, IReadOnlyList<ushort>? unknown)
    {
        var builder = new StunMessageBuilder(StunMethod.Binding, StunClass.ErrorResponse, request.TransactionId).AddErrorCode(code, reason);
        if (unknown is not null) builder.AddUnknownAttributes(unknown);
        builder.AddMessageIntegrity(_localKey).AddFingerprint();
        SendRawLocked(local, builder.Span, source);
    }

    private static void SendRawLocked(LocalSocket local, ReadOnlySpan<byte> datagram, IPEndPoint destination) =>
        local.SendTo(datagram, destination, null);

    private static (ulong, uint) TransactionKey(ReadOnlySpan<byte> transactionId) =>
        (BinaryPrimitives.ReadUInt64BigEndian(transactionId), BinaryPrimitives.ReadUInt32BigEndian(transactionId[8..]));

    private void SetStateLocked(IceConnectionState state)
    {
        if (State == state) return;
        State = state;
        if (state is IceConnectionState.Failed or IceConnectionState.Closed) _timer?.Change(Timeout.Infinite, Timeout.Infinite);
        _deferredEvents.Add(() => StateChanged?.Invoke(state));
    }

    private void RaiseDeferred()
    {
        Action[] events;
        lock (_gate)
        {
            if (_deferredEvents.Count == 0) return;
            events = _deferredEvents.ToArray();
            _deferredEvents.Clear();
        }
        foreach (var raise in events) raise();
    }

    public void Dispose()
    {
        LocalSocket[] sockets;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _timer?.Dispose();
            _timer = null;
            _selected = null;
            State = IceConnectionState.Closed;
            sockets = _sockets.ToArray();
        }
        foreach (var local in sockets) local.Close();
        foreach (var local in sockets)
            if (local.ReceiveThread is { } thread && thread != Thread.CurrentThread) thread.Join(TimeSpan.FromSeconds(2));
        CancelGathering();
    }
}
