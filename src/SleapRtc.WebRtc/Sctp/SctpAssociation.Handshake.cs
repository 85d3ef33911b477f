using System.Buffers.Binary;

namespace SleapRtc.WebRtc.Sctp;

// Association setup: INIT, INIT ACK with a signed state cookie, COOKIE ECHO/ACK, T1 timers and
// the INIT collision rules of RFC 9260 §5.2 (every WebRTC peer sends INIT, Chromium in both DTLS roles).
public sealed partial class SctpAssociation
{
    private const ushort StreamCount = 65535;

    private void SendInit()
    {
        _writer.Begin(_options.LocalPort, _options.RemotePort, 0);
        WriteInitChunk(ChunkType.Init, cookie: null, unrecognized: null);
        SendPacket();
    }

    /// <summary>INIT and INIT ACK share the fixed part; we always use one tag and initial TSN per association.</summary>
    private void WriteInitChunk(byte type, byte[]? cookie, List<byte[]>? unrecognized)
    {
        int length = InitFields.FixedSize + 8; // Supported Extensions: RE-CONFIG
        if (cookie is not null) length += 4 + ((cookie.Length + 3) & ~3);
        if (unrecognized is not null)
        {
            foreach (var parameter in unrecognized) length += 4 + ((parameter.Length + 3) & ~3);
        }
        var value = _writer.AddChunk(type, 0, length);
        value.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(value, _localTag);
        BinaryPrimitives.WriteUInt32BigEndian(value[4..], (uint)_options.ReceiveWindow);
        BinaryPrimitives.WriteUInt16BigEndian(value[8..], StreamCount);
        BinaryPrimitives.WriteUInt16BigEndian(value[10..], StreamCount);
        BinaryPrimitives.WriteUInt32BigEndian(value[12..], _localInitialTsn);
        int position = InitFields.FixedSize;
        BinaryPrimitives.WriteUInt16BigEndian(value[position..], ParameterType.SupportedExtensions);
        BinaryPrimitives.WriteUInt16BigEndian(value[(position + 2)..], 5);
        value[position + 4] = ChunkType.ReConfig;
        position += 8;
        if (cookie is not null)
        {
            BinaryPrimitives.WriteUInt16BigEndian(value[position..], ParameterType.StateCookie);
            BinaryPrimitives.WriteUInt16BigEndian(value[(position + 2)..], (ushort)(4 + cookie.Length));
            cookie.CopyTo(value[(position + 4)..]);
            position += 4 + ((cookie.Length + 3) & ~3);
        }
        if (unrecognized is not null)
        {
            foreach (var parameter in unrecognized)
            {
                BinaryPrimitives.WriteUInt16BigEndian(value[position..], ParameterType.UnrecognizedParameter);
                BinaryPrimitives.WriteUInt16BigEndian(value[(position + 2)..], (ushort)(4 + parameter.Length));
                parameter.CopyTo(value[(position + 4)..]);
                position += 4 + ((parameter.Length + 3) & ~3);
            }
        }
    }

    private void HandleInit(ReadOnlySpan<byte> value)
    {
        var unrecognized = new List<byte[]>();
        if (!InitFields.TryParse(value, out var peer, out _, unrecognized))
        {
            _packetsDiscarded++;
            return;
        }
        if (_state is SctpAssociationState.ShutdownAckSent or SctpAssociationState.ShutdownSent or SctpAssociationState.ShutdownReceived)
        {
            return;
        }
        // In every state we answer with our one tag and initial TSN: in COOKIE-WAIT/COOKIE-ECHOED this is the
        // collision rule of §5.2.1; when established a duplicate INIT gets the same answer and a COOKIE ECHO
        // with matching tags is then acknowledged again (§5.2.4 case D).
        var cookie = SctpStateCookie.Create(_cookieSecret, _localTag, peer, Environment.TickCount64);
        int unrecognizedBytes = 0;
        foreach (var parameter in unrecognized) unrecognizedBytes += 8 + parameter.Length;
        if (unrecognizedBytes > _writer.MaxPacketSize / 2) unrecognized.Clear();
        _writer.Begin(_options.LocalPort, _options.RemotePort, peer.InitiateTag);
        WriteInitChunk(ChunkType.InitAck, cookie, unrecognized.Count > 0 ? unrecognized : null);
        SendPacket();
    }

