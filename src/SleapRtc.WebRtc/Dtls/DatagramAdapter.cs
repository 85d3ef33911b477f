using System.Buffers;
using Org.BouncyCastle.Tls;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// BouncyCastle's view of the ICE path: inbound DTLS datagrams wait in a bounded queue (dropped when full, as a
/// UDP socket would) and Receive blocks on it; Send goes straight to ICE. The hand-off from the ICE receive thread
/// is a plain monitor: no thread-pool continuation and no spinning per datagram. A channel's async wait did both
/// (a pool thread woke the reader, then spun for more work, and Task.Wait spun too), ~40 % of the receiving
/// process's CPU on a two-core box where the sender needs that CPU.
/// </summary>
/// <summary>Sends one datagram on the selected ICE path.</summary>
public delegate void SpanAction(ReadOnlySpan<byte> datagram);

internal sealed class DatagramAdapter : DatagramTransport
{
    /// <summary>Keeps wire datagrams at or under ~1200 bytes (BC leaves 1163 bytes of record plaintext).</summary>
    public const int SendLimit = 1200;
    private const int ReceiveLimit = 1500;
    private const int Capacity = 4096;

    private readonly Queue<(byte[] Buffer, int Length)> _inbound = new();
    private readonly object _gate = new();
    private readonly SpanAction _send;
    private bool _readerWaiting;
    private volatile bool _closed;

    public DatagramAdapter(SpanAction send) => _send = send;

    public bool IsClosed => _closed;

    public int PendingCount
    {
        get { lock (_gate) return _inbound.Count; }
    }

    /// <summary>Called by the ICE receive path for datagrams whose first byte is 20–63 (RFC 7983).</summary>
    public void Enqueue(ReadOnlySpan<byte> datagram)
    {
        if (_closed || datagram.Length > ReceiveLimit) return;
        var buffer = ArrayPool<byte>.Shared.Rent(datagram.Length);
        datagram.CopyTo(buffer);
        lock (_gate)
        {
            if (_closed || _inbound.Count >= Capacity)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return;
            }
            _inbound.Enqueue((buffer, datagram.Length));
            // Only a waiting reader needs the wake-up; a busy one finds the datagram when it comes back.
            if (_readerWaiting) Monitor.Pulse(_gate);
        }
    }

    /// <summary>Blocks until a datagram is queued (true), the timeout passes or the adapter closes (false).</summary>
    public bool WaitForDatagram(TimeSpan timeout)
    {
        lock (_gate) return WaitLocked((int)timeout.TotalMilliseconds);
    }

    /// <summary>Caller holds <see cref="_gate"/>.</summary>
    private bool WaitLocked(int timeoutMs)
    {
        if (_inbound.Count > 0) return true;
        if (_closed) return false;
        _readerWaiting = true;
        try { Monitor.Wait(_gate, timeoutMs); }
        finally { _readerWaiting = false; }
        return _inbound.Count > 0 && !_closed;
    }

    public int GetReceiveLimit() => ReceiveLimit;

    public int GetSendLimit() => SendLimit;

    public int Receive(byte[] buf, int off, int len, int waitMillis) => Receive(buf.AsSpan(off, len), waitMillis);

    public int Receive(Span<byte> buffer, int waitMillis)
    {
        (byte[] Buffer, int Length) item;
        lock (_gate)
        {
            if (!WaitLocked(Math.Max(1, waitMillis)))
            {
                if (_closed) throw new IOException("DTLS transport closed");
                return -1;
            }
            item = _inbound.Dequeue();
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
        lock (_gate)
        {
            _closed = true;
            Monitor.PulseAll(_gate);
        }
    }
}
