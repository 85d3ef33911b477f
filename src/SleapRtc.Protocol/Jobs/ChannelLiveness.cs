namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// The two timers every job channel needs, for both sides: KEEP_ALIVE out every interval (classic peers send
/// one every 15 s), and a peer that has sent nothing at all for the idle timeout is declared gone, so a
/// vanished peer is noticed even when the transport itself has not noticed yet.
/// </summary>
public sealed class ChannelLiveness
{
    private readonly TimeSpan _keepAliveInterval;
    private readonly TimeSpan _idleTimeout;
    private long _lastHeardTicks = Environment.TickCount64;

    public ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout)
    {
        _keepAliveInterval = keepAliveInterval;
        _idleTimeout = idleTimeout;
    }

    /// <summary>Something arrived from the peer (any message, keep-alives included).</summary>
    public void Heard() => Interlocked.Exchange(ref _lastHeardTicks, Environment.TickCount64);

    /// <summary>
    /// Runs until cancelled: calls <paramref name="sendKeepAlive"/> every interval, and <paramref name="onSilent"/>
    /// when the peer was silent too long while <paramref name="judgeSilence"/> says silence matters.
    /// </summary>
    public async Task RunAsync(Action sendKeepAlive, Func<bool> judgeSilence, Action onSilent, CancellationToken cancellationToken)
    {
        var tick = TimeSpan.FromMilliseconds(Math.Min(_keepAliveInterval.TotalMilliseconds, Math.Max(50, _idleTimeout.TotalMilliseconds / 4)));
        var lastKeepAlive = Environment.TickCount64;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(tick, cancellationToken).ConfigureAwait(false);
                var now = Environment.TickCount64;
                if (now - lastKeepAlive >= _keepAliveInterval.TotalMilliseconds)
                {
                    lastKeepAlive = now;
                    sendKeepAlive();
                }
                if (now - Interlocked.Read(ref _lastHeardTicks) > _idleTimeout.TotalMilliseconds && judgeSilence())
                    onSilent();
            }
        }
        catch (OperationCanceledException) { }
    }
}
