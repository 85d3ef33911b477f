using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using SleapRtc.Protocol.Logging;

namespace SleapRtc.Signaling.Stun;

/// <summary>
/// A minimal STUN server (RFC 8489): answers Binding Requests with XOR-MAPPED-ADDRESS and
/// FINGERPRINT so peers learn their reflexive address from the signaling host itself, without any
/// outside STUN server. Everything else is ignored. Deliberately tiny and self-contained; the WebRTC
/// assembly has its own full codec.
/// </summary>
public sealed class StunBindingResponder : IAsyncDisposable
{
    public const uint MagicCookie = 0x2112A442;
    private const ushort BindingRequest = 0x0001;
    private const ushort BindingSuccess = 0x0101;
    private const ushort XorMappedAddress = 0x0020;
    private const ushort Software = 0x8022;
    private const ushort Fingerprint = 0x8028;
    private const uint FingerprintXor = 0x5354554E;
    private static readonly byte[] SoftwareName = "SleapRtc"u8.ToArray();

    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly ILogSink _log;

    private StunBindingResponder(Socket socket, ILogSink log)
    {
        _socket = socket;
        _log = log;
        _loop = Task.Run(() => ServeAsync(_stop.Token));
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public int Port => LocalEndPoint.Port;

    /// <summary>Binds UDP on <paramref name="address"/>:<paramref name="port"/> (0 = any free port) and starts answering.</summary>
    public static StunBindingResponder Start(IPAddress address, int port, ILogSink log)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(new IPEndPoint(address, port));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new StunBindingResponder(socket, log);
    }

    private async Task ServeAsync(CancellationToken ct)
    {
        var buffer = new byte[1500];
        var response = new byte[128];
        EndPoint any = new IPEndPoint(_socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!ct.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try { received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // ICMP unreachable from an earlier answer, or an oversized datagram: not our problem.
            }
            catch (SocketException e)
            {
                _log.Write(LogLevel.Warning, "stun", $"STUN responder stopped: {e.SocketErrorCode}");
                return;
            }

            var from = (IPEndPoint)received.RemoteEndPoint;
            var length = BuildResponse(buffer.AsSpan(0, received.ReceivedBytes), from, response);
            if (length == 0) continue;
            try { await _socket.SendToAsync(response.AsMemory(0, length), SocketFlags.None, from, ct).ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    /// <summary>Writes the Binding success response for a valid Binding Request into <paramref name="output"/>; returns its length, 0 to ignore.</summary>
    public static int BuildResponse(ReadOnlySpan<byte> request, IPEndPoint from, Span<byte> output)
    {
        if (request.Length < 20 || (request[0] & 0xC0) != 0) return 0;
        if (BinaryPrimitives.ReadUInt16BigEndian(request) != BindingRequest) return 0;
        var bodyLength = BinaryPrimitives.ReadUInt16BigEndian(request[2..]);
        if (bodyLength % 4 != 0 || 20 + bodyLength != request.Length) return 0;
        if (BinaryPrimitives.ReadUInt32BigEndian(request[4..]) != MagicCookie) return 0;
        var transactionId = request.Slice(8, 12);

        var address = from.Address.IsIPv4MappedToIPv6 ? from.Address.MapToIPv4() : from.Address;
        var addressBytes = address.GetAddressBytes();
        var offset = 20;

        // XOR-MAPPED-ADDRESS: port XOR the cookie's high half, address XOR cookie (and transaction id for IPv6).
        BinaryPrimitives.WriteUInt16BigEndian(output[offset..], XorMappedAddress);
        BinaryPrimitives.WriteUInt16BigEndian(output[(offset + 2)..], (ushort)(4 + addressBytes.Length));
        output[offset + 4] = 0;
        output[offset + 5] = addressBytes.Length == 4 ? (byte)0x01 : (byte)0x02;
        BinaryPrimitives.WriteUInt16BigEndian(output[(offset + 6)..], (ushort)(from.Port ^ (MagicCookie >> 16)));
        Span<byte> mask = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(mask, MagicCookie);
        transactionId.CopyTo(mask[4..]);
        for (var i = 0; i < addressBytes.Length; i++) output[offset + 8 + i] = (byte)(addressBytes[i] ^ mask[i]);
        offset += 8 + addressBytes.Length;

        BinaryPrimitives.WriteUInt16BigEndian(output[offset..], Software);
        BinaryPrimitives.WriteUInt16BigEndian(output[(offset + 2)..], (ushort)SoftwareName.Length);
        SoftwareName.CopyTo(output[(offset + 4)..]);
        offset += 4 + SoftwareName.Length;
        while (offset % 4 != 0) output[offset++] = 0;

        // Header, with the length already counting the FINGERPRINT attribute the CRC is computed before.
        BinaryPrimitives.WriteUInt16BigEndian(output, BindingSuccess);
        BinaryPrimitives.WriteUInt16BigEndian(output[2..], (ushort)(offset - 20 + 8));
        BinaryPrimitives.WriteUInt32BigEndian(output[4..], MagicCookie);
        transactionId.CopyTo(output[8..]);

        var crc = Crc32(output[..offset]) ^ FingerprintXor;
        BinaryPrimitives.WriteUInt16BigEndian(output[offset..], Fingerprint);
        BinaryPrimitives.WriteUInt16BigEndian(output[(offset + 2)..], 4);
        BinaryPrimitives.WriteUInt32BigEndian(output[(offset + 4)..], crc);
        return offset + 8;
    }

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }

    /// <summary>CRC-32 (ISO-HDLC, as in zip), which STUN's FINGERPRINT uses.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { await _loop.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        _stop.Dispose();
    }
}
