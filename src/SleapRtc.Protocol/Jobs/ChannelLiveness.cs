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

    /// <summary>A timer that fires this late is still a healthy box's timer (timer resolution, ordinary scheduling);
    /// lateness beyond it is time this process did not run.</summary>
    private const long TimerJitterMs = 100;

    /// <summary>A tick this late means the process was frozen (a GC pause, a suspended VM, a box far past its cores).</summary>
    private const long FrozenLatenessMs = 1000;

    private readonly TimeSpan _keepAliveInterval;
    private readonly TimeSpan _idleTimeout;
    private readonly TimeSpan _heartbeatInterval;
    private readonly TimeSpan _heartbeatTimeout;
    private readonly Func<long> _clockMs;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private long _lastHeardTicks;
    private volatile bool _heartbeat;

    public ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout)
        : this(keepAliveInterval, idleTimeout, DefaultHeartbeatInterval, DefaultHeartbeatTimeout)
    {
    }

    public ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout, TimeSpan heartbeatInterval, TimeSpan heartbeatTimeout)
        : this(keepAliveInterval, idleTimeout, heartbeatInterval, heartbeatTimeout, () => Environment.TickCount64, Task.Delay)
    {
    }

    /// <param name="clockMs">Milliseconds of a monotonic clock.</param>
    /// <param name="delay">Waits between ticks; tests pass a clock and a delay that simulate a starved process.</param>
    internal ChannelLiveness(TimeSpan keepAliveInterval, TimeSpan idleTimeout, TimeSpan heartbeatInterval, TimeSpan heartbeatTimeout,
        Func<long> clockMs, Func<TimeSpan, CancellationToken, Task> delay)
    {
        _keepAliveInterval = keepAliveInterval;
        _idleTimeout = idleTimeout;
        _heartbeatInterval = heartbeatInterval;
        _heartbeatTimeout = heartbeatTimeout;
        _clockMs = clockMs;
        _delay = delay;
        _lastHeardTicks = clockMs();
    }

    /// <summary>True once the peer agreed to heartbeats: silence is then judged at every phase, and sooner.</summary>
    public bool HeartbeatEnabled => _heartbeat;

    /// <summary>The silence after which the peer is declared gone, in the current mode.</summary>
    public TimeSpan SilenceLimit => _heartbeat ? _heartbeatTimeout : _idleTimeout;

    /// <summary>Something arrived from the peer (any message, keep-alives and heartbeats included).</summary>
    public void Heard() => Interlocked.Exchange(ref _lastHeardTicks, _clockMs());

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
    public Task RunAsync(FrameWriter writer, Func<bool> judgeSilence, Action onSilent, CancellationToken cancellationToken) =>
        RunAsync(heartbeat =>
        {
            if (heartbeat) writer.TrySendText(JobMessages.Heartbeat);
            else writer.TrySendKeepAlive();
        }, judgeSilence, onSilent, cancellationToken);

    /// <summary>
    /// The loop of <see cref="RunAsync(FrameWriter, Func{bool}, Action, CancellationToken)"/>; <paramref name="send"/>
    /// sends one beat (true: a heartbeat, false: a classic KEEP_ALIVE).
    ///
    /// A silent peer is only declared gone once this process itself ran through the silence: a starved box (a
    /// load average far above its cores, a GC pause, a frozen VM) delays this loop, the receive path that would
    /// have heard the peer and, on a shared box, the peer's own sender alike. So every tick measures how late it
    /// fired, and lateness beyond a timer's ordinary jitter extends the silence limit:
    /// a tick more than a second late means this process was frozen, and all of it is credited (nothing could be
    /// heard meanwhile); smaller lateness, a starved but running process, is credited up to one more silence limit
    /// per silence. So a dead peer is declared within the limit plus a tick on a healthy box (8.5 s with the
    /// defaults), within twice that on a box that stays starved, and frozen time does not count.
    /// </summary>
    internal async Task RunAsync(Action<bool> send, Func<bool> judgeSilence, Action onSilent, CancellationToken cancellationToken)
    {
        var lastSent = _clockMs();
        var lastTick = lastSent;
        var silenceStart = Interlocked.Read(ref _lastHeardTicks);
        long frozen = 0, starved = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var tick = Tick();
                await _delay(tick, cancellationToken).ConfigureAwait(false);
                var now = _clockMs();
                var late = now - lastTick - (long)tick.TotalMilliseconds;
                lastTick = now;

                var heartbeat = _heartbeat;
                var limitMs = (long)SilenceLimit.TotalMilliseconds;
                var heard = Interlocked.Read(ref _lastHeardTicks);
                if (heard != silenceStart)
                {
                    // The peer was heard since the last tick: a new silence starts there, with no credit yet.
                    silenceStart = heard;
                    frozen = starved = 0;
                }
                if (late > FrozenLatenessMs) frozen += late;
                else if (late > TimerJitterMs) starved = Math.Min(limitMs, starved + late - TimerJitterMs);

                if (now - lastSent >= (heartbeat ? _heartbeatInterval : _keepAliveInterval).TotalMilliseconds)
                {
                    lastSent = now;
                    send(heartbeat);
                }
                if (now - silenceStart - frozen - starved > limitMs && (heartbeat || judgeSilence()))
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
