using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// One server-side WebSocket: a reader that hands complete text messages to the hub one at a time
/// (so a peer's messages are handled in order), and a writer draining a bounded queue so a slow
/// receiver never blocks the sender of a relayed message.
/// </summary>
internal sealed class PeerSocket : IPeerLink
{
    private readonly WebSocket _socket;
    private readonly Channel<byte[]> _outgoing;
    private readonly int _maxMessageBytes;
    private readonly CancellationTokenSource _closing = new();
    private int _closeRequested;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private string _closeDescription = "";

    public PeerSocket(WebSocket socket, string remoteAddress, string hostName, int maxMessageBytes, int maxQueued)
    {
        HostName = hostName;
        _socket = socket;
        RemoteAddress = remoteAddress;
        _maxMessageBytes = maxMessageBytes;
        _outgoing = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(maxQueued)
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

    public bool TrySend(string json) => TrySendUtf8(Encoding.UTF8.GetBytes(json));

    /// <summary>Queues UTF-8 JSON; the array may be shared between connections (e.g. a cached peer list) and is never modified.</summary>
    public bool TrySendUtf8(byte[] utf8Json)
    {
        if (_outgoing.Writer.TryWrite(utf8Json)) return true;
        // Full queue: the peer stopped reading; dropping it beats growing memory without bound.
        Close(WebSocketCloseStatus.PolicyViolation, "Too many unread messages");
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

    /// <summary>Runs until the peer closes or <paramref name="ct"/> fires; calls <paramref name="onMessage"/> per text message.</summary>
    public async Task RunAsync(Func<PeerSocket, string, Task> onMessage, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _closing.Token);
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
                        Close(WebSocketCloseStatus.NormalClosure, "");
                        return;
                    }
                    if (message.WrittenCount + result.Count > _maxMessageBytes)
                    {
                        Close(WebSocketCloseStatus.MessageTooBig, "Message exceeds " + _maxMessageBytes + " bytes");
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
                    await _socket.SendAsync(utf8Json, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
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
}
