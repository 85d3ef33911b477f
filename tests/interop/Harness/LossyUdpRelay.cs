using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SleapRtc.Interop;

/// <summary>
/// What one direction of the relay does to each packet, in the order a real path does it: lose it (independently,
/// or in bursts), queue it at the bottleneck (<see cref="RateBitsPerSecond"/>, a bounded queue with tail drop), then
/// delay it by <see cref="Delay"/> plus a random 0..MaxJitter. With <see cref="ReorderRate"/> null the jitter delays
/// are independent (heavy reordering at high packet rates); otherwise packets keep their order (a jittery FIFO)
/// except a ReorderRate share that is held back by another 0..MaxJitter and overtaken.
/// </summary>
public sealed record Impairment(double LossRate, double DuplicateRate, TimeSpan MaxJitter, double? ReorderRate = null)
{
    /// <summary>One-way propagation delay added to every packet.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>
    /// Mean number of packets in a loss burst; null loses packets independently. Otherwise a two-state (Gilbert)
    /// channel: the bad state loses every packet and lasts this many packets on average, and the good state is left
    /// often enough that the long-run loss is still <see cref="LossRate"/>.
    /// </summary>
    public double? MeanLossBurst { get; init; }

    /// <summary>Bottleneck rate in bit/s counted on IPv4+UDP bytes (payload + 28); null: no cap.</summary>
    public double? RateBitsPerSecond { get; init; }

    /// <summary>The bottleneck's queue in bytes: a packet that would queue beyond it is dropped (tail drop).</summary>
    public long QueueBytes { get; init; } = 1 << 20;

    /// <summary>The acceptance profile: 5 % loss, 2 % duplicates, 20 ms jitter, 3 % reordered.</summary>
    public static Impairment Acceptance { get; } = new(0.05, 0.02, TimeSpan.FromMilliseconds(20), 0.03);

    public override string ToString()
    {
        var parts = new List<string> { $"delay {Delay.TotalMilliseconds:0.#} ms" };
        if (MaxJitter > TimeSpan.Zero) parts.Add($"jitter 0–{MaxJitter.TotalMilliseconds:0.#} ms");
        if (LossRate > 0) parts.Add($"loss {LossRate * 100:0.###} %" + (MeanLossBurst is { } burst ? $" in bursts of {burst:0.#}" : ""));
        if (DuplicateRate > 0) parts.Add($"duplicates {DuplicateRate * 100:0.###} %");
        if (ReorderRate is { } reorder) parts.Add($"reordered {reorder * 100:0.###} %");
        if (RateBitsPerSecond is { } rate) parts.Add($"{rate / 1e6:0.#} Mbit/s, queue {QueueBytes / 1000:0} kB");
        return string.Join(", ", parts);
    }
}

/// <summary>What one direction of the relay did; delays and lateness in milliseconds.</summary>
public sealed record RelayDirectionStats(long Received, long Lost, long TailDropped, long Duplicated, long Forwarded,
    long ForwardedBytes, long Reordered, double MeanLatenessMs, double MaxLatenessMs)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"received {Received}, lost {Lost}, tail-dropped {TailDropped}, forwarded {Forwarded} ({ForwardedBytes / 1e6:0.0} MB), " +
        $"reordered {Reordered}, sent late by {MeanLatenessMs:0.00} ms on average (max {MaxLatenessMs:0.0})");
}

/// <summary>
/// A two-sided UDP impairment relay, in process: the userspace stand-in for netem (not available on these kernels).
/// Peer A is given <see cref="EndpointForA"/> as the other side's only candidate, peer B <see cref="EndpointForB"/>;
/// each side's real address is latched from the first packet it sends (like a NAT), so ICE checks, DTLS and SCTP all
/// cross the impaired path and nothing else. Side A's socket can live in one network namespace and side B's in
/// another (<see cref="PeerPair.StartAsync"/> with separate namespaces), so no other path joins the peers.
/// Each direction has its own <see cref="Impairment"/>. Timing: every packet's departure is computed when it
/// arrives (a virtual bottleneck clock, so the rate cap and queue are exact however the sender thread is scheduled);
/// one sender thread sends what is due in batches and may be late by about a millisecond, which
/// <see cref="Stats"/> measures (lateness) along with the relay's own CPU time (<see cref="CpuTime"/>).
/// </summary>
public sealed class LossyUdpRelay : IDisposable
{
    // IPv4 (20) + UDP (8) header bytes: a rate cap counts what a link carries, not only the payload.
    private const int HeaderBytes = 28;
    // Packets due this close are sent now: the sender's waits are whole milliseconds, so this centres its error on 0.
    private static readonly long SendSlackTicks = Stopwatch.Frequency / 2000;

