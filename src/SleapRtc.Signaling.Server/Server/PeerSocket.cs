using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>What one connection may make the server hold or do (SignalingServerOptions has the documented defaults).</summary>
internal sealed record PeerSocketLimits(
    int MaxMessageBytes,
    int MaxQueuedMessages = 8192,
    long MaxQueuedBytes = 4L * 1024 * 1024,
    TimeSpan? SendStallTimeout = null,
    int MalformedMessageAllowance = 100);

/// <summary>
/// One server-side WebSocket: a reader that hands complete text messages to the hub one at a time
/// (so a peer's messages are handled in order), and a writer draining a bounded queue so a slow
/// receiver never blocks the sender of a relayed message. The queue is bounded in messages and in bytes,
/// and a send that stalls is abandoned: a peer that stops reading is dropped instead of growing memory.
/// </summary>
internal sealed class PeerSocket : IPeerLink
{
    /// <summary>Malformed messages forgiven per second once the allowance is used.</summary>
    private const double MalformedRefillPerSecond = 10;

    /// <summary>Above this, the receive buffer a message needed is dropped after the message.</summary>
    private const int LargeMessageBytes = 64 * 1024;

    private readonly WebSocket _socket;
    private readonly Channel<byte[]> _outgoing;
    private readonly PeerSocketLimits _limits;
    private readonly TimeSpan _sendStallTimeout;
    private readonly CancellationTokenSource _closing = new();
    private long _queuedBytes;
    private int _closeRequested;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private string _closeDescription = "";
    private double _malformedAllowance;
    private long _malformedCheckedAt = Environment.TickCount64;

