namespace SleapRtc.Protocol.Jobs;

public delegate void BinaryFrameAction(ReadOnlySpan<byte> frame);

/// <summary>
/// The one way job code writes to a data channel: sends are serialized (the keep-alive timer, the job and
/// the receive callback all write), and binary frames wait while the channel's unacknowledged bytes are
/// above a high-water mark, so a 5 GB upload never queues more than that in memory.
/// </summary>
public sealed class FrameWriter
{
    /// <summary>Enough in flight to keep a loopback or LAN link busy; small enough to keep memory flat.</summary>
    public const long DefaultHighWaterMark = 4L * 1024 * 1024;

    private readonly Action<string> _sendText;
    private readonly BinaryFrameAction _sendBinary;
    private readonly Func<long> _bufferedAmount;
    private readonly Func<bool> _isOpen;
    private readonly object _gate = new();

    public FrameWriter(Action<string> sendText, BinaryFrameAction sendBinary, Func<long> bufferedAmount,
        long highWaterMark = DefaultHighWaterMark, Func<bool>? isOpen = null)
    {
        _sendText = sendText;
        _sendBinary = sendBinary;
        _bufferedAmount = bufferedAmount;
        _isOpen = isOpen ?? (() => true);
        HighWaterMark = highWaterMark;
    }

    public long HighWaterMark { get; }

    public void SendText(string text)
    {
        lock (_gate) _sendText(text);
    }

    public void SendKeepAlive()
    {
        lock (_gate) _sendBinary(JobMessages.KeepAlive);
    }

    /// <summary>
    /// For messages that may race the channel closing (keep-alives, log lines, last words): sends when the
    /// channel is open and reports whether it did, instead of throwing.
    /// </summary>
    public bool TrySendText(string text) => Try(() => SendText(text));

    public bool TrySendKeepAlive() => Try(SendKeepAlive);

    private bool Try(Action send)
    {
        if (!_isOpen()) return false;
        try
        {
            send();
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Sends the frame (copied before this returns) and then waits until the backlog is below the mark.</summary>
    public async ValueTask SendBinaryAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        lock (_gate) _sendBinary(frame.Span);
        // Polling rather than the BufferedAmountLow event: it cannot miss a wake-up, and a 1 ms poll drains
        // far less than the mark even at several hundred MB/s.
        var delayMs = 1;
        while (_bufferedAmount() > HighWaterMark)
        {
            await Task.Delay(delayMs, cancellationToken).ConfigureAwait(false);
            delayMs = Math.Min(delayMs * 2, 20);
        }
    }
}
