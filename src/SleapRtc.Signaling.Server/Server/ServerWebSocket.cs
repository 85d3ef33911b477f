using System.Buffers;
using System.Net.WebSockets;
using System.Text;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// The server side of RFC 6455 over a stream the HTTP upgrade already switched. .NET Framework (Windows PowerShell
/// 5.1) has no WebSocket.CreateFromStream, so the netstandard2.0 build of the server uses this; it keeps the
/// runtime's semantics that PeerSocket relies on: partial receives bounded by the caller's buffer, a Close result
/// with status and reason, the Open → CloseSent/CloseReceived → Closed states, cancellation aborting the socket.
/// </summary>
internal sealed class ServerWebSocket : WebSocket
{
    private const byte OpContinuation = 0x0, OpText = 0x1, OpBinary = 0x2, OpClose = 0x8, OpPing = 0x9, OpPong = 0xA;
    private const int MaxControlPayload = 125;

    private readonly Stream _stream;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly object _stateLock = new();
    private readonly byte[] _header = new byte[14];
    private readonly byte[] _mask = new byte[4];
    private WebSocketState _state = WebSocketState.Open;
    private WebSocketCloseStatus? _closeStatus;
    private string? _closeDescription;

    // Receive side: the data frame being read and the message it belongs to.
    private long _frameRemaining;
    private bool _frameFinal;
    private int _maskOffset;
    private bool _inMessage;
    private WebSocketMessageType _messageType;

    // Send side: a message sent in several SendAsync calls continues with continuation frames.
    private bool _sendingFragments;

    public ServerWebSocket(Stream stream) => _stream = stream;

    public override WebSocketCloseStatus? CloseStatus => _closeStatus;
    public override string? CloseStatusDescription => _closeDescription;
    public override WebSocketState State => _state;
    public override string? SubProtocol => null;

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        ThrowIfNotIn(WebSocketState.Open, WebSocketState.CloseSent);
        cancellationToken.ThrowIfCancellationRequested();
        // Like the runtime's: cancelling a receive aborts the socket (a stream read cannot be cancelled otherwise).
        using var abortOnCancel = cancellationToken.Register(static state => ((ServerWebSocket)state!).Abort(), this);
        try
        {
            while (true)
            {
                if (_frameRemaining == 0)
                {
                    var result = await ReadFrameHeaderAsync(cancellationToken).ConfigureAwait(false);
                    if (result is not null) return result;
                    if (_frameRemaining == 0) continue; // an empty non-final fragment
                }
                var count = (int)Math.Min(buffer.Count, _frameRemaining);
                var read = count == 0 ? 0 : await _stream.ReadAsync(buffer.Array!, buffer.Offset, count, cancellationToken).ConfigureAwait(false);
                if (read == 0 && count > 0) throw Vanished(null);
                Unmask(buffer.Array!, buffer.Offset, read);
                _frameRemaining -= read;
                var endOfMessage = _frameRemaining == 0 && _frameFinal;
                if (endOfMessage) _inMessage = false;
                return new WebSocketReceiveResult(read, _messageType, endOfMessage);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            if (cancellationToken.IsCancellationRequested) throw new OperationCanceledException(cancellationToken);
            throw Vanished(e);
        }
    }

