using System.Buffers.Binary;
using SleapRtc.WebRtc.Sctp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>The sender's and receiver's RFC 9260 rules, driven chunk by chunk without a network.</summary>
public class SctpSenderReceiverTests
{
    private sealed class CollectingSink : ISctpMessageSink
    {
        public List<(ushort Stream, uint Ppid, byte[] Data)> Messages { get; } = new();

        public void OnMessage(ushort streamId, uint ppid, byte[] buffer, int length)
        {
            Messages.Add((streamId, ppid, buffer.AsSpan(0, length).ToArray()));
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static (uint Cum, uint Window, List<(ushort Start, ushort End)> Gaps, List<uint> Dups) ReadSack(SctpReceiver receiver)
    {
        var value = new byte[1024];
        receiver.WriteSack(value, out int written);
        var span = value.AsSpan(0, written);
        int gaps = BinaryPrimitives.ReadUInt16BigEndian(span[8..]);
        int dups = BinaryPrimitives.ReadUInt16BigEndian(span[10..]);
        var gapList = new List<(ushort, ushort)>();
        for (int i = 0; i < gaps; i++) gapList.Add((BinaryPrimitives.ReadUInt16BigEndian(span[(12 + 4 * i)..]), BinaryPrimitives.ReadUInt16BigEndian(span[(14 + 4 * i)..])));
        var dupList = new List<uint>();
        for (int i = 0; i < dups; i++) dupList.Add(BinaryPrimitives.ReadUInt32BigEndian(span[(12 + 4 * gaps + 4 * i)..]));
        return (BinaryPrimitives.ReadUInt32BigEndian(span), BinaryPrimitives.ReadUInt32BigEndian(span[4..]), gapList, dupList);
    }

    [Fact]
    public void Receiver_ReportsGapBlocksAndDuplicates_AndShrinksItsWindowForHeldData()
    {
        var sink = new CollectingSink();
        var receiver = new SctpReceiver(peerInitialTsn: 100, receiveWindow: 10_000, maxMessageSize: 65536);
        const byte whole = 0x03;
        var payload = new byte[500];
        Assert.Equal(DataChunkOutcome.InOrder, receiver.OnData(100, whole, 1, 53, payload, sink));
        Assert.Equal(DataChunkOutcome.OutOfOrder, receiver.OnData(102, whole, 1, 53, payload, sink));
        Assert.Equal(DataChunkOutcome.OutOfOrder, receiver.OnData(103, whole, 1, 53, payload, sink));
        Assert.Equal(DataChunkOutcome.OutOfOrder, receiver.OnData(106, whole, 1, 53, payload, sink));
        Assert.Equal(DataChunkOutcome.Duplicate, receiver.OnData(103, whole, 1, 53, payload, sink));
        Assert.Equal(DataChunkOutcome.Duplicate, receiver.OnData(99, whole, 1, 53, payload, sink));
        var sack = ReadSack(receiver);
        Assert.Equal(100u, sack.Cum);
        Assert.Equal(10_000u - 3 * 500, sack.Window); // three chunks held for reordering
        Assert.Equal(new[] { ((ushort)2, (ushort)3), ((ushort)6, (ushort)6) }, sack.Gaps);
        Assert.Equal(new[] { 103u, 99u }, sack.Dups);
        Assert.Single(sink.Messages);

        Assert.Equal(DataChunkOutcome.InOrder, receiver.OnData(101, whole, 1, 53, payload, sink));
        sack = ReadSack(receiver);
        Assert.Equal(103u, sack.Cum);
        Assert.Equal(new[] { ((ushort)3, (ushort)3) }, sack.Gaps);
        Assert.Empty(sack.Dups); // reported once
        Assert.Equal(4, sink.Messages.Count);

        // Beyond the window: dropped, not stored.
        Assert.Equal(DataChunkOutcome.Dropped, receiver.OnData(110, whole, 1, 53, new byte[9_600], sink));
    }

    [Fact]
    public void Receiver_ReassemblesFragmentsInTsnOrder_AndRejectsOrphans()
    {
        var sink = new CollectingSink();
        var receiver = new SctpReceiver(1, 1 << 20, 1000);
        Assert.Equal(DataChunkOutcome.OutOfOrder, receiver.OnData(3, DataFlags.End, 4, 51, "lo"u8, sink));
        Assert.Equal(DataChunkOutcome.OutOfOrder, receiver.OnData(2, 0, 4, 51, "l"u8, sink));
        Assert.Equal(DataChunkOutcome.InOrder, receiver.OnData(1, DataFlags.Begin, 4, 51, "he"u8, sink));
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(Assert.Single(sink.Messages).Data));
        Assert.Equal(DataChunkOutcome.Violation, receiver.OnData(4, 0, 4, 51, "x"u8, sink)); // middle without a beginning
        var big = new SctpReceiver(1, 1 << 20, 1000);
        Assert.Equal(DataChunkOutcome.InOrder, big.OnData(1, DataFlags.Begin, 0, 53, new byte[600], sink));
        Assert.Equal(DataChunkOutcome.Violation, big.OnData(2, DataFlags.End, 0, 53, new byte[600], sink)); // > max message size
    }

