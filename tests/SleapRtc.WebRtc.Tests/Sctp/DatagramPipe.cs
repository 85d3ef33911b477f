using System.Buffers;
using System.Diagnostics;
using SleapRtc.WebRtc.Sctp;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>Impairments of one pipe direction; every random choice comes from <see cref="Seed"/>.</summary>
public sealed record PipeImpairments
{
    public double LossRate { get; init; }
    public double DuplicateRate { get; init; }
    /// <summary>Fraction of packets held back by up to <see cref="ReorderDelay"/> so later ones overtake them.</summary>
    public double ReorderRate { get; init; }
    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Queueing-delay variation: each packet waits 0..Jitter extra, without overtaking earlier ones.</summary>
    public TimeSpan Jitter { get; init; }
    public TimeSpan BaseDelay { get; init; }
    public int Seed { get; init; } = 1;
    public static PipeImpairments Clean { get; } = new();
}

/// <summary>
/// One direction of an in-memory datagram link standing in for UDP+DTLS in SCTP unit tests: Send copies
/// the packet, a delivery thread hands due packets to the sink in batches (then OnDatagramBatchEnd, as the
/// real DTLS receive loop does). Loss, duplication, reordering and delay are seeded.
/// </summary>
public sealed class DatagramPipe : IDatagramTransport, IDisposable
{
    private readonly object _gate = new();
    private readonly PriorityQueue<(byte[] Buffer, int Length), (long Due, long Sequence)> _queue = new();
    private readonly Random _random;
    private readonly PipeImpairments _impairments;
    private readonly Thread _thread;
    private readonly long _ticksPerMs = Stopwatch.Frequency / 1000;
    private long _sequence;
    private long _lastDue;
    private bool _disposed;
    private volatile bool _cut;
    private DropRule? _dropFilter;
    private int _sentCount;

    public DatagramPipe(int maxDatagramSize, PipeImpairments impairments, string name)
    {
        MaxDatagramSize = maxDatagramSize;
        _impairments = impairments;
        _random = new Random(impairments.Seed);
        _thread = new Thread(DeliveryLoop) { IsBackground = true, Name = name };
    }

    public int MaxDatagramSize { get; }
    public IDatagramSink? Sink { get; set; }
    public bool SignalBatchEnd { get; set; } = true;
    /// <summary>Called with a copy of every packet sent (before impairments), e.g. to collect fuzz seeds.</summary>
    public Action<byte[]>? Tap { get; set; }
    public long Delivered;
    public long Dropped;

    public void Start() => _thread.Start();

    /// <summary>From now on every packet is lost (the peer vanished).</summary>
    public void Cut() => _cut = true;

    /// <summary>Drops the packets for which the rule (0-based send index, packet bytes) returns true.</summary>
    public void DropWhen(DropRule rule) => _dropFilter = rule;

    public delegate bool DropRule(int index, ReadOnlySpan<byte> packet);