    public override async Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        if (messageType == WebSocketMessageType.Close) throw new ArgumentException("use CloseOutputAsync to send a close frame", nameof(messageType));
        ThrowIfNotIn(WebSocketState.Open, WebSocketState.CloseReceived);
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var opcode = _sendingFragments ? OpContinuation : messageType == WebSocketMessageType.Text ? OpText : OpBinary;
            _sendingFragments = !endOfMessage;
            await WriteFrameLockedAsync(opcode, endOfMessage, buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw Vanished(e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public override async Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        ThrowIfNotIn(WebSocketState.Open, WebSocketState.CloseReceived);
        var reason = Encoding.UTF8.GetBytes(statusDescription ?? "");
        if (reason.Length > MaxControlPayload - 2) throw new ArgumentException("the close reason must fit in 123 UTF-8 bytes", nameof(statusDescription));
        var payload = new byte[2 + reason.Length];
        payload[0] = (byte)((int)closeStatus >> 8);
        payload[1] = (byte)closeStatus;
        reason.CopyTo(payload, 2);
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteFrameLockedAsync(OpClose, true, new ArraySegment<byte>(payload), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw Vanished(e);
        }
        finally
        {
            _sendLock.Release();
        }
        lock (_stateLock) _state = _state == WebSocketState.CloseReceived ? WebSocketState.Closed : WebSocketState.CloseSent;
    }

    public override async Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        if (_state is WebSocketState.Open or WebSocketState.CloseReceived)
            await CloseOutputAsync(closeStatus, statusDescription, cancellationToken).ConfigureAwait(false);
        // Wait for the peer's close, discarding whatever data it still sends.
        var discard = new byte[4096];
        while (_state == WebSocketState.CloseSent)
            await ReceiveAsync(new ArraySegment<byte>(discard), cancellationToken).ConfigureAwait(false);
    }

    public override void Abort()
    {
        lock (_stateLock)
        {
            if (_state is not (WebSocketState.Closed or WebSocketState.Aborted)) _state = WebSocketState.Aborted;
        }
        _stream.Dispose();
    }

    public override void Dispose()
    {
        lock (_stateLock)
        {
            if (_state != WebSocketState.Closed) _state = WebSocketState.Aborted;
        }
        _stream.Dispose();
    }

    /// <summary>Reads the next frame header; answers control frames. Returns a result only for a close frame.</summary>
    private async Task<WebSocketReceiveResult?> ReadFrameHeaderAsync(CancellationToken cancellationToken)
    {
        await ReadExactlyAsync(_header, 2, cancellationToken).ConfigureAwait(false);
        var final = (_header[0] & 0x80) != 0;
        var opcode = (byte)(_header[0] & 0x0F);
        if ((_header[0] & 0x70) != 0) throw await ProtocolErrorAsync("reserved bits set without a negotiated extension").ConfigureAwait(false);
        if ((_header[1] & 0x80) == 0) throw await ProtocolErrorAsync("a client frame was not masked").ConfigureAwait(false);
        long length = _header[1] & 0x7F;
        if (length == 126)
        {
            await ReadExactlyAsync(_header, 2, cancellationToken).ConfigureAwait(false);
            length = (_header[0] << 8) | _header[1];
        }
        else if (length == 127)
        {
            await ReadExactlyAsync(_header, 8, cancellationToken).ConfigureAwait(false);
            if ((_header[0] & 0x80) != 0) throw await ProtocolErrorAsync("a 64-bit length must have its high bit clear").ConfigureAwait(false);
            length = 0;
            for (var i = 0; i < 8; i++) length = (length << 8) | _header[i];
        }
        var isControl = opcode is OpClose or OpPing or OpPong;
        if (isControl && (!final || length > MaxControlPayload))
            throw await ProtocolErrorAsync("control frames must be whole and at most 125 bytes").ConfigureAwait(false);
        await ReadExactlyAsync(_mask, 4, cancellationToken).ConfigureAwait(false);
        _maskOffset = 0;

        switch (opcode)
        {
            case OpClose:
            case OpPing:
            case OpPong:
                var payload = new byte[length];
                await ReadExactlyAsync(payload, payload.Length, cancellationToken).ConfigureAwait(false);
                Unmask(payload, 0, payload.Length);
                if (opcode == OpPing) await SendPongAsync(payload, cancellationToken).ConfigureAwait(false);
                return opcode == OpClose ? ReceivedClose(payload) : null;
            case OpText:
            case OpBinary:
                if (_inMessage) throw await ProtocolErrorAsync("a new message started before the previous one ended").ConfigureAwait(false);
                _messageType = opcode == OpText ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
                break;
            case OpContinuation:
                if (!_inMessage) throw await ProtocolErrorAsync("a continuation frame without a message to continue").ConfigureAwait(false);
                break;
            default:
                throw await ProtocolErrorAsync($"unknown opcode {opcode}").ConfigureAwait(false);
        }
        _inMessage = true;
        _frameFinal = final;
        _frameRemaining = length;
        if (length == 0 && final)
        {
            _inMessage = false;
            return new WebSocketReceiveResult(0, _messageType, true);
        }
        return null;
    }