    private void HandleInitAck(ReadOnlySpan<byte> value)
    {
        if (_state != SctpAssociationState.CookieWait) return;
        if (!InitFields.TryParse(value, out var peer, out var cookie, null) || cookie.IsEmpty)
        {
            _packetsDiscarded++;
            return;
        }
        _peer = peer;
        _peerTag = peer.InitiateTag;
        _cookieToEcho = cookie.ToArray();
        SetState(SctpAssociationState.CookieEchoed);
        _t1RtoMs = _options.RtoInitial.TotalMilliseconds;
        _t1Retransmissions = 0;
        SendCookieEcho();
        _t1Deadline = Now + MsToTicks(_t1RtoMs);
        ArmTimer();
    }

    private void SendCookieEcho()
    {
        BeginPacket();
        _writer.AddChunkWithValue(ChunkType.CookieEcho, 0, _cookieToEcho);
        SendPacket();
    }

    private void HandleCookieEcho(ReadOnlySpan<byte> value)
    {
        if (!SctpStateCookie.TryOpen(_cookieSecret, value, Environment.TickCount64, (long)_options.CookieLifetime.TotalMilliseconds, out uint localTag, out var peer)
            || localTag != _localTag)
        {
            _packetsDiscarded++;
            return;
        }
        if (_state is SctpAssociationState.Closed or SctpAssociationState.CookieWait or SctpAssociationState.CookieEchoed)
        {
            if (_state == SctpAssociationState.CookieEchoed && peer.InitiateTag != _peerTag)
            {
                // Our INIT ACK came from another incarnation of the peer; the cookie is the fresher truth.
                _cookieToEcho = null;
            }
            _peer = peer;
            _peerTag = peer.InitiateTag;
            // COOKIE ACK first: establishing sends the DATA_CHANNEL_OPENs queued meanwhile, and a peer still in
            // COOKIE-ECHOED drops DATA that overtakes the COOKIE ACK, costing a 1 s retransmission timeout.
            SendCookieAck();
            EnterEstablished();
            return;
        }
        if (peer.InitiateTag == _peerTag)
        {
            SendCookieAck(); // §5.2.4 case D: our COOKIE ACK was lost
            return;
        }
        // §5.2.4 case A: the peer restarted. Data channels cannot survive that; report it.
        Fail(new SctpAssociationException("the peer restarted the SCTP association"), sendAbort: false);
    }

    private void SendCookieAck()
    {
        BeginPacket();
        _writer.AddEmptyChunk(ChunkType.CookieAck);
        SendPacket();
    }

    private void HandleCookieAck()
    {
        if (_state != SctpAssociationState.CookieEchoed) return;
        EnterEstablished();
    }

    private void EnterEstablished()
    {
        _t1Deadline = long.MaxValue;
        _cookieToEcho = null;
        _started = true;
        _sender = new SctpSender(_localInitialTsn, _writer.MaxPacketSize, _options.InitialCwndPackets, _peer.AdvertisedWindow, _options);
        _receiver = new SctpReceiver(_peer.InitialTsn, _options.ReceiveWindow, _options.LocalMaxMessageSize);
        _peerNextReconfigRequestSeq = _peer.InitialTsn;
        SetState(SctpAssociationState.Established);
        _lastReceiveTicks = Now;
        _heartbeatDeadline = Now + MsToTicks(_options.HeartbeatInterval.TotalMilliseconds);
        ArmTimer();
        _established.TrySetResult();
        _channels.OnAssociationEstablished();
    }

    private void OnT1Expired(long now)
    {
        _t1Deadline = long.MaxValue;
        if (_state is not (SctpAssociationState.CookieWait or SctpAssociationState.CookieEchoed)) return;
        if (++_t1Retransmissions > _options.MaxInitRetransmissions)
        {
            Fail(new SctpAssociationException("the peer did not answer SCTP INIT / COOKIE ECHO"), sendAbort: false);
            return;
        }
        _t1RtoMs = Math.Min(_t1RtoMs * 2, _options.RtoMax.TotalMilliseconds);
        if (_state == SctpAssociationState.CookieWait) SendInit();
        else SendCookieEcho();
        _t1Deadline = now + MsToTicks(_t1RtoMs);
    }
}
