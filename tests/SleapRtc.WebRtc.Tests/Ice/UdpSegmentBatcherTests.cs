using System.Net;
using System.Net.Sockets;
using SleapRtc.WebRtc.Ice;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Ice;

/// <summary>
/// The GSO batcher's flush rules against the real kernel: a loopback socket pair, and what the receiver reads is
/// compared datagram by datagram (size, content, order) with what was appended.
/// </summary>
public sealed class UdpSegmentBatcherTests : IDisposable
{
    private readonly Socket _sender = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _receiver = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly IPEndPoint _destination;
    private readonly List<byte[]> _appended = new();
    private int _sequence;

    public UdpSegmentBatcherTests()
    {
        _receiver.ReceiveBufferSize = 4 << 20;
        _receiver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _sender.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _receiver.ReceiveTimeout = 2000;
        _destination = (IPEndPoint)_receiver.LocalEndPoint!;
    }

    public void Dispose()
    {
        _sender.Dispose();
        _receiver.Dispose();
    }

    /// <summary>Null where the kernel does not know UDP_SEGMENT (not Linux, or Linux before 4.18): nothing to test there.</summary>
    private UdpSegmentBatcher? CreateBatcher() => UdpSegmentBatcher.TryCreate(_sender);

    /// <summary>A datagram whose every byte says where it is in the sequence, so a reordering or a split shows.</summary>
    private void Append(UdpSegmentBatcher batcher, int size)
    {
        var datagram = new byte[size];
        datagram.AsSpan().Fill((byte)_sequence);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(datagram, _sequence++);
        _appended.Add(datagram);
        batcher.Append(datagram, _destination, null);
    }

    private void AssertReceivedInOrder()
    {
        var buffer = new byte[65536];
        foreach (var expected in _appended)
        {
            var length = _receiver.Receive(buffer);
            Assert.Equal(expected.Length, length);
            Assert.True(buffer.AsSpan(0, length).SequenceEqual(expected),
                $"datagram {System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(expected)} differs");
        }
        Assert.Equal(0, _receiver.Available);
        _appended.Clear();
    }

    [Fact]
    public void Equal_sizes_with_a_shorter_last_leave_in_one_send_as_separate_datagrams()
    {
        if (CreateBatcher() is not { } batcher) return;
        for (var i = 0; i < 10; i++) Append(batcher, 1200);
        Thread.Sleep(20);
        Assert.Equal(0, _receiver.Available); // held until the burst ends
        Append(batcher, 500); // a shorter segment can only be the last: the run leaves at once
        AssertReceivedInOrder();
        Assert.Equal((1L, 11L, 0L), (batcher.SegmentedSends, batcher.SegmentedDatagrams, batcher.PlainSends));
    }

    [Fact]
    public void A_larger_datagram_starts_a_new_run_and_flush_ends_the_burst()
    {
        if (CreateBatcher() is not { } batcher) return;
        for (var i = 0; i < 3; i++) Append(batcher, 1000);
        for (var i = 0; i < 4; i++) Append(batcher, 1200);
        Append(batcher, 1200);
        batcher.Flush(); // the scope's end
        batcher.Flush(); // nothing left: no send
        AssertReceivedInOrder();
        Assert.Equal((2L, 8L, 0L), (batcher.SegmentedSends, batcher.SegmentedDatagrams, batcher.PlainSends));
    }

    [Fact]
    public void A_run_of_one_is_a_plain_send()
    {
        if (CreateBatcher() is not { } batcher) return;
        Append(batcher, 1200);
        batcher.Flush();
        AssertReceivedInOrder();
        Assert.Equal((0L, 1L), (batcher.SegmentedSends, batcher.PlainSends));
    }

    [Fact]
    public void Runs_stop_at_64_segments_and_at_64_KB()
    {
        if (CreateBatcher() is not { } batcher) return;
        for (var i = 0; i < 130; i++) Append(batcher, 1000); // 64 + 64 + 2 (64 KB would allow 65)
        batcher.Flush();
        AssertReceivedInOrder(); // read between the runs: the receive buffer may hold less than all of them
        Assert.Equal((3L, 130L), (batcher.SegmentedSends, batcher.SegmentedDatagrams));
        for (var i = 0; i < 60; i++) Append(batcher, 1200); // 54 fit in 65,507 bytes, then 6
        batcher.Flush();
        AssertReceivedInOrder();
        Assert.Equal((5L, 190L, 0L), (batcher.SegmentedSends, batcher.SegmentedDatagrams, batcher.PlainSends));
    }

    [Fact]
    public void A_refused_segmented_send_falls_back_to_one_send_per_datagram()
    {
        if (CreateBatcher() is not { } batcher) return;
        // SO_NO_CHECK (no UDP checksum) is a real reason the kernel refuses segmentation (EINVAL).
        _sender.SetRawSocketOption(1, 11, BitConverter.GetBytes(1));
        for (var i = 0; i < 5; i++) Append(batcher, 1200);
        batcher.Flush();
        Assert.True(batcher.Refused);
        for (var i = 0; i < 3; i++) Append(batcher, 1200); // from now on plain at once, nothing held
        AssertReceivedInOrder();
        Assert.Equal((0L, 8L), (batcher.SegmentedSends, batcher.PlainSends));
    }
}
