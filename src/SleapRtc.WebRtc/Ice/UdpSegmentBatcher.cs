using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SleapRtc.WebRtc.Ice;

/// <summary>
/// Linux UDP generic segmentation offload (GSO) for one host socket. A sender's cost on loopback is mostly the
/// kernel's per-datagram work (system call, UDP and IP output, loopback transmit); with the UDP_SEGMENT control
/// message one sendmsg hands the stack a run of equal-size datagrams back to back (the last may be shorter), and the
/// kernel splits them once (on loopback before delivery, on a NIC often in hardware). The receiver sees ordinary
/// datagrams, so peers need nothing. Datagrams are gathered only inside a batch the SCTP sender opens around one
/// burst (<see cref="IceAgent.BeginBatch"/>); a run is flushed when the size grows, after a shorter (last) segment,
/// at <see cref="MaxSegments"/> segments or ~64 KB, when the destination changes, and when the burst ends, so no
/// datagram outlives the burst that produced it. A kernel that refuses the option (EINVAL/EIO/ENOPROTOOPT: an old
/// kernel, a route without checksum offload, SO_NO_CHECK) turns this socket back to one send per datagram.
/// Only the net8.0 build on Linux uses it; elsewhere <see cref="TryCreate"/> returns null and sends stay plain.
/// </summary>
internal sealed unsafe class UdpSegmentBatcher
{
    /// <summary>UDP_MAX_SEGMENTS of kernels before 6.3 (later ones allow 128).</summary>
    public const int MaxSegments = 64;
    /// <summary>Largest UDP payload over IPv4: a segmented send is one datagram to the stack before it is split.</summary>
    public const int MaxBytes = 65507;

    private const int SolUdp = 17;
    private const int UdpSegment = 103;
    private const ushort AfInet = 2;
    private const int EIO = 5;
    private const int EINVAL = 22;
    private const int ENOPROTOOPT = 92;
    private const int EOPNOTSUPP = 95;

    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[MaxBytes];
    private int _length;
    private int _count;
    private int _segmentSize;
    private IPEndPoint? _remote;
    private SocketAddress? _remoteAddress;
    private volatile bool _refused;

    private UdpSegmentBatcher(Socket socket) => _socket = socket;

    /// <summary>Sends that carried more than one datagram.</summary>
    public long SegmentedSends { get; private set; }
    /// <summary>Datagrams those sends carried.</summary>
    public long SegmentedDatagrams { get; private set; }
    /// <summary>Datagrams sent one per call (runs of one, and everything after a refusal).</summary>
    public long PlainSends { get; private set; }
    /// <summary>The kernel refused a segmented send; this socket now sends one datagram per call.</summary>
    public bool Refused => _refused;

    /// <summary>A batcher for <paramref name="socket"/> when the kernel knows UDP_SEGMENT; null otherwise.</summary>
    public static UdpSegmentBatcher? TryCreate(Socket socket)
    {
#if NET8_0_OR_GREATER
        if (!OperatingSystem.IsLinux() || socket.AddressFamily != AddressFamily.InterNetwork) return null;
        try
        {
            // Probe: 0 is a valid value (no socket-wide segmentation) on kernels that know the option (4.18+);
            // older ones answer ENOPROTOOPT. The size travels per send, so STUN and other sends stay whole.
            socket.SetRawSocketOption(SolUdp, UdpSegment, stackalloc byte[sizeof(int)]);
        }
        catch (SocketException)
        {
            return null;
        }
        return new UdpSegmentBatcher(socket);
#else
        return null;
#endif
    }

    /// <summary>Adds one datagram to the run, flushing first or after as the segmentation rules require.</summary>
    public void Append(ReadOnlySpan<byte> datagram, IPEndPoint remote, SocketAddress? remoteAddress)
    {
        if (_refused || datagram.Length == 0 || datagram.Length > MaxBytes || remote.AddressFamily != AddressFamily.InterNetwork)
        {
            Flush();
            SendPlain(_socket, datagram, remote, remoteAddress);
            PlainSends++;
            return;
        }
        // Every segment but the last has the run's size: a larger datagram or another destination starts a new run.
        if (_count > 0 && (datagram.Length > _segmentSize || !remote.Equals(_remote))) Flush();
        if (_count == 0)
        {
            _segmentSize = datagram.Length;
            _remote = remote;
            _remoteAddress = remoteAddress;
        }
        datagram.CopyTo(_buffer.AsSpan(_length));
        _length += datagram.Length;
        _count++;
        if (datagram.Length < _segmentSize || _count == MaxSegments || _length + _segmentSize > MaxBytes) Flush();
    }