    private WebSocketReceiveResult ReceivedClose(byte[] payload)
    {
        if (payload.Length >= 2)
        {
            _closeStatus = (WebSocketCloseStatus)((payload[0] << 8) | payload[1]);
            _closeDescription = Encoding.UTF8.GetString(payload, 2, payload.Length - 2);
        }
        else
        {
            _closeStatus = WebSocketCloseStatus.Empty;
            _closeDescription = "";
        }
        lock (_stateLock) _state = _state == WebSocketState.CloseSent ? WebSocketState.Closed : WebSocketState.CloseReceived;
        return new WebSocketReceiveResult(0, WebSocketMessageType.Close, true, _closeStatus, _closeDescription);
    }

    private async Task SendPongAsync(byte[] payload, CancellationToken cancellationToken)
    {
        if (_state is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try { await WriteFrameLockedAsync(OpPong, true, new ArraySegment<byte>(payload), cancellationToken).ConfigureAwait(false); }
        finally { _sendLock.Release(); }
    }

    /// <summary>Header and payload in one write, so a frame is never split between concurrent senders or by Nagle.</summary>
    private async Task WriteFrameLockedAsync(byte opcode, bool final, ArraySegment<byte> payload, CancellationToken cancellationToken)
    {
        var headerLength = payload.Count <= 125 ? 2 : payload.Count <= ushort.MaxValue ? 4 : 10;
        var frame = ArrayPool<byte>.Shared.Rent(headerLength + payload.Count);
        try
        {
            frame[0] = (byte)((final ? 0x80 : 0) | opcode);
            if (headerLength == 2)
            {
                frame[1] = (byte)payload.Count;
            }
            else if (headerLength == 4)
            {
                frame[1] = 126;
                frame[2] = (byte)(payload.Count >> 8);
                frame[3] = (byte)payload.Count;
            }
            else
            {
                frame[1] = 127;
                long length = payload.Count;
                for (var i = 9; i >= 2; i--, length >>= 8) frame[i] = (byte)length;
            }
            if (payload.Count > 0) Buffer.BlockCopy(payload.Array!, payload.Offset, frame, headerLength, payload.Count);
            await _stream.WriteAsync(frame, 0, headerLength + payload.Count, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    private void Unmask(byte[] data, int offset, int count)
    {
        for (var i = 0; i < count; i++)
        {
            data[offset + i] ^= _mask[_maskOffset];
            _maskOffset = (_maskOffset + 1) & 3;
        }
    }

    private async Task ReadExactlyAsync(byte[] destination, int count, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < count)
        {
            var read = await _stream.ReadAsync(destination, filled, count - filled, cancellationToken).ConfigureAwait(false);
            if (read == 0) throw Vanished(null);
            filled += read;
        }
    }

    /// <summary>Tells the peer why (close 1002), then fails the socket the way the runtime does.</summary>
    private async Task<WebSocketException> ProtocolErrorAsync(string reason)
    {
        try
        {
            if (_state is WebSocketState.Open or WebSocketState.CloseReceived)
                await CloseOutputAsync(WebSocketCloseStatus.ProtocolError, "protocol error", CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException) { }
        Abort();
        return new WebSocketException(WebSocketError.Faulted, "WebSocket protocol error: " + reason);
    }

    private WebSocketException Vanished(Exception? inner)
    {
        Abort();
        return new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "the remote party closed the WebSocket connection without completing the close handshake", inner);
    }

    private void ThrowIfNotIn(WebSocketState first, WebSocketState second)
    {
        var state = _state;
        if (state != first && state != second)
            throw new WebSocketException(WebSocketError.InvalidState, $"the WebSocket is {state}; this operation needs {first} or {second}");
    }
}