    public PeerSocket(WebSocket socket, string remoteAddress, string hostName, PeerSocketLimits limits)
    {
        HostName = hostName;
        _socket = socket;
        RemoteAddress = remoteAddress;
        _limits = limits;
        _sendStallTimeout = limits.SendStallTimeout ?? TimeSpan.FromSeconds(20);
        _malformedAllowance = limits.MalformedMessageAllowance;
        _outgoing = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(limits.MaxQueuedMessages)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string RemoteAddress { get; }

    /// <summary>The host name the peer used to reach us (Host header): where it can also reach our STUN responder.</summary>
    public string HostName { get; }

    /// <summary>Set once the connection registered: the identity every relayed message from it carries.</summary>
    public string? PeerId { get; set; }
    public string? RoomId { get; set; }
    public string? Role { get; set; }

    /// <summary>The peer listed server_draining in its register message: it moves to another instance when told to.</summary>
    public bool MovesWhenDraining { get; set; }

    /// <summary>The peer listed ice_servers_renewal in its register message: it takes fresh TURN credentials while connected.</summary>
    public bool RenewsIceServers { get; set; }

    /// <summary>When (Environment.TickCount64) this peer's TURN credentials are due for renewal; see SignalingHub.IceServerRenewal.</summary>
    internal long IceServersRenewalDue;

    /// <summary>1 once the renewal loop of this connection runs (one per connection, whatever it registers as).</summary>
    internal int IceServersRenewalStarted;

    /// <summary>True once the peer sent a close frame: it said goodbye, rather than being lost.</summary>
    public bool SaidGoodbye { get; private set; }

    /// <summary>Cancelled when the connection ends or the server stops (valid while <see cref="RunAsync"/> runs).</summary>
    public CancellationToken Lifetime { get; private set; }

    /// <summary>Bytes waiting in the outgoing queue (tests check the bound).</summary>
    internal long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    public bool TrySend(string json) => TrySendUtf8(Encoding.UTF8.GetBytes(json));

    /// <summary>Queues UTF-8 JSON; the array may be shared between connections (e.g. a cached peer list) and is never modified.</summary>
    public bool TrySendUtf8(byte[] utf8Json)
    {
        var queued = Interlocked.Add(ref _queuedBytes, utf8Json.Length);
        // One message bigger than the bound still goes out on an empty queue (a large peer list); beyond that the
        // peer is not reading fast enough, and dropping it beats growing memory without bound.
        if (queued > _limits.MaxQueuedBytes && queued != utf8Json.Length)
        {
            Interlocked.Add(ref _queuedBytes, -utf8Json.Length);
            Close(WebSocketCloseStatus.PolicyViolation, "Too many unread bytes");
            return false;
        }
        if (_outgoing.Writer.TryWrite(utf8Json)) return true;
        Interlocked.Add(ref _queuedBytes, -utf8Json.Length);
        Close(WebSocketCloseStatus.PolicyViolation, "Too many unread messages");
        return false;
    }

    /// <summary>
    /// Counts one message that was not a signaling message at all (not JSON, no type, an unknown type). Each costs
    /// the server a parse and an answer; a connection gets an allowance of them, refilled at ten a second, and is
    /// closed when it sends more (a flood, not a peer). A big one costs more: one unit plus one per 16 KiB, so a
    /// flood of 1 MB garbage is closed at its second message, however slowly the server gets through them.
    /// Returns false when the connection is being closed for it.
    /// </summary>
    public bool SpendMalformedAllowance(int length)
    {
        var now = Environment.TickCount64;
        _malformedAllowance = Math.Min(_limits.MalformedMessageAllowance, _malformedAllowance + (now - _malformedCheckedAt) * MalformedRefillPerSecond / 1000);
        _malformedCheckedAt = now;
        _malformedAllowance -= 1 + length / (16 * 1024);
        if (_malformedAllowance >= 0) return true;
        Close(WebSocketCloseStatus.PolicyViolation, "Too many malformed messages");
        return false;
    }

    public void Close(WebSocketCloseStatus status, string description)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) == 1) return;
        _closeStatus = status;
        _closeDescription = description;
        // The writer sends the close frame after what is already queued (one send at a time on a WebSocket);
        // a peer that stopped reading cannot hold the connection open beyond this grace.
        _outgoing.Writer.TryComplete();
        try { _closing.CancelAfter(TimeSpan.FromSeconds(2)); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Drops the connection without a close handshake, as a network failure would (tests of the resume grace).</summary>
    internal void Abort() => _socket.Abort();

    /// <summary>Runs until the peer closes or <paramref name="ct"/> fires; calls <paramref name="onMessage"/> per text message.</summary>
    public async Task RunAsync(Func<PeerSocket, string, Task> onMessage, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _closing.Token);
        Lifetime = linked.Token;
        var writer = WriteLoopAsync(linked.Token);
        try
        {
            await ReadLoopAsync(onMessage, linked.Token).ConfigureAwait(false);
        }
        finally
        {
            _outgoing.Writer.TryComplete();
            try { await writer.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false); }
            catch (TimeoutException) { }
            _socket.Abort();
            _socket.Dispose();
        }
    }

    private async Task ReadLoopAsync(Func<PeerSocket, string, Task> onMessage, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var message = new ArrayBufferWriter<byte>(16 * 1024);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                ValueWebSocketReceiveResult result;
                message.ResetWrittenCount();
                do
                {
                    result = await _socket.ReceiveAsync(buffer.AsMemory(), ct).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        SaidGoodbye = true;
                        Close(WebSocketCloseStatus.NormalClosure, "");
                        return;
                    }
                    if (message.WrittenCount + result.Count > _limits.MaxMessageBytes)
                    {
                        Close(WebSocketCloseStatus.MessageTooBig, "Message exceeds " + _limits.MaxMessageBytes + " bytes");
                        return;
                    }
                    message.Write(buffer.AsSpan(0, result.Count));
                } while (!result.EndOfMessage);

                string text;
                try { text = new UTF8Encoding(false, true).GetString(message.WrittenSpan); }
                catch (DecoderFallbackException)
                {
                    Close(WebSocketCloseStatus.InvalidPayloadData, "Messages must be UTF-8 JSON");
                    return;
                }
                // A large message grew the buffer: give it back rather than keep up to MaxMessageBytes per idle connection.
                if (message.Capacity > LargeMessageBytes) message = new ArrayBufferWriter<byte>(16 * 1024);
                await onMessage(this, text).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Abrupt disconnects and server shutdown end the loop the same way as a close frame.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task WriteLoopAsync(CancellationToken ct)
    {
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (_outgoing.Reader.TryRead(out var utf8Json))
                {
                    await SendWithinStallTimeoutAsync(utf8Json, ct).ConfigureAwait(false);
                    Interlocked.Add(ref _queuedBytes, -utf8Json.Length);
                }
            }
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await _socket.CloseOutputAsync(_closeStatus, _closeDescription, ct).ConfigureAwait(false);
            // Close frame sent (or the peer's already received): stop reading; a well-behaved peer answers, but we need not wait.
            _closing.Cancel();
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _closing.Cancel();
        }
    }

    /// <summary>A send that cannot complete within the stall timeout means the peer stopped reading with the socket
    /// buffers full: abort the connection (cancelling a send aborts a WebSocket; Abort makes sure on every runtime).</summary>
    private async Task SendWithinStallTimeoutAsync(byte[] utf8Json, CancellationToken ct)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(_sendStallTimeout);
        using var abortOnStall = stall.Token.Register(static state => ((WebSocket)state!).Abort(), _socket);
        await _socket.SendAsync(new ArraySegment<byte>(utf8Json), WebSocketMessageType.Text, true, stall.Token).ConfigureAwait(false);
    }
}
