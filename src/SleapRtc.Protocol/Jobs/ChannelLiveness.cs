namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// The timers every job channel needs, for both sides. Classic mode, for any peer: binary KEEP_ALIVE out every
/// interval (classic peers send one every 15 s) and a peer that sent nothing at all for the idle timeout is gone,
/// so a vanished peer is noticed even when the transport has not noticed yet. Heartbeat mode, once both ends
/// agreed on the <see cref="JobExtensions.FeatureHeartbeat"/> extension: both send SLEAPRTC_HEARTBEAT every
/// couple of seconds and a few missed beats mean the peer is dead, so a killed peer is noticed within seconds.
/// </summary>
public sealed class ChannelLiveness
{
    /// <summary>Heartbeat defaults: a beat every 2 s, dead after 8 s of silence (four missed beats).</summary>
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan DefaultHeartbeatTimeout = TimeSpan.FromSeconds(8);

    private const long MaxUncreditedLatenessMs = 1000;

    private readonly TimeSpan _keepAliveInterval;
    private readonly TimeSpan _idleTimeout;
    private readonly TimeSpan _heartbeatInterval;
    private readonly TimeSpan _heartbeatTimeout;
    private long _lastHeardTicks = Environment.TickCount64;
    private volatile bool _heartbeat;

    public ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout)
        : this(keepAliveInterval, idleTimeout, DefaultHeartbeatInterval, DefaultHeartbeatTimeout)
    {
    }

    public ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout, TimeSpan heartbeatInterval, TimeSpan heartbeatTimeout)
    {
        _keepAliveInterval = keepAliveInterval;
        _idleTimeout = idleTimeout;
        _heartbeatInterval = heartbeatInterval;
        _heartbeatTimeout = heartbeatTimeout;
    }

    /// <summary>True once the peer agreed to heartbeats: silence is then judged at every phase, and sooner.</summary>
    public bool HeartbeatEnabled => _heartbeat;

    /// <summary>The silence after which the peer is declared gone, in the current mode.</summary>
    public TimeSpan SilenceLimit => _heartbeat ? _heartbeatTimeout : _idleTimeout;

    /// <summary>Something arrived from the peer (any message, keep-alives and heartbeats included).</summary>
    public void Heard() => Interlocked.Exchange(ref _lastHeardTicks, Environment.TickCount64);

    /// <summary>Both ends agreed on heartbeats (only ever called after the extension handshake).</summary>
    public void EnableHeartbeat()
    {
        Heard();
        _heartbeat = true;
    }

    /// <summary>
    /// Runs until cancelled: sends KEEP_ALIVE (or, in heartbeat mode, SLEAPRTC_HEARTBEAT) through
    /// <paramref name="writer"/> every interval, and calls <paramref name="onSilent"/> when the peer was silent
    /// too long while <paramref name="judgeSilence"/> says silence matters.
    /// </summary>
    public async Task RunAsync(FrameWriter writer, Func<bool> judgeSilence, Action onSilent, CancellationToken cancellationToken)
    {
        var lastSent = Environment.TickCount64;
        var lastTick = lastSent;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var tick = Tick();
                await Task.Delay(tick, cancellationToken).ConfigureAwait(false);
                var now = Environment.TickCount64;
                // A frozen process (GC pause, starved CPU) delays this loop and the receive path alike: beyond a
                // second of lateness, time this loop did not run is not the peer's silence and is credited back.
                // Ordinary lateness of a busy box is not credited, so detection stays bounded under load.
                var late = now - lastTick - (long)tick.TotalMilliseconds;
                lastTick = now;
                if (late > MaxUncreditedLatenessMs) Interlocked.Add(ref _lastHeardTicks, late - MaxUncreditedLatenessMs);

                var heartbeat = _heartbeat;
                if (now - lastSent >= (heartbeat ? _heartbeatInterval : _keepAliveInterval).TotalMilliseconds)
                {
                    lastSent = now;
                    if (heartbeat) writer.TrySendText(JobMessages.Heartbeat);
                    else writer.TrySendKeepAlive();
                }
                if (now - Interlocked.Read(ref _lastHeardTicks) > SilenceLimit.TotalMilliseconds && (heartbeat || judgeSilence()))
                    onSilent();
            }
        }
        catch (OperationCanceledException) { }
    }

    private TimeSpan Tick()
    {
        var interval = _heartbeat ? _heartbeatInterval : _keepAliveInterval;
        var limit = SilenceLimit;
        return TimeSpan.FromMilliseconds(Math.Min(interval.TotalMilliseconds, Math.Max(50, limit.TotalMilliseconds / 16)));
    }
}