    /// <summary>Sends the gathered run: one segmented send, or one send per datagram when that is not possible.</summary>
    public void Flush()
    {
        if (_count == 0) return;
        try
        {
            if (_count > 1 && !_refused && TrySendSegmented()) return;
            for (var offset = 0; offset < _length; offset += _segmentSize)
            {
                SendPlain(_socket, _buffer.AsSpan(offset, Math.Min(_segmentSize, _length - offset)), _remote!, _remoteAddress);
                PlainSends++;
            }
        }
        finally
        {
            _count = 0;
            _length = 0;
        }
    }

    /// <summary>One datagram, one send; failures are lost datagrams (ICE and SCTP retransmit).</summary>
    internal static void SendPlain(Socket socket, ReadOnlySpan<byte> datagram, IPEndPoint remote, SocketAddress? remoteAddress)
    {
        try
        {
            if (remoteAddress is not null) socket.SendTo(datagram, SocketFlags.None, remoteAddress);
            else socket.SendTo(datagram, SocketFlags.None, remote);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>False when the run must go out one datagram at a time (refused, or the send buffer is full).</summary>
    private bool TrySendSegmented()
    {
#if NET8_0_OR_GREATER
        var handle = _socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            // struct sockaddr_in: family in host order, then port and address in network order.
            var name = stackalloc byte[16];
            new Span<byte>(name, 16).Clear();
            *(ushort*)name = AfInet;
            name[2] = (byte)(_remote!.Port >> 8);
            name[3] = (byte)_remote.Port;
            _remote.Address.TryWriteBytes(new Span<byte>(name + 4, 4), out _);
            // One cmsghdr carrying the segment size (a u16), aligned as glibc's CMSG_* macros do.
            var header = Align(sizeof(nuint) + 2 * sizeof(int));
            var controlLength = header + Align(sizeof(ushort));
            var control = stackalloc byte[controlLength];
            new Span<byte>(control, controlLength).Clear();
            *(nuint*)control = (nuint)(header + sizeof(ushort));
            *(int*)(control + sizeof(nuint)) = SolUdp;
            *(int*)(control + sizeof(nuint) + sizeof(int)) = UdpSegment;
            *(ushort*)(control + header) = (ushort)_segmentSize;
            nint sent;
            fixed (byte* data = _buffer)
            {
                var vector = new IoVector { Base = data, Length = (nuint)_length };
                var message = new MessageHeader
                {
                    Name = name, NameLength = 16, Vectors = &vector, VectorCount = 1,
                    Control = control, ControlLength = (nuint)controlLength,
                };
                sent = SendMessage((int)handle.DangerousGetHandle(), &message, 0);
            }
            if (sent >= 0)
            {
                SegmentedSends++;
                SegmentedDatagrams += _count;
                return true;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno is EINVAL or EIO or ENOPROTOOPT or EOPNOTSUPP) _refused = true;
            return false;
        }
        catch (ObjectDisposedException)
        {
            return true; // the socket closed under us: the run is lost, as its datagrams would be
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
#else
        _refused = true; // never reached: TryCreate returns no batcher on this build
        return false;
#endif
    }

    private static int Align(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    [DllImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static extern nint SendMessage(int socket, MessageHeader* message, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVector
    {
        public byte* Base;
        public nuint Length;
    }

    // struct msghdr; sequential layout pads as the C compiler does on both 64- and 32-bit Linux.
    [StructLayout(LayoutKind.Sequential)]
    private struct MessageHeader
    {
        public byte* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public byte* Control;
        public nuint ControlLength;
        public int Flags;
    }
}
