using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Sctp;

// Usage: dotnet run -c Release --project bench/SctpBench [MiB=100] [messageKiB=64] [runs=3]
int mebibytes = args.Length > 0 ? int.Parse(args[0]) : 100;
int messageSize = (args.Length > 1 ? int.Parse(args[1]) : 64) * 1024;
int runs = args.Length > 2 ? int.Parse(args[2]) : 3;
const int Mtu = 1163;

Console.WriteLine($"SCTP in memory: {mebibytes} MiB in {messageSize / 1024} KiB messages, packets of {Mtu} bytes, high-water 1 MiB");
for (int run = 0; run < runs; run++)
{
    var result = await RunOnceAsync(mebibytes * 1024L * 1024L, messageSize);
    Console.WriteLine($"run {run + 1}: {result.MBps:F1} MB/s ({result.Seconds:F2} s), cwnd {result.Stats.CongestionWindow}, packets {result.Stats.PacketsSent}, " +
        $"SACKs received {result.Stats.SacksReceived}, retransmitted {result.Stats.DataChunksRetransmitted}, peak RSS {result.PeakRssMb} MB");
}

static async Task<(double MBps, double Seconds, SctpAssociationStatistics Stats, long PeakRssMb)> RunOnceAsync(long total, int messageSize)
{
    using var aToB = new MemoryPipe(Mtu);
    using var bToA = new MemoryPipe(Mtu);
    var a = new SctpAssociation(aToB, new SctpAssociationOptions { IsDtlsClient = true, RemoteMaxMessageSize = 262144 });
    var b = new SctpAssociation(bToA, new SctpAssociationOptions { RemoteMaxMessageSize = 262144 });
    aToB.Start(b);
    bToA.Start(a);
    var remote = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
    b.ChannelOpened += channel => remote.TrySetResult(channel);
    using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
    a.Start();
    b.Start();
    var sender = await a.OpenChannelAsync("bench", cts.Token);
    var receiver = await remote.Task.WaitAsync(cts.Token);
    long received = 0;
    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    receiver.MessageReceived += message =>
    {
        received += message.Binary.Length;
        if (received >= total) done.TrySetResult();
    };
    var payload = new byte[messageSize];
    new Random(1).NextBytes(payload);
    long peakRss = 0;
    var watch = Stopwatch.StartNew();
    for (long sent = 0; sent < total; sent += messageSize)
    {
        await sender.SendAsync(payload.AsMemory(0, (int)Math.Min(messageSize, total - sent)), 1 << 20, cts.Token);
        if ((sent & ((64 << 20) - 1)) == 0) peakRss = Math.Max(peakRss, Environment.WorkingSet);
    }
    await done.Task.WaitAsync(cts.Token);
    watch.Stop();
    var stats = a.GetStatistics();
    a.Abort("benchmark finished");
    b.Abort("benchmark finished");
    return (total / 1e6 / watch.Elapsed.TotalSeconds, watch.Elapsed.TotalSeconds, stats, peakRss / (1024 * 1024));
}

/// <summary>Clean one-way link: Send copies into a pooled buffer; a thread delivers everything queued, then signals the batch end.</summary>
sealed class MemoryPipe : IDatagramTransport, IDisposable
{
    private readonly object _gate = new();
    private List<(byte[] Buffer, int Length)> _queue = new();
    private List<(byte[] Buffer, int Length)> _draining = new();
    private bool _stopped;
    private Thread? _thread;

    public MemoryPipe(int mtu) => MaxDatagramSize = mtu;

    public int MaxDatagramSize { get; }

    public void Start(SctpAssociation sink)
    {
        _thread = new Thread(() => Loop(sink)) { IsBackground = true };
        _thread.Start();
    }

    public void Send(ReadOnlySpan<byte> datagram)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(datagram.Length);
        datagram.CopyTo(buffer);
        lock (_gate)
        {
            _queue.Add((buffer, datagram.Length));
            if (_queue.Count == 1) Monitor.Pulse(_gate);
        }
    }

    private void Loop(SctpAssociation sink)
    {
        while (true)
        {
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopped) Monitor.Wait(_gate);
                if (_stopped) return;
                (_queue, _draining) = (_draining, _queue);
            }
            foreach (var (buffer, length) in _draining)
            {
                sink.OnDatagram(buffer.AsSpan(0, length));
                ArrayPool<byte>.Shared.Return(buffer);
            }
            _draining.Clear();
            sink.OnDatagramBatchEnd();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stopped = true;
            Monitor.PulseAll(_gate);
        }
        _thread?.Join(TimeSpan.FromSeconds(5));
    }
}
