using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SleapRtc.Bench;

/// <summary>
/// Raw loopback UDP throughput with 1200-byte datagrams (one Send per datagram, a receiver thread, the sender
/// at most 4096 datagrams ahead so the socket buffer never overflows): the ceiling any DTLS/SCTP stack sits under.
/// </summary>
internal static class UdpCeiling
{
    private const int DatagramSize = 1200;
    private const int MaxAhead = 4096;

    public static (double MBps, long Lost) Measure(long bytes)
    {
        using var receiver = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        receiver.ReceiveBufferSize = 4 << 20;
        sender.SendBufferSize = 4 << 20;
        receiver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        receiver.ReceiveTimeout = 500;
        sender.Connect(receiver.LocalEndPoint!);
        var total = bytes / DatagramSize;
        long received = 0;
        var done = new ManualResetEventSlim();
        var receiveThread = new Thread(() =>
        {
            var buffer = new byte[2048];
            try
            {
                while (Interlocked.Read(ref received) < total)
                {
                    receiver.Receive(buffer);
                    Interlocked.Increment(ref received);
                }
            }
            catch (SocketException) { /* timeout: the rest was lost */ }
            done.Set();
        }) { IsBackground = true };
        receiveThread.Start();
        var datagram = new byte[DatagramSize];
        var clock = Stopwatch.StartNew();
        for (long sent = 0; sent < total; sent++)
        {
            while (sent - Interlocked.Read(ref received) > MaxAhead && !done.IsSet) Thread.SpinWait(20);
            sender.Send(datagram);
        }
        done.Wait(TimeSpan.FromSeconds(30));
        var elapsed = clock.Elapsed.TotalSeconds;
        var got = Interlocked.Read(ref received);
        return (got * DatagramSize / 1e6 / elapsed, total - got);
    }
}
