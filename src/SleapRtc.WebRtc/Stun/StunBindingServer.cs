using System.Net;
using System.Net.Sockets;

namespace SleapRtc.WebRtc.Stun;

/// <summary>
/// A minimal STUN Binding responder (RFC 8489 §12): answers every well-formed Binding request with the
/// source address as XOR-MAPPED-ADDRESS, SOFTWARE and FINGERPRINT; everything else is ignored. The signaling
/// server runs one on its own port number so peers behind NAT learn their public address without any
/// outside server; tests use one as a loopback STUN server.
/// </summary>
public sealed class StunBindingServer : IDisposable
{
    private const string SoftwareName = "SleapRtc";
    private readonly Socket _socket;
    private readonly Thread _thread;
    private readonly Action<string>? _onStopped;
    private volatile bool _disposed;
    private long _requestsAnswered;

    /// <param name="bindTo">Address and port to bind (port 0: any free port). IPv6Any also serves IPv4 (dual mode).</param>
    /// <param name="onStopped">Told why, should the socket fail for good before disposal (for the host's log).</param>
    public StunBindingServer(IPEndPoint bindTo, Action<string>? onStopped = null)
    {
        _onStopped = onStopped;
        _socket = new Socket(bindTo.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (bindTo.Address.Equals(IPAddress.IPv6Any)) _socket.DualMode = true;
            _socket.Bind(bindTo);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _thread = new Thread(Run) { IsBackground = true, Name = "stun-server" };
        _thread.Start();
    }

    public IPEndPoint LocalEndPoint { get; }

    public int Port => LocalEndPoint.Port;

    public long RequestsAnswered => Interlocked.Read(ref _requestsAnswered);

    /// <summary>The Binding success response to <paramref name="request"/> from <paramref name="source"/>, or null when it is not a well-formed Binding request.</summary>
    public static StunMessageBuilder? Answer(ReadOnlySpan<byte> request, IPEndPoint source)
    {
        if (!StunMessage.TryParse(request, out var parsed) || parsed!.Class != StunClass.Request || parsed.Method != StunMethod.Binding) return null;
        // A dual-mode socket reports IPv4 senders as ::ffff:a.b.c.d; the peer knows itself by its IPv4 address.
        if (source.Address.IsIPv4MappedToIPv6) source = new IPEndPoint(source.Address.MapToIPv4(), source.Port);
        return new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, parsed.TransactionId)
            .AddXorMappedAddress(source).AddSoftware(SoftwareName).AddFingerprint();
    }

    private void Run()
    {
        var buffer = new byte[1500];
        var address = new SocketAddress(LocalEndPoint.AddressFamily);
        while (!_disposed)
        {
            int received;
            try
            {
                received = _socket.ReceiveFrom(buffer, SocketFlags.None, address);
            }
            catch (SocketException error) when (!_disposed && error.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // ICMP unreachable after an earlier answer (Windows), or an oversized datagram: not fatal.
            }
            catch (Exception error)
            {
                if (!_disposed) _onStopped?.Invoke($"STUN responder stopped: {(error as SocketException)?.SocketErrorCode.ToString() ?? error.Message}");
                break;
            }
            try
            {
                var response = Answer(buffer.AsSpan(0, received), (IPEndPoint)LocalEndPoint.Create(address));
                if (response is null) continue;
                // Counted before the send: the asker may act on the answer before this thread runs again.
                Interlocked.Increment(ref _requestsAnswered);
                _socket.SendTo(response.Span, SocketFlags.None, address);
            }
            catch (Exception) when (!_disposed)
            {
                // A send that fails (the asker is gone) or hostile input never stops the responder.
            }
            catch (Exception)
            {
                break;
            }
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _socket.Dispose();
        if (_thread != Thread.CurrentThread) _thread.Join(TimeSpan.FromSeconds(2));
    }
}