    /// <summary>True for a packet whose first chunk is DATA carrying at least <paramref name="minimumPayload"/> bytes.</summary>
    public static bool IsBulkData(ReadOnlySpan<byte> packet, int minimumPayload = 1000) =>
        packet.Length >= 28 + minimumPayload && packet[12] == 0;

    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length > MaxDatagramSize) throw new InvalidOperationException($"datagram of {datagram.Length} bytes exceeds {MaxDatagramSize}");
        Tap?.Invoke(datagram.ToArray());
        lock (_gate)
        {
            if (_disposed) return;
            int index = _sentCount++;
            if (_cut || (_dropFilter?.Invoke(index, datagram) ?? false) || (_impairments.LossRate > 0 && _random.NextDouble() < _impairments.LossRate))
            {
                Dropped++;
                return;
            }
            int copies = _impairments.DuplicateRate > 0 && _random.NextDouble() < _impairments.DuplicateRate ? 2 : 1;
            for (int copy = 0; copy < copies; copy++)
            {
                long now = Stopwatch.GetTimestamp();
                long due = now + (long)(_impairments.BaseDelay.TotalMilliseconds * _ticksPerMs);
                if (_impairments.Jitter > TimeSpan.Zero) due += (long)(_random.NextDouble() * _impairments.Jitter.TotalMilliseconds * _ticksPerMs);
                due = Math.Max(due, _lastDue);
                _lastDue = due;
                if (_impairments.ReorderRate > 0 && _random.NextDouble() < _impairments.ReorderRate)
                {
                    due += (long)((0.2 + _random.NextDouble()) * _impairments.ReorderDelay.TotalMilliseconds * _ticksPerMs);
                }
                var buffer = ArrayPool<byte>.Shared.Rent(datagram.Length);
                datagram.CopyTo(buffer);
                _queue.Enqueue((buffer, datagram.Length), (due, _sequence++));
            }
            Monitor.Pulse(_gate);
        }
    }

    private void DeliveryLoop()
    {
        var batch = new List<(byte[] Buffer, int Length)>(64);
        while (true)
        {
            lock (_gate)
            {
                while (true)
                {
                    if (_disposed) return;
                    if (_queue.TryPeek(out _, out var key))
                    {
                        long wait = key.Due - Stopwatch.GetTimestamp();
                        if (wait <= 0) break;
                        Monitor.Wait(_gate, TimeSpan.FromMilliseconds(Math.Max(1, wait / _ticksPerMs)));
                    }
                    else
                    {
                        Monitor.Wait(_gate, 100);
                    }
                }
                long now = Stopwatch.GetTimestamp();
                while (batch.Count < 256 && _queue.TryPeek(out _, out var next) && next.Due <= now) batch.Add(_queue.Dequeue());
            }
            var sink = Sink;
            foreach (var (buffer, length) in batch)
            {
                if (!_cut) sink?.OnDatagram(buffer.AsSpan(0, length));
                ArrayPool<byte>.Shared.Return(buffer);
                Interlocked.Increment(ref Delivered);
            }
            batch.Clear();
            if (SignalBatchEnd && sink is SctpAssociation association) association.OnDatagramBatchEnd();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            Monitor.PulseAll(_gate);
        }
        if (_thread.IsAlive && Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(5));
    }
}

/// <summary>Two associations joined by a pair of pipes.</summary>
public sealed class SctpTestPair : IAsyncDisposable
{
    public const int DefaultMtu = 1163;

    public SctpTestPair(SctpAssociationOptions? optionsA = null, SctpAssociationOptions? optionsB = null,
        PipeImpairments? aToB = null, PipeImpairments? bToA = null, int mtu = DefaultMtu)
    {
        AToB = new DatagramPipe(mtu, aToB ?? PipeImpairments.Clean, "pipe A->B");
        BToA = new DatagramPipe(mtu, bToA ?? PipeImpairments.Clean, "pipe B->A");
        A = new SctpAssociation(AToB, optionsA ?? new SctpAssociationOptions { IsDtlsClient = true });
        B = new SctpAssociation(BToA, optionsB ?? new SctpAssociationOptions { IsDtlsClient = false });
        AToB.Sink = B;
        BToA.Sink = A;
        AToB.Start();
        BToA.Start();
    }

    public DatagramPipe AToB { get; }
    public DatagramPipe BToA { get; }
    public SctpAssociation A { get; }
    public SctpAssociation B { get; }

    public async Task ConnectBothAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        A.Start();
        B.Start();
        await Task.WhenAll(A.ConnectAsync(cts.Token), B.ConnectAsync(cts.Token));
    }

    /// <summary>Connects, opens a channel from A and returns both ends.</summary>
    public async Task<(IDataChannel AtA, IDataChannel AtB)> OpenChannelAsync(string label, TimeSpan timeout)
    {
        var remote = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        B.ChannelOpened += channel => remote.TrySetResult(channel);
        await ConnectBothAsync(timeout);
        using var cts = new CancellationTokenSource(timeout);
        var local = await A.OpenChannelAsync(label, cts.Token);
        var atB = await remote.Task.WaitAsync(cts.Token);
        return (local, atB);
    }

    public async ValueTask DisposeAsync()
    {
        A.Abort("test finished");
        B.Abort("test finished");
        await Task.Yield();
        AToB.Dispose();
        BToA.Dispose();
    }
}
