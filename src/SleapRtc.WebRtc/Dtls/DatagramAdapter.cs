using System.Buffers;
using System.Threading.Channels;
using Org.BouncyCastle.Tls;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// BouncyCastle's view of the ICE path: inbound DTLS datagrams wait in a bounded channel (dropped when
/// full, as a UDP socket would) and Receive blocks on it without polling; Send goes straight to ICE.
/// </summary>
/// <summary>Sends one datagram on the selected ICE path.</summary>
public delegate void SpanAction(ReadOnlySpan<byte> datagram);

internal sealed class DatagramAdapter : DatagramTransport
{
    /// <summary>Keeps wire datagrams at or under ~1200 bytes (BC leaves 1163 bytes of record plaintext).</summary>
    public const int SendLimit = 1200;
    private const int ReceiveLimit = 1500;

    private readonly Channel<(byte[] Buffer, int Length)> _inbound = Channel.CreateBounded<(byte[], int)>(
        new BoundedChannelOptions(4096) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SpanAction _send;
    private volatile bool _closed;

    public DatagramAdapter(SpanAction send) => _send = send;

    public bool IsClosed => _closed;

    public int PendingCount => _inbound.Reader.Count;

    /// <summary>Called by the ICE receive path for datagrams whose first byte is 20–63 (RFC 7983).</summary>
    public void Enqueue(ReadOnlySpan<byte> datagram)
    {
        if (_closed || datagram.Length > ReceiveLimit) return;
        var buffer = ArrayPool<byte>.Shared.Rent(datagram.Length);
        datagram.CopyTo(buffer);
        if (!_inbound.Writer.TryWrite((buffer, datagram.Length))) ArrayPool<byte>.Shared.Return(buffer);
    }

    public int GetReceiveLimit() => ReceiveLimit;

    public int GetSendLimit() => SendLimit;

    public int Receive(byte[] buf, int off, int len, int waitMillis) => Receive(buf.AsSpan(off, len), waitMillis);

    public int Receive(Span<byte> buffer, int waitMillis)
    {
        if (!_inbound.Reader.TryRead(out var item))
        {
            if (_closed) throw new IOException("DTLS transport closed");
            var wait = _inbound.Reader.WaitToReadAsync();
            if (!wait.IsCompleted && !wait.AsTask().Wait(Math.Max(1, waitMillis))) return -1;
            if (!_inbound.Reader.TryRead(out item))
            {
                if (_closed) throw new IOException("DTLS transport closed");
                return -1;
            }
        }
        var length = Math.Min(item.Length, buffer.Length);
        item.Buffer.AsSpan(0, length).CopyTo(buffer);
        ArrayPool<byte>.Shared.Return(item.Buffer);
        return length;
    }

    public void Send(byte[] buf, int off, int len) => Send(buf.AsSpan(off, len));

    public void Send(ReadOnlySpan<byte> buffer)
    {
        if (!_closed) _send(buffer);
    }

    public void Close()
    {
        _closed = true;
        _inbound.Writer.TryComplete();
    }
}
