using System.Buffers.Binary;
using SleapRtc.WebRtc.Sctp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>RFC 9260 §7.2.4 fast-recovery rules of the sender, driven SACK by SACK without a network.</summary>
public class SctpLossRecoveryRulesTests
{
    private const int Mtu = 1200;
    private const uint FirstTsn = 1000;

    private static SctpSender NewSender(int initialCwndPackets) =>
        new(FirstTsn, Mtu, initialCwndPackets, 1 << 20, new SctpAssociationOptions());

    private static OutboundMessage Message(int length) =>
        new() { StreamId = 0, Ppid = 53, Buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length), Length = length };

    /// <summary>Fills one packet; returns the TSNs of the DATA chunks it carries.</summary>
    private static List<uint> FillOne(SctpSender sender, SctpPacketWriter writer, bool ignoreCwnd)
    {
        writer.Begin(5000, 5000, 1);
        sender.FillPacket(writer, System.Diagnostics.Stopwatch.GetTimestamp(), ignoreCwnd);
        var tsns = new List<uint>();
        var packet = writer.Packet.ToArray();
        for (int offset = 12; offset + 16 <= packet.Length;)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(offset + 2));
            if (packet[offset] == 0) tsns.Add(BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(offset + 4)));
            offset += (length + 3) & ~3;
        }
        return tsns;
    }

    private static SackOutcome Sack(SctpSender sender, uint cumulative, params (ushort Start, ushort End)[] blocks) =>
        SackAfter(sender, 0, cumulative, blocks);

    /// <summary>A SACK arriving <paramref name="rttMs"/> after now, so the RTT sample it may yield is about that.</summary>
    private static SackOutcome SackAfter(SctpSender sender, double rttMs, uint cumulative, params (ushort Start, ushort End)[] blocks)
    {
        var bytes = new byte[4 * blocks.Length];
        for (int i = 0; i < blocks.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4 * i), blocks[i].Start);
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4 * i + 2), blocks[i].End);
        }
        return sender.OnSack(cumulative, 1 << 20, bytes, blocks.Length,
            System.Diagnostics.Stopwatch.GetTimestamp() + (long)(rttMs * System.Diagnostics.Stopwatch.Frequency / 1000));
    }

    [Theory]
    [InlineData(40.5, true)]   // recent RTTs at the 40 ms minimum: no queue, a random loss gives back 1/8, growth 10 packets per RTT
    [InlineData(80.0, false)]  // recent RTTs doubled by a queue: congestion, RFC 9260's halving and 1 packet per RTT
    public void LossResponseAndGrowth_DependOnTheQueueingDelay(double smoothedRttMs, bool uncongested)
    {
        var sender = NewSender(initialCwndPackets: 40);
        var writer = new SctpPacketWriter(Mtu);
        sender.Enqueue(Message(200 * 1172));
        for (int i = 0; i < 40; i++) FillOne(sender, writer, ignoreCwnd: false);
        sender.AddRttSample(40);
        for (int i = 0; i < 30; i++) sender.AddRttSample(smoothedRttMs);
        Assert.Equal(uncongested, sender.PathUncongested);
        Assert.Equal(40, sender.MinRttMs);

        long cwndBefore = sender.Cwnd;
        Sack(sender, FirstTsn - 1, (2, 2));
        Sack(sender, FirstTsn - 1, (2, 3));
        Assert.True(Sack(sender, FirstTsn - 1, (2, 4)).FastRetransmitStarted);
        long afterLoss = sender.Cwnd;
        Assert.Equal(uncongested ? cwndBefore - cwndBefore / 8 : cwndBefore / 2, afterLoss);

        // Leave recovery (everything sent so far acknowledged), then acknowledge two windows in congestion avoidance,
        // one chunk per SACK with the window kept full.
        FillOne(sender, writer, ignoreCwnd: true);
        uint cumulative = FirstTsn + 39;
        SackAfter(sender, smoothedRttMs, cumulative);
        long start = sender.Cwnd;
        for (long acked = 0; acked < 2 * start; acked += Mtu)
        {
            while (FillOne(sender, writer, ignoreCwnd: false).Count > 0) { }
            SackAfter(sender, smoothedRttMs, ++cumulative);
        }
        long grownPackets = (sender.Cwnd - start) / Mtu;
        if (uncongested) Assert.InRange(grownPackets, 15, 35);
        else Assert.InRange(grownPackets, 1, 4);
    }

    [Fact]
    public void SecondLossInOneWindow_IsRetransmittedAtOnce_ButCwndIsCutOnlyOnce()
    {
        var sender = NewSender(initialCwndPackets: 20);
        var writer = new SctpPacketWriter(Mtu);
        sender.Enqueue(Message(20 * 1172));
        for (int i = 0; i < 20; i++) Assert.Equal(new List<uint> { FirstTsn + (uint)i }, FillOne(sender, writer, ignoreCwnd: false));
        uint cumulative = FirstTsn - 1;
        long cwndBefore = sender.Cwnd;

        // TSNs 1000 and 1002 are lost; each SACK newly acknowledges one later TSN (offsets are from 999).
        Assert.False(Sack(sender, cumulative, (2, 2)).FastRetransmitStarted);
        Assert.False(Sack(sender, cumulative, (2, 2), (4, 4)).FastRetransmitStarted);
        Assert.True(Sack(sender, cumulative, (2, 2), (4, 5)).FastRetransmitStarted); // third miss of 1000
        long cwndInRecovery = sender.Cwnd;
        Assert.Equal(Math.Max(cwndBefore / 2, 4L * Mtu), cwndInRecovery);

        // The retransmission of the first outstanding TSN is reported, so the association restarts T3 for it.
        Assert.Equal(new List<uint> { FirstTsn }, FillOne(sender, writer, ignoreCwnd: true));
        Assert.True(sender.RetransmittedFirstOutstanding);

        // Third miss of 1002 inside the same recovery window: sent at once, cwnd untouched (one cut per window).
        Assert.True(Sack(sender, cumulative, (2, 2), (4, 6)).FastRetransmitStarted);
        Assert.Equal(cwndInRecovery, sender.Cwnd);
        Assert.Equal(new List<uint> { FirstTsn + 2 }, FillOne(sender, writer, ignoreCwnd: true));
        Assert.False(sender.RetransmittedFirstOutstanding); // 1000 is still the first outstanding TSN
        Assert.Equal(2, sender.FastRetransmits);

        // The cumulative point passes 1002 but not the recovery point (1019): still in recovery, no growth.
        Sack(sender, FirstTsn + 6);
        Assert.Equal(cwndInRecovery, sender.Cwnd);
        Sack(sender, FirstTsn + 19);
        Assert.True(sender.IsDrained);
    }

    [Fact]
    public void AfterT3_EveryPacketAsksForAnImmediateSack_UntilCwndRegrows()
    {
        var sender = NewSender(initialCwndPackets: 10);
        var writer = new SctpPacketWriter(Mtu);
        sender.Enqueue(Message(40 * 1172));
        for (int i = 0; i < 10; i++) FillOne(sender, writer, ignoreCwnd: false);
        Assert.False(sender.AckClockIsThin);

        sender.OnRetransmissionTimeout();
        Assert.True(sender.AckClockIsThin);
        Assert.Equal(new List<uint> { FirstTsn }, FillOne(sender, writer, ignoreCwnd: false));
        Assert.True(sender.RetransmittedFirstOutstanding);
        Assert.Empty(FillOne(sender, writer, ignoreCwnd: false)); // cwnd of one packet

        // Slow start regrows cwnd by at most one MTU per SACK; from 4 packets on, normal delayed SACKs suffice.
        uint cumulative = FirstTsn;
        while (sender.Cwnd < 4L * Mtu)
        {
            Sack(sender, cumulative);
            var sent = new List<uint>();
            for (var packet = FillOne(sender, writer, false); packet.Count > 0; packet = FillOne(sender, writer, false)) sent.AddRange(packet);
            Assert.NotEmpty(sent);
            cumulative = sent[^1];
        }
        Assert.False(sender.AckClockIsThin);
    }
}