    private static SctpSender NewSender(out SctpPacketWriter writer, uint window = 1 << 20)
    {
        writer = new SctpPacketWriter(1200);
        return new SctpSender(1000, 1200, 4, window, new SctpAssociationOptions());
    }

    private static int SendPackets(SctpSender sender, SctpPacketWriter writer, int max = 1000)
    {
        int packets = 0;
        while (packets < max)
        {
            writer.Begin(5000, 5000, 1);
            if (sender.FillPacket(writer, System.Diagnostics.Stopwatch.GetTimestamp(), false) == 0) break;
            packets++;
        }
        return packets;
    }

    private static OutboundMessage Message(int length) => new() { StreamId = 0, Ppid = 53, Buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length), Length = length };

    private static byte[] Gaps(params (ushort Start, ushort End)[] blocks)
    {
        var bytes = new byte[4 * blocks.Length];
        for (int i = 0; i < blocks.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4 * i), blocks[i].Start);
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4 * i + 2), blocks[i].End);
        }
        return bytes;
    }

    [Fact]
    public void Sender_SlowStartFastRetransmitAndT3_FollowRfc9260()
    {
        var sender = NewSender(out var writer);
        sender.Enqueue(Message(100_000));
        int first = SendPackets(sender, writer);
        Assert.Equal(4, first); // initial cwnd of 4 packets bounds the first flight
        long cwnd = sender.Cwnd;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();

        // Slow start: a SACK of 2 full chunks while the window was full grows cwnd by at most one MTU.
        var outcome = sender.OnSack(1001, 1 << 20, default, 0, now);
        Assert.True(outcome.CumulativeAdvanced);
        Assert.Equal(cwnd + 1200, sender.Cwnd);

        SendPackets(sender, writer);
        // RTT samples well above the minimum: a queue is building, so a loss is congestion and halves cwnd
        // (SctpLossRecoveryRulesTests covers the uncongested path).
        sender.AddRttSample(10);
        for (int i = 0; i < 8; i++) sender.AddRttSample(80);
        Assert.False(sender.PathUncongested);
        // TSNs 1002.. outstanding; 1002 lost: three SACKs each newly acking later TSNs mark it.
        long queuedRttLater = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * 80 / 1000;
        for (int i = 1; i <= 3; i++)
        {
            var result = sender.OnSack(1001, 1 << 20, Gaps((2, (ushort)(1 + i))), 1, queuedRttLater);
            Assert.Equal(i == 3, result.FastRetransmitStarted);
        }
        Assert.Equal(1, sender.FastRetransmits);
        long afterFastRetransmit = sender.Cwnd;
        Assert.Equal(Math.Max((cwnd + 1200) / 2, 4 * 1200), afterFastRetransmit);
        Assert.True(sender.HasRetransmissionsPending);
        writer.Begin(5000, 5000, 1);
        Assert.True(sender.FillPacket(writer, now, ignoreCwndForRetransmissions: true) >= 1);
        Assert.Equal(1, (int)sender.ChunksRetransmitted);

        // T3: cwnd collapses to one packet, RTO doubles, everything outstanding is queued for retransmission.
        double rto = sender.RtoMs;
        sender.OnRetransmissionTimeout();
        Assert.Equal(1200, sender.Cwnd);
        Assert.Equal(Math.Min(rto * 2, 60_000), sender.RtoMs);
        Assert.Equal(0, sender.FlightSize);
        Assert.Equal(1, SendPackets(sender, writer)); // one packet per cwnd of 1 MTU
    }

    [Fact]
    public void Sender_HonoursThePeerWindow_AndProbesAZeroWindow()
    {
        var sender = NewSender(out var writer, window: 3000);
        sender.Enqueue(Message(50_000));
        Assert.Equal(2, SendPackets(sender, writer)); // ~2.3 KB fits the 3,000-byte window, the rest waits
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        sender.OnSack(1001, 0, default, 0, now); // everything acked, but the receiver has no room
        Assert.Equal(1, SendPackets(sender, writer)); // zero-window probe: one chunk when nothing is in flight
        Assert.Equal(0, SendPackets(sender, writer));
    }

    [Fact]
    public void Sender_IgnoresStaleAndImpossibleSacks()
    {
        var sender = NewSender(out var writer);
        sender.Enqueue(Message(4 * 1172)); // four full chunks; a sub-packet tail would wait (Nagle)
        Assert.Equal(4, SendPackets(sender, writer)); // TSNs 1000..1003
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        Assert.False(sender.OnSack(2000, 1 << 20, default, 0, now).Accepted); // acks TSNs never sent
        Assert.True(sender.OnSack(1002, 1 << 20, default, 0, now).Accepted);
        Assert.False(sender.OnSack(1001, 1 << 20, default, 0, now).Accepted); // older than the cumulative ack
        Assert.True(sender.OnSack(1003, 1 << 20, Gaps((5, 2), (0, 0), (40, 60)), 3, now).Accepted); // bad blocks skipped
        Assert.True(sender.IsDrained);
    }
}
