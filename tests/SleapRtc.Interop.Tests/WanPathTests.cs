using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>
/// The impairment relay does what its profile says (delay, loss, rate cap with tail drop, measured from outside it),
/// and our stack moves data through the 40 ms / 0.5 % / 200 Mbit/s WAN profile well above what an RFC 9260 halving
/// sender can (about MSS/RTT·1.2/√p = 0.5 MB/s there; libwebrtc measures 0.5).
/// </summary>
public sealed class WanPathTests(ITestOutputHelper log)
{
    private const int HeaderBytes = 28; // IPv4 + UDP, which the relay's rate counts

    [Fact]
    public void Relay_delays_loses_and_rate_limits_as_configured()
    {
        // Delay and loss: 3000 timestamped packets at ~6 MB/s, well under any cap.
        var lossy = new Impairment(0.05, 0, TimeSpan.Zero) { Delay = TimeSpan.FromMilliseconds(20) };
        var (received, delays, _, relayStats) = SendThrough(lossy, packets: 3000, size: 1000, bytesPerSecond: 6e6);
        delays.Sort();
        var lossRate = 1 - received / 3000.0;
        log.WriteLine($"delay/loss: received {received} of 3000 (loss {lossRate:P2}), one-way delay min {delays[0]:0.00} ms, " +
            $"median {delays[delays.Count / 2]:0.00}, p95 {delays[(int)(delays.Count * 0.95)]:0.00}; relay {relayStats}");
        Assert.InRange(lossRate, 0.035, 0.065);
        Assert.Equal(relayStats.Lost, 3000 - received);
        Assert.True(delays[0] >= 19.0, $"a packet arrived after {delays[0]:0.00} ms, before the 20 ms delay");
        Assert.InRange(delays[delays.Count / 2], 19.5, 22.5);

        // Rate cap and tail drop: offer 10 MB/s for about a second to a 40 Mbit/s (5 MB/s) bottleneck with a 100 kB queue.
        var capped = new Impairment(0, 0, TimeSpan.Zero) { RateBitsPerSecond = 40e6, QueueBytes = 100_000 };
        var (cappedReceived, _, arrivalSpan, cappedStats) = SendThrough(capped, packets: 8000, size: 1200, bytesPerSecond: 10e6);
        var measuredBitsPerSecond = (cappedReceived - 1) * (1200 + HeaderBytes) * 8 / arrivalSpan.TotalSeconds;
        log.WriteLine($"rate cap: received {cappedReceived} of 8000 at {measuredBitsPerSecond / 1e6:0.00} Mbit/s on the wire; relay {cappedStats}");
        Assert.InRange(measuredBitsPerSecond, 40e6 * 0.93, 40e6 * 1.07);
        Assert.True(cappedStats.TailDropped > 2000, $"only {cappedStats.TailDropped} tail drops at twice the bottleneck rate");
        Assert.Equal(8000 - cappedStats.TailDropped, cappedReceived);
    }

    /// <summary>
    /// Sends <paramref name="packets"/> datagrams A → B through a relay, paced at <paramref name="bytesPerSecond"/>,
    /// each stamped with its send time; returns what B received, one-way delays (ms), first-to-last arrival span.
    /// </summary>
    private static (int Received, List<double> DelaysMs, TimeSpan ArrivalSpan, RelayDirectionStats Stats) SendThrough(
        Impairment impairment, int packets, int size, double bytesPerSecond)
    {
        using var relay = new LossyUdpRelay(impairment, new Impairment(0, 0, TimeSpan.Zero), seed: 20261202);
        using var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var b = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        a.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        b.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        b.ReceiveBufferSize = 8 << 20;
        // B speaks first so the relay knows where A's packets go (it latches each side's first source).
        b.SendTo(new byte[8], relay.EndpointForB);
        var delays = new List<double>();
        long firstArrival = 0, lastArrival = 0;
        var received = 0;
        var receiver = new Thread(() =>
        {
            var buffer = new byte[65536];
            b.ReceiveTimeout = 1000;
            while (true)
            {
                int length;
                try { length = b.Receive(buffer); }
                catch (SocketException) { return; } // a second of silence: everything that will come has come
                var now = Stopwatch.GetTimestamp();
                if (length < 16) continue;
                delays.Add((now - BinaryPrimitives.ReadInt64LittleEndian(buffer)) * 1000.0 / Stopwatch.Frequency);
                if (received++ == 0) firstArrival = now;
                lastArrival = now;
            }
        }) { IsBackground = true };
        receiver.Start();
        Thread.Sleep(50); // the latch packet reaches the relay first
        var payload = new byte[size];
        var clock = Stopwatch.StartNew();
        for (var sent = 0; sent < packets;)
        {
            // Pace in ~1 ms steps: send what the offered rate allows by now, then sleep.
            var allowed = (int)Math.Min(packets, clock.Elapsed.TotalSeconds * bytesPerSecond / size + 1);
            for (; sent < allowed; sent++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
                BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(8), sent);
                a.SendTo(payload, relay.EndpointForA);
            }
            Thread.Sleep(1);
        }
        receiver.Join();
        return (received, delays, TimeSpan.FromSeconds((lastArrival - firstArrival) / (double)Stopwatch.Frequency), relay.Stats(towardB: true));
    }

    [Fact]
    public async Task Ours_pair_moves_16MB_through_the_wan40_profile_above_the_RFC_halving_bound()
    {
        const long bytes = 16_000_000;
        var profile = WanProfile.Wan40;
        await using var path = await RelayedPair.ConnectAsync(FixtureCatalog.Ours(), FixtureCatalog.Ours(), profile.EachWay, profile.EachWay, seed: 20261202);
        var outcome = await PeerPair.TransferAsync(path.Pair.Offerer, path.Pair.Answerer, bytes, TimeSpan.FromSeconds(60));
        log.WriteLine($"ours -> ours through {profile}: {outcome.MBps:0.00} MB/s in {outcome.Elapsed.TotalSeconds:0.0} s; " +
            $"relay toward receiver: {path.Relay.Stats(towardB: true)}; relay CPU {path.Relay.CpuTime.TotalSeconds:0.0} s");
        Assert.Equal(bytes, outcome.ReceivedBytes);
        Assert.Equal(outcome.SentSha256, outcome.ReceivedSha256);
        Assert.True(path.Relay.Stats(towardB: true).Lost > 20, "the path lost (almost) nothing, so this test proves nothing");
        // An RFC 9260 halving sender is bound near 0.5 MB/s on this path; ours must clearly beat that. Measured
        // 1.3–1.8 MB/s for these 16 MB at load 10–40 (ramp-up included); the floor leaves room for a loaded CI box.
        Assert.True(outcome.MBps >= 0.8, $"{outcome.MBps:0.00} MB/s through {profile.Name}, below the 0.8 MB/s floor");
    }
}
