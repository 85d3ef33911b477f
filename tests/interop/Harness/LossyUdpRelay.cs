using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SleapRtc.Interop;

/// <summary>
/// Per-packet impairment. Each packet is delayed by a random 0..MaxJitter. With <see cref="ReorderRate"/> null the
/// delays are independent (heavy reordering at high packet rates); otherwise packets keep their order (a jittery
/// FIFO) except a ReorderRate share that is held back by another 0..MaxJitter and overtaken.
/// </summary>
public sealed record Impairment(double LossRate, double DuplicateRate, TimeSpan MaxJitter, double? ReorderRate = null)
{
    /// <summary>The acceptance profile: 5 % loss, 2 % duplicates, 20 ms jitter, 3 % reordered.</summary>
    public static Impairment Acceptance { get; } = new(0.05, 0.02, TimeSpan.FromMilliseconds(20), 0.03);
}

/// <summary>
/// A two-sided UDP relay on 127.0.0.1 that loses, duplicates, delays and so reorders packets.
/// Peer A is given <see cref="EndpointForA"/> as the other side's only candidate, peer B <see cref="EndpointForB"/>;
/// each side's real address is latched from the first packet it sends (like a NAT), so ICE checks, DTLS and
/// SCTP all cross the impaired path and nothing else.
/// </summary>
public sealed class LossyUdpRelay : IDisposable
{
    private readonly Socket _socketA = NewSocket();
    private readonly Socket _socketB = NewSocket();
    private readonly Impairment _impairment;
    private readonly Random _random;
    private readonly PriorityQueue<Scheduled, (long Due, long Order)> _queue = new();
    private readonly object _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread[] _threads;
    private EndPoint? _peerA, _peerB;
    private long _enqueueOrder, _arrivalSequence, _lastSentToA, _lastSentToB, _lastDueToA, _lastDueToB;
    private long _forwarded, _dropped, _duplicated, _reordered;

    private sealed record Scheduled(byte[] Data, bool ToB, long Sequence);

    public LossyUdpRelay(Impairment impairment, int seed)
    {
        _impairment = impairment;
        _random = new Random(seed);
        _threads = new[]
        {
            new Thread(() => ReceiveLoop(_socketA, fromA: true)) { IsBackground = true, Name = "relay-rx-a" },
            new Thread(() => ReceiveLoop(_socketB, fromA: false)) { IsBackground = true, Name = "relay-rx-b" },
            new Thread(SendLoop) { IsBackground = true, Name = "relay-tx" },
        };
        foreach (var thread in _threads) thread.Start();
    }

    /// <summary>Where peer A sends (stands for B).</summary>
    public IPEndPoint EndpointForA => (IPEndPoint)_socketA.LocalEndPoint!;
    /// <summary>Where peer B sends (stands for A).</summary>
    public IPEndPoint EndpointForB => (IPEndPoint)_socketB.LocalEndPoint!;

    public long Forwarded => Interlocked.Read(ref _forwarded);
    public long Dropped => Interlocked.Read(ref _dropped);
    public long Duplicated => Interlocked.Read(ref _duplicated);
    /// <summary>Packets sent after a packet that arrived later than they did.</summary>
    public long Reordered => Interlocked.Read(ref _reordered);

    private static Socket NewSocket()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveBufferSize = 4 << 20;
        socket.SendBufferSize = 4 << 20;
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private void ReceiveLoop(Socket socket, bool fromA)
    {
        var buffer = new byte[65536];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            int length;
            try { length = socket.ReceiveFrom(buffer, ref from); }
            catch (SocketException) { continue; }
            catch (ObjectDisposedException) { return; }
            lock (_gate)
            {
                if (fromA) _peerA ??= from; else _peerB ??= from;
                var sequence = ++_arrivalSequence;
                if (_random.NextDouble() < _impairment.LossRate) { _dropped++; continue; }
                var copies = _random.NextDouble() < _impairment.DuplicateRate ? 2 : 1;
                if (copies == 2) _duplicated++;
                var jitterTicks = _impairment.MaxJitter.TotalSeconds * Stopwatch.Frequency;
                for (var i = 0; i < copies; i++)
                {
                    var due = _clock.ElapsedTicks + (long)(_random.NextDouble() * jitterTicks);
                    if (_impairment.ReorderRate is { } reorderRate)
                    {
                        ref var lastDue = ref (fromA ? ref _lastDueToB : ref _lastDueToA);
                        if (_random.NextDouble() < reorderRate) due = Math.Max(due, lastDue) + (long)(_random.NextDouble() * jitterTicks);
                        else lastDue = due = Math.Max(due, lastDue);
                    }
                    _queue.Enqueue(new Scheduled(buffer.AsSpan(0, length).ToArray(), ToB: fromA, sequence), (due, ++_enqueueOrder));
                }
                Monitor.Pulse(_gate);
            }
        }
    }

    private void SendLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Scheduled packet;
            EndPoint? target;
            lock (_gate)
            {
                if (!_queue.TryPeek(out _, out var priority)) { Monitor.Wait(_gate, 50); continue; }
                var wait = priority.Due - _clock.ElapsedTicks; // equal due times leave in arrival order
                if (wait > 0)
                {
                    Monitor.Wait(_gate, TimeSpan.FromSeconds(Math.Max(wait, Stopwatch.Frequency / 1000) / (double)Stopwatch.Frequency));
                    continue;
                }
                packet = _queue.Dequeue();
                target = packet.ToB ? _peerB : _peerA;
                if (target is null) { _dropped++; continue; } // the other side has not spoken yet
                ref var lastSent = ref (packet.ToB ? ref _lastSentToB : ref _lastSentToA);
                if (packet.Sequence < lastSent) _reordered++;
                lastSent = Math.Max(lastSent, packet.Sequence);
                _forwarded++;
            }
            try { (packet.ToB ? _socketB : _socketA).SendTo(packet.Data, target); }
            catch (SocketException) { }
            catch (ObjectDisposedException) { return; }
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
                parts[1] = endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
                lines[i] = string.Join(' ', parts);
            }
        }
        return string.Join("\r\n", lines);
    }

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