    private readonly Socket _socketA;
    private readonly Socket _socketB;
    private readonly Direction _towardB;
    private readonly Direction _towardA;
    private readonly PriorityQueue<Scheduled, (long Due, long Order)> _queue = new();
    private readonly object _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread[] _threads;
    private readonly int[] _threadIds;
    private SocketAddress? _peerA, _peerB;
    private long _enqueueOrder, _arrivalSequence, _unroutable;
    private long _senderSleepsUntil = -1;

    private readonly record struct Scheduled(byte[] Data, int Length, bool ToB, long Sequence, long Due);

    /// <summary>
    /// One direction's state. Each has its own random sequence, so the n-th packet a side sends meets the same fate
    /// whatever the other side sends: pairs compared through one profile and seed see the same loss pattern.
    /// </summary>
    private sealed class Direction(Impairment impairment, int seed)
    {
        public readonly Impairment Impairment = impairment;
        public readonly Random Random = new(seed);
        public bool InLossBurst;
        public long LinkFreeAt, LastDue, LastSentSequence;
        public long Received, Lost, TailDropped, Duplicated, Forwarded, ForwardedBytes, Reordered;
        public long LatenessTicksSum, LatenessTicksMax;

        public RelayDirectionStats Snapshot() => new(Received, Lost, TailDropped, Duplicated, Forwarded, ForwardedBytes, Reordered,
            Forwarded == 0 ? 0 : LatenessTicksSum * 1000.0 / Stopwatch.Frequency / Forwarded,
            LatenessTicksMax * 1000.0 / Stopwatch.Frequency);
    }

    /// <summary>The same impairment both ways, sockets on 127.0.0.1.</summary>
    public LossyUdpRelay(Impairment impairment, int seed) : this(impairment, impairment, seed) { }

    /// <summary>
    /// <paramref name="aToB"/> applies to what peer A sends, <paramref name="bToA"/> to what B sends. With namespaces
    /// given, side A's socket is bound to <see cref="NetworkNamespace.OnlyAddress"/> inside <paramref name="networkA"/>,
    /// side B's inside <paramref name="networkB"/>; otherwise both on 127.0.0.1.
    /// </summary>
    public LossyUdpRelay(Impairment aToB, Impairment bToA, int seed, NetworkNamespace? networkA = null, NetworkNamespace? networkB = null)
    {
        _towardB = new Direction(aToB, seed);
        _towardA = new Direction(bToA, seed + 1);
        _socketA = networkA is null ? NewSocket(IPAddress.Loopback) : networkA.RunInside(() => NewSocket(NetworkNamespace.OnlyAddress));
        _socketB = networkB is null ? NewSocket(IPAddress.Loopback) : networkB.RunInside(() => NewSocket(NetworkNamespace.OnlyAddress));
        _threadIds = new int[3];
        _threads = new[]
        {
            NewThread("relay-rx-a", 0, () => ReceiveLoop(_socketA, fromA: true)),
            NewThread("relay-rx-b", 1, () => ReceiveLoop(_socketB, fromA: false)),
            NewThread("relay-tx", 2, SendLoop),
        };
        foreach (var thread in _threads) thread.Start();
    }

    // Each thread first records its kernel id, which CpuTime reads its CPU use by.
    private Thread NewThread(string name, int index, Action loop) =>
        new(() => { _threadIds[index] = GetThreadId(); loop(); }) { IsBackground = true, Name = name };

    /// <summary>Where peer A sends (stands for B).</summary>
    public IPEndPoint EndpointForA => (IPEndPoint)_socketA.LocalEndPoint!;
    /// <summary>Where peer B sends (stands for A).</summary>
    public IPEndPoint EndpointForB => (IPEndPoint)_socketB.LocalEndPoint!;

    public long Forwarded { get { lock (_gate) return _towardA.Forwarded + _towardB.Forwarded; } }
    /// <summary>Packets lost on purpose, dropped by a full bottleneck queue, or with nowhere to go yet.</summary>
    public long Dropped { get { lock (_gate) return _towardA.Lost + _towardB.Lost + _towardA.TailDropped + _towardB.TailDropped + _unroutable; } }
    public long Duplicated { get { lock (_gate) return _towardA.Duplicated + _towardB.Duplicated; } }
    /// <summary>Packets sent after a packet that arrived later than they did.</summary>
    public long Reordered { get { lock (_gate) return _towardA.Reordered + _towardB.Reordered; } }

