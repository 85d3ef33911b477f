using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using SleapRtc.WebRtc.DataChannels;

namespace SleapRtc.WebRtc.Sctp;

/// <summary>
/// One SCTP association over DTLS (RFC 8261) carrying WebRTC data channels (RFC 8831/8832).
/// All protocol state is guarded by one lock; packets go out on the calling thread (receive, timer or
/// application send). User events are raised outside that lock, in order, on one thread at a time.
/// Handlers must not block waiting for this association's progress.
/// </summary>
public sealed partial class SctpAssociation : IDatagramSink, IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly IDatagramTransport _transport;
    private readonly SctpAssociationOptions _options;
    private readonly SctpPacketWriter _writer;
    private readonly Timer _timer;
    private readonly byte[] _cookieSecret = RandomNumberGenerator.GetBytes(32);
    private readonly uint _localTag;
    private readonly uint _localInitialTsn;
    private readonly long _ticksPerMs = Stopwatch.Frequency / 1000;
    private readonly TaskCompletionSource _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closedTask = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SctpAssociationState _state = SctpAssociationState.Closed;
    private bool _started;
    private uint _peerTag;
    private InitFields _peer;
    private SctpSender? _sender;
    private SctpReceiver? _receiver;
    private Exception? _closeError;
    private bool _closed;

    // Timers: one System.Threading.Timer armed for the earliest of these Stopwatch deadlines.
    private long _timerDue = long.MaxValue;
    private long _t1Deadline = long.MaxValue;
    private long _t3Deadline = long.MaxValue;
    private long _sackDeadline = long.MaxValue;
    private long _heartbeatDeadline = long.MaxValue;
    private long _t2Deadline = long.MaxValue;
    private long _reconfigDeadline = long.MaxValue;
    private int _t1Retransmissions;
    private double _t1RtoMs;
    private byte[]? _cookieToEcho;
    private int _errorCount;
    private bool _unrecognizedReported;

    // Receive-side SACK policy.
    private bool _sackPending;
    private bool _sackImmediately;
    private int _dataPacketsSinceSack;
    private bool _batchMode;
    private int _sendBudget;
    private bool _fastRetransmitPending;

    // Counters.
    private long _packetsSent;
    private long _packetsReceived;
    private long _sacksSent;
    private long _sacksReceived;
    private long _duplicateTsns;
    private long _checksumErrors;
    private long _packetsDiscarded;
    private long _heartbeatsSent;
    private long _t3Expirations;
    private long _internalErrors;

    public SctpAssociation(IDatagramTransport transport, SctpAssociationOptions options)
    {
        _transport = transport ?? throw new ArgumentNullException(nameof(transport));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (transport.MaxDatagramSize < 256) throw new ArgumentException("transport datagrams are too small for SCTP", nameof(transport));
        _writer = new SctpPacketWriter(transport.MaxDatagramSize);
        _localTag = NonZeroRandom();
        _localInitialTsn = NonZeroRandom();
        _nextReconfigRequestSeq = _localInitialTsn;
        _timer = new Timer(static state => ((SctpAssociation)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
        _channels = new DataChannelRouter(this, options.IsDtlsClient, options.RemoteMaxMessageSize);
    }

    /// <summary>The tag every packet to us must carry (tests forge packets the common-header checks accept).</summary>
    internal uint LocalVerificationTag => _localTag;

    public SctpAssociationState State
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>Completes when the association is established; faults if it closes first.</summary>
    public Task Established => _established.Task;

    /// <summary>Completes when the association has closed (orderly or not).</summary>
    public Task Completion => _closedTask.Task;

    /// <summary>A channel the remote opened with DATA_CHANNEL_OPEN (already acknowledged).</summary>
    public event Action<IDataChannel>? ChannelOpened;

    /// <summary>Raised once when the association ends; null for an orderly SHUTDOWN.</summary>
    public event Action<Exception?>? Closed;

    public SctpAssociationStatistics GetStatistics()
    {
        lock (_gate)
        {
            return new SctpAssociationStatistics
            {
                PacketsSent = _packetsSent,
                PacketsReceived = _packetsReceived,
                DataChunksSent = _sender?.ChunksSent ?? 0,
                DataChunksRetransmitted = _sender?.ChunksRetransmitted ?? 0,
                FastRetransmits = _sender?.FastRetransmits ?? 0,
                T3Expirations = _t3Expirations,
                SacksSent = _sacksSent,
                SacksReceived = _sacksReceived,
                DuplicateTsnsReceived = _duplicateTsns,
                ChecksumErrors = _checksumErrors,
                PacketsDiscarded = _packetsDiscarded,
                HeartbeatsSent = _heartbeatsSent,
                InternalErrors = _internalErrors,
                CongestionWindow = _sender?.Cwnd ?? 0,
                BytesInFlight = _sender?.FlightSize ?? 0,
                QueuedBytes = _sender?.QueuedBytes ?? 0,
                PeerReceiveWindow = _sender?.PeerReceiveWindow ?? 0,
                SlowStartThreshold = _sender?.Ssthresh ?? 0,
                SmoothedRttMs = _sender?.SmoothedRttMs ?? 0,
                MinRttMs = _sender?.MinRttMs ?? 0,
                RtoMs = _sender?.RtoMs ?? 0,
            };
        }
    }

    /// <summary>Sends INIT. WebRTC peers both do this; collisions are resolved per RFC 9260 §5.2.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started || _closed) return;
            _started = true;
            if (_state != SctpAssociationState.Closed) return;
            EnterT1State(SctpAssociationState.CookieWait);
        }
        RaisePendingEvents();
    }

    /// <summary>Starts (if needed) and waits until the association is established.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        Start();
        await _established.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void OnDatagram(ReadOnlySpan<byte> datagram)
    {
        lock (_gate)
        {
            try
            {
                if (!_closed)
                {
                    ProcessPacket(datagram);
                    if (_deferredIncomingReset is not null) TryCompleteDeferredIncomingReset();
                    // In batch mode the send budget waits for the batch end, but SACKs keep RFC 9260 §6.2/§6.7 pace:
                    // every second DATA packet and at once for gaps, gap fills, duplicates and the I flag. A SACK per
                    // drained batch starved libwebrtc's sender (it grows cwnd and counts miss indications per SACK):
                    // libwebrtc -> ours through 40 ms / 0.5 % loss moved 0.2 MB/s that way, 0.6-0.7 at RFC pace.
                    if (!_batchMode || _sackImmediately || (_sackPending && _dataPacketsSinceSack >= 2)) FlushAfterReceive();
                }
            }
            catch (Exception error)
            {
                _internalErrors++;
                Fail(new SctpAssociationException("internal error while processing a packet", error), sendAbort: true);
            }
        }
        RaisePendingEvents();
    }

    /// <summary>
    /// Optional: the layer below calls this after delivering every datagram it drained in one wake-up, so
    /// one SACK covers the whole batch (fewer SACKs, higher throughput). Without it SACKs follow RFC 9260
    /// §6.2 (every second DATA packet, at most 200 ms delay).
    /// </summary>
    public void OnDatagramBatchEnd()
    {
        lock (_gate)
        {
            _batchMode = true;
            if (!_closed) FlushAfterReceive();
        }
        RaisePendingEvents();
    }

    public void OnTransportClosed(Exception? error)
    {
        lock (_gate)
        {
            if (!_closed) Fail(new SctpAssociationException("the DTLS transport closed", error), sendAbort: false);
        }
        RaisePendingEvents();
    }

    /// <summary>Sends ABORT and closes every channel with an error.</summary>
    public void Abort(string reason = "aborted by the application")
    {
        lock (_gate)
        {
            if (!_closed) Fail(new SctpAssociationException(reason), sendAbort: true);
        }
        RaisePendingEvents();
    }

    /// <summary>Graceful SHUTDOWN (RFC 9260 §9.2): queued data is delivered first. Completes when closed.</summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_closed)
            {
                if (_state == SctpAssociationState.Established)
                {
                    SetState(SctpAssociationState.ShutdownPending);
                    TryProgressShutdown();
                }
                else if (_state is SctpAssociationState.Closed or SctpAssociationState.CookieWait or SctpAssociationState.CookieEchoed)
                {
                    CloseInternal(null);
                }
            }
        }
        RaisePendingEvents();
        await _closedTask.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        bool needsShutdown;
        lock (_gate) needsShutdown = !_closed && _state == SctpAssociationState.Established;
        if (needsShutdown)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await ShutdownAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The peer did not complete the shutdown in time; abort below.
            }
        }
        Abort("association disposed");
    }

    private static uint NonZeroRandom()
    {
        uint value;
        do value = BinaryPrimitives.ReadUInt32LittleEndian(RandomNumberGenerator.GetBytes(4));
        while (value == 0);
        return value;
    }

    private static long Now => Stopwatch.GetTimestamp();
    private long MsToTicks(double ms) => (long)(ms * _ticksPerMs);

    private void SetState(SctpAssociationState state)
    {
        _state = state;
    }

    private void ProcessPacket(ReadOnlySpan<byte> packet)
    {
        _packetsReceived++;
        if (!TryReadCommonHeader(packet, out uint tag)) return;
        var chunks = packet[SctpPacketWriter.CommonHeaderSize..];
        if (chunks[0] == ChunkType.Init)
        {
            HandleInitPacket(tag, chunks);
            return;
        }
        if (!HasValidVerificationTag(tag, firstType: chunks[0], firstFlags: chunks[1]))
        {
            _packetsDiscarded++;
            return;
        }
        if (ProcessChunks(chunks)) ScheduleSackForData();
    }

    /// <summary>Length, CRC32c and ports of the common header (RFC 9260 §3.1); false discards the packet.</summary>
    private bool TryReadCommonHeader(ReadOnlySpan<byte> packet, out uint verificationTag)
    {
        verificationTag = 0;
        if (packet.Length < SctpPacketWriter.CommonHeaderSize + 4)
        {
            _packetsDiscarded++;
            return false;
        }
        if (!Crc32c.VerifyPacket(packet))
        {
            _checksumErrors++;
            return false;
        }
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(packet);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (sourcePort != _options.RemotePort || destinationPort != _options.LocalPort)
        {
            _packetsDiscarded++;
            return false;
        }
        verificationTag = BinaryPrimitives.ReadUInt32BigEndian(packet[4..]);
        return true;
    }

    /// <summary>INIT travels alone with tag 0 (RFC 9260 §8.5.1); anything else in such a packet discards it.</summary>
    private void HandleInitPacket(uint tag, ReadOnlySpan<byte> chunks)
    {
        var initReader = new SctpChunkReader(chunks);
        if (tag != 0 || !initReader.TryRead(out var init) || initReader.TryRead(out _))
        {
            _packetsDiscarded++;
            return;
        }
        HandleInit(init.Value);
    }

    /// <summary>Our tag, or the peer's own when an ABORT or SHUTDOWN COMPLETE sets the T bit (RFC 9260 §8.5.1).</summary>
    private bool HasValidVerificationTag(uint tag, byte firstType, byte firstFlags)
    {
        bool reflectedTag = (firstType == ChunkType.Abort || firstType == ChunkType.ShutdownComplete) && (firstFlags & 1) != 0;
        return reflectedTag ? (tag == _peerTag && _peerTag != 0) : tag == _localTag;
    }

    /// <summary>
    /// Handles the packet's chunks in order. True when it carried DATA that needs acknowledging and was
    /// processed to the end; an unknown chunk type that says "stop" ends it early (and returns false).
    /// </summary>
    private bool ProcessChunks(ReadOnlySpan<byte> chunks)
    {
        var reader = new SctpChunkReader(chunks);
        bool packetHadData = false;
        _unrecognizedReported = false;
        while (!_closed && reader.TryRead(out var chunk))
        {
            if (chunk.Type == ChunkType.Data) packetHadData |= HandleData(chunk.Flags, chunk.Value);
            else if (!HandleControlChunk(chunk)) return false;
        }
        if (reader.Malformed) _packetsDiscarded++;
        return packetHadData;
    }

    /// <summary>Dispatches one non-DATA chunk; false when the rest of the packet must be skipped.</summary>
    private bool HandleControlChunk(in SctpChunk chunk)
    {
        switch (chunk.Type)
        {
            case ChunkType.Sack:
                HandleSack(chunk.Value);
                break;
            case ChunkType.InitAck:
                HandleInitAck(chunk.Value);
                break;
            case ChunkType.CookieEcho:
                HandleCookieEcho(chunk.Value);
                break;
            case ChunkType.CookieAck:
                HandleCookieAck();
                break;
            case ChunkType.Heartbeat:
                HandleHeartbeat(chunk.Value);
                break;
            case ChunkType.HeartbeatAck:
                HandleHeartbeatAck(chunk.Value);
                break;
            case ChunkType.Abort:
                HandleAbort(chunk.Value);
                break;
            case ChunkType.Shutdown:
                HandleShutdown(chunk.Value);
                break;
            case ChunkType.ShutdownAck:
                HandleShutdownAck();
                break;
            case ChunkType.ShutdownComplete:
                HandleShutdownComplete();
                break;
            case ChunkType.ReConfig:
                HandleReconfig(chunk.Value);
                break;
            case ChunkType.Init:
            case ChunkType.Error:
                break;
            default:
                return HandleUnknownChunk(chunk);
        }
        return true;
    }

    /// <summary>RFC 9260 §3.2: the two high bits of an unknown type say report (x1) and stop (0x) or skip (1x).</summary>
    private bool HandleUnknownChunk(in SctpChunk chunk)
    {
        if ((chunk.Type & 0x40) != 0 && !_unrecognizedReported)
        {
            _unrecognizedReported = true; // one report per packet: no amplification
            ReportUnrecognizedChunk(chunk);
        }
        return (chunk.Type & 0x80) != 0;
    }

    /// <summary>RFC 9260 §6.2: SACK every second DATA packet, at once on gaps or duplicates, else after the delayed-ack timeout.</summary>
    private void ScheduleSackForData()
    {
        _dataPacketsSinceSack++;
        _sackPending = true;
        if (_receiver!.HasGaps || _receiver.DuplicateCount > 0) _sackImmediately = true;
        if (!_sackImmediately && _dataPacketsSinceSack < 2 && _sackDeadline == long.MaxValue)
        {
            _sackDeadline = Now + MsToTicks(DelayedAckMs);
            ArmTimer();
        }
    }

    /// <summary>
    /// The delayed-ack timeout stays well below any peer's RTO floor (dcSCTP: min(200 ms, RTO/2)); otherwise a
    /// sender whose window fell to one packet times out before our SACK leaves and collapses its window again.
    /// </summary>
    private double DelayedAckMs => Math.Min(_options.DelayedAckTimeout.TotalMilliseconds,
        Math.Min(_options.RtoMin.TotalMilliseconds, _sender?.RtoMs ?? double.MaxValue) / 2);

    /// <summary>After a packet (or a batch): send what SACKs and newly opened windows allow.</summary>
    private void FlushAfterReceive()
    {
        if (_closed) return;
        bool sackDue = _sackPending && (_sackImmediately || _dataPacketsSinceSack >= 2 || _batchMode);
        if (_sendBudget > 0 || sackDue || _fastRetransmitPending)
        {
            Transmit(Math.Max(_sendBudget, 1), forceSack: sackDue);
            _sendBudget = 0;
        }
    }

    internal void QueueEvent(in PendingEvent pendingEvent) => _pendingEvents.Add(pendingEvent);

    private List<PendingEvent> _pendingEvents = new();
    private List<PendingEvent> _eventsBeingRaised = new();
    private bool _raisingEvents;

    /// <summary>
    /// Raises queued user events outside the protocol lock, in order and never concurrently. Whichever thread
    /// finds events queued and nobody raising becomes the raiser (normally the receive thread); a thread that
    /// finds a raiser at work leaves its events to it, so a slow handler never blocks Send.
    /// </summary>
    private void RaisePendingEvents()
    {
        lock (_gate)
        {
            if (_raisingEvents || _pendingEvents.Count == 0) return;
            _raisingEvents = true;
        }
        while (true)
        {
            lock (_gate)
            {
                if (_pendingEvents.Count == 0)
                {
                    _raisingEvents = false;
                    return;
                }
                (_pendingEvents, _eventsBeingRaised) = (_eventsBeingRaised, _pendingEvents);
            }
            foreach (var pending in _eventsBeingRaised) RaiseEvent(pending);
            _eventsBeingRaised.Clear();
        }
    }

    private void RaiseEvent(in PendingEvent pending)
    {
        try
        {
            switch (pending.Kind)
            {
                case PendingEventKind.Message:
                    pending.Channel!.RaiseMessage(pending.Ppid, pending.Buffer!, pending.Length);
                    break;
                case PendingEventKind.RemoteChannelOpened:
                    ChannelOpened?.Invoke(pending.Channel!);
                    break;
                case PendingEventKind.ChannelClosed:
                    pending.Channel!.RaiseClosed(pending.Error);
                    break;
                case PendingEventKind.BufferedAmountLow:
                    pending.Channel!.RaiseBufferedAmountLow();
                    break;
                case PendingEventKind.AssociationClosed:
                    Closed?.Invoke(pending.Error);
                    break;
            }
        }
        catch (Exception)
        {
            // A throwing user handler must not take the transport down with it.
        }
        finally
        {
            if (pending.Buffer is not null) System.Buffers.ArrayPool<byte>.Shared.Return(pending.Buffer);
        }
    }

    private void ArmTimer()
    {
        long next = Math.Min(Math.Min(_t1Deadline, _t3Deadline), Math.Min(Math.Min(_sackDeadline, _heartbeatDeadline), Math.Min(_t2Deadline, _reconfigDeadline)));
        if (next == long.MaxValue || next >= _timerDue || _closed) return;
        _timerDue = next;
        long dueMs = Math.Max(1, (next - Now + _ticksPerMs - 1) / _ticksPerMs);
        _timer.Change(dueMs, Timeout.Infinite);
    }

    private void OnTimer()
    {
        lock (_gate)
        {
            _timerDue = long.MaxValue;
            if (_closed) return;
            try
            {
                long now = Now;
                if (_sackDeadline <= now)
                {
                    _sackDeadline = long.MaxValue;
                    if (_sackPending) Transmit(1, forceSack: true);
                }
                if (_t1Deadline <= now) OnT1Expired(now);
                if (!_closed && _t3Deadline <= now) OnT3Expired(now);
                if (!_closed && _t2Deadline <= now) OnT2Expired(now);
                if (!_closed && _reconfigDeadline <= now) OnReconfigTimer(now);
                if (!_closed && _heartbeatDeadline <= now) OnHeartbeatTimer(now);
                ArmTimer();
            }
            catch (Exception error)
            {
                _internalErrors++;
                Fail(new SctpAssociationException("internal error in an SCTP timer", error), sendAbort: true);
            }
        }
        RaisePendingEvents();
    }

    private void SendPacket()
    {
        var packet = _writer.Finish();
        _packetsSent++;
        try
        {
            _transport.Send(packet);
        }
        catch (Exception error) when (error is ObjectDisposedException or InvalidOperationException or IOException)
        {
            Fail(new SctpAssociationException("the DTLS transport failed to send", error), sendAbort: false);
        }
    }

    private void BeginPacket() => _writer.Begin(_options.LocalPort, _options.RemotePort, _peerTag);

    /// <summary>Ends the association: channels and waiters see <paramref name="error"/> (null = orderly).</summary>
    private void CloseInternal(Exception? error)
    {
        if (_closed) return;
        _closed = true;
        _closeError = error;
        SetState(SctpAssociationState.Closed);
        _t1Deadline = _t3Deadline = _sackDeadline = _heartbeatDeadline = _t2Deadline = _reconfigDeadline = long.MaxValue;
        _timer.Dispose();
        _channels.CloseAll(error);
        _sender?.Release();
        _receiver?.Release();
        _pendingEvents.Add(new PendingEvent(PendingEventKind.AssociationClosed, null, error));
        if (error is null)
        {
            _established.TrySetException(new SctpAssociationException("the association closed before it was established"));
            _closedTask.TrySetResult();
        }
        else
        {
            _established.TrySetException(error);
            _closedTask.TrySetResult();
        }
        _ = _established.Task.Exception; // observed: a never-awaited Established must not surface as unobserved
    }

    private void Fail(Exception error, bool sendAbort)
    {
        if (_closed) return;
        if (sendAbort && _peerTag != 0) SendAbortChunk(ErrorCause.UserInitiatedAbort);
        CloseInternal(error);
    }
}

internal enum PendingEventKind { Message, RemoteChannelOpened, ChannelClosed, BufferedAmountLow, AssociationClosed }

internal readonly struct PendingEvent
{
    public PendingEvent(PendingEventKind kind, RtcDataChannel? channel, Exception? error = null, byte[]? buffer = null, int length = 0, uint ppid = 0)
    {
        Kind = kind;
        Channel = channel;
        Error = error;
        Buffer = buffer;
        Length = length;
        Ppid = ppid;
    }

    public PendingEventKind Kind { get; }
    public RtcDataChannel? Channel { get; }
    public Exception? Error { get; }
    public byte[]? Buffer { get; }
    public int Length { get; }
    public uint Ppid { get; }
}