    /// <summary>What the relay did to packets travelling toward B (sent by A) or toward A.</summary>
    public RelayDirectionStats Stats(bool towardB)
    {
        lock (_gate) return (towardB ? _towardB : _towardA).Snapshot();
    }

    /// <summary>CPU time the relay's three threads have used (user + system), from /proc: the relay's own overhead.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            long ticks = 0;
            foreach (var id in _threadIds)
            {
                if (id == 0) continue;
                try
                {
                    // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th (proc(5)).
                    var stat = File.ReadAllText($"/proc/self/task/{id}/stat");
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                }
                catch (IOException) { } // the thread has ended
            }
            return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
        }
    }

    private static Socket NewSocket(IPAddress address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        // Room for bursts while a relay thread waits for a core; the bottleneck queue proper is modelled, not these.
        socket.ReceiveBufferSize = 8 << 20;
        socket.SendBufferSize = 8 << 20;
        socket.Bind(new IPEndPoint(address, 0));
        return socket;
    }

    private void ReceiveLoop(Socket socket, bool fromA)
    {
        var buffer = new byte[65536];
        var from = new SocketAddress(AddressFamily.InterNetwork);
        var direction = fromA ? _towardB : _towardA;
        var impairment = direction.Impairment;
        var jitterTicks = impairment.MaxJitter.TotalSeconds * Stopwatch.Frequency;
        var delayTicks = (long)(impairment.Delay.TotalSeconds * Stopwatch.Frequency);
        var ticksPerByte = impairment.RateBitsPerSecond is { } rate ? 8.0 * Stopwatch.Frequency / rate : 0;
        var queueTicks = (long)(impairment.QueueBytes * ticksPerByte);
        // Gilbert channel: leave the bad state with 1/burst per packet; enter it so that the stationary loss is LossRate.
        var leaveBurst = impairment.MeanLossBurst is { } burst ? 1 / Math.Max(1, burst) : 1;
        var enterBurst = impairment.LossRate >= 1 ? 1 : impairment.LossRate * leaveBurst / (1 - impairment.LossRate);
        while (!_stop.IsCancellationRequested)
        {
            int length;
            try { length = socket.ReceiveFrom(buffer, SocketFlags.None, from); }
            catch (SocketException) { continue; }
            catch (ObjectDisposedException) { return; }
            lock (_gate)
            {
                if (fromA) _peerA ??= Copy(from); else _peerB ??= Copy(from);
                var sequence = ++_arrivalSequence;
                direction.Received++;
                var random = direction.Random;
                if (IsLost(direction, impairment, enterBurst, leaveBurst)) { direction.Lost++; continue; }
                var now = _clock.ElapsedTicks;
                var departure = now;
                if (ticksPerByte > 0)
                {
                    var start = Math.Max(now, direction.LinkFreeAt);
                    // What is still queued ahead of this packet, in link time: beyond the queue's size, tail drop.
                    if (start - now + (long)((length + HeaderBytes) * ticksPerByte) > queueTicks) { direction.TailDropped++; continue; }
                    departure = direction.LinkFreeAt = start + (long)((length + HeaderBytes) * ticksPerByte);
                }
                var copies = impairment.DuplicateRate > 0 && random.NextDouble() < impairment.DuplicateRate ? 2 : 1;
                if (copies == 2) direction.Duplicated++;
                for (var i = 0; i < copies; i++)
                {
                    var due = departure + delayTicks + (jitterTicks > 0 ? (long)(random.NextDouble() * jitterTicks) : 0);
                    if (impairment.ReorderRate is { } reorderRate)
                    {
                        if (random.NextDouble() < reorderRate) due = Math.Max(due, direction.LastDue) + (long)(random.NextDouble() * jitterTicks);
                        else direction.LastDue = due = Math.Max(due, direction.LastDue);
                    }
                    var data = ArrayPool<byte>.Shared.Rent(length);
                    buffer.AsSpan(0, length).CopyTo(data);
                    _queue.Enqueue(new Scheduled(data, length, ToB: fromA, sequence, due), (due, ++_enqueueOrder));
                    // Wake the sender only when it sleeps past this packet: a pulse per packet would cost a syscall each.
                    if (due < _senderSleepsUntil) Monitor.Pulse(_gate);
                }
            }
        }
    }

    private static bool IsLost(Direction direction, Impairment impairment, double enterBurst, double leaveBurst)
    {
        if (impairment.LossRate <= 0) return false;
        var random = direction.Random;
        if (impairment.MeanLossBurst is null) return random.NextDouble() < impairment.LossRate;
        direction.InLossBurst = direction.InLossBurst ? random.NextDouble() >= leaveBurst : random.NextDouble() < enterBurst;
        return direction.InLossBurst;
    }

    private static SocketAddress Copy(SocketAddress address)
    {
        var copy = new SocketAddress(address.Family, address.Size);
        address.Buffer.Span.CopyTo(copy.Buffer.Span);
        return copy;
    }

    private void SendLoop()
    {
        var batch = new List<(Scheduled Packet, SocketAddress? Target)>(256);
        while (!_stop.IsCancellationRequested)
        {
            batch.Clear();
            lock (_gate)
            {
                var now = _clock.ElapsedTicks;
                while (batch.Count < 256 && _queue.TryPeek(out _, out var priority) && priority.Due <= now + SendSlackTicks)
                {
                    // Equal due times leave in arrival order (the second key).
                    var packet = _queue.Dequeue();
                    var direction = packet.ToB ? _towardB : _towardA;
                    var target = packet.ToB ? _peerB : _peerA;
                    if (target is null) { _unroutable++; ArrayPool<byte>.Shared.Return(packet.Data); continue; } // the other side has not spoken yet
                    if (packet.Sequence < direction.LastSentSequence) direction.Reordered++;
                    direction.LastSentSequence = Math.Max(direction.LastSentSequence, packet.Sequence);
                    direction.Forwarded++;
                    direction.ForwardedBytes += packet.Length;
                    var lateness = Math.Max(0, now - packet.Due);
                    direction.LatenessTicksSum += lateness;
                    direction.LatenessTicksMax = Math.Max(direction.LatenessTicksMax, lateness);
                    batch.Add((packet, target));
                }
                if (batch.Count == 0)
                {
                    if (!_queue.TryPeek(out _, out var next)) { _senderSleepsUntil = long.MaxValue; Monitor.Wait(_gate, 50); }
                    else
                    {
                        // Whole milliseconds (what the wait offers); the slack above sends what falls due meanwhile.
                        _senderSleepsUntil = next.Due;
                        var waitMs = Math.Max(1, (int)((next.Due - now) * 1000 / Stopwatch.Frequency));
                        Monitor.Wait(_gate, waitMs);
                    }
                    _senderSleepsUntil = -1;
                    continue;
                }
            }
            foreach (var (packet, target) in batch)
            {
                try { (packet.ToB ? _socketB : _socketA).SendTo(packet.Data.AsSpan(0, packet.Length), SocketFlags.None, target!); }
                catch (SocketException) { }
                catch (ObjectDisposedException) { return; }
                finally { ArrayPool<byte>.Shared.Return(packet.Data); }
            }
        }
    }

    /// <summary>Replaces every candidate in <paramref name="sdp"/> by one host candidate at <paramref name="endpoint"/>.</summary>
    public static string RouteThrough(string sdp, IPEndPoint endpoint)
    {
        var lines = sdp.Replace("\r\n", "\n").Split('\n').ToList();
        var first = lines.FindIndex(l => l.StartsWith("a=candidate:", StringComparison.Ordinal));
        if (first < 0) throw new InvalidOperationException("SDP has no candidates to route through the relay");
        lines.RemoveAll(l => l.StartsWith("a=candidate:", StringComparison.Ordinal));
        lines.Insert(first, $"a=candidate:1 1 udp 2130706431 {endpoint.Address} {endpoint.Port} typ host");
        // Some stacks also read the default address from c=/m=; point those at the relay too.
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].StartsWith("c=IN IP4 ", StringComparison.Ordinal)) lines[i] = $"c=IN IP4 {endpoint.Address}";
            else if (lines[i].StartsWith("m=application ", StringComparison.Ordinal))
            {
                var parts = lines[i].Split(' ');
                parts[1] = endpoint.Port.ToString(CultureInfo.InvariantCulture);
                lines[i] = string.Join(' ', parts);
            }
        }
        return string.Join("\r\n", lines);
    }

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetThreadId();

    public void Dispose()
    {
        _stop.Cancel();
        _socketA.Dispose();
        _socketB.Dispose();
        lock (_gate) Monitor.PulseAll(_gate);
        foreach (var thread in _threads) thread.Join(TimeSpan.FromSeconds(2));
        _stop.Dispose();
    }
}
