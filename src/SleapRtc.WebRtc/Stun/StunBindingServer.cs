using System.Net;
using System.Net.Sockets;

namespace SleapRtc.WebRtc.Stun;

/// <summary>
/// A minimal STUN Binding responder (RFC 8489 §12): answers every well-formed Binding request with the
/// source address as XOR-MAPPED-ADDRESS. Used by the signaling server so peers behind NAT learn their
/// public address without any outside server, and by tests as a loopback STUN server.
/// </summary>
public sealed class StunBindingServer : IDisposable
{
    private readonly Socket _socket;
    private readonly Thread _thread;
    private volatile bool _disposed;
    private long _requestsAnswered;

    public StunBindingServer(IPEndPoint bindTo)
    {
        _socket = new Socket(bindTo.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
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

    public long RequestsAnswered => Interlocked.Read(ref _requestsAnswered);

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
            catch (SocketException) when (!_disposed)
            {
                continue;
            }
            catch (Exception)
            {
                break;
            }
            try
            {
                if (!StunMessage.TryParse(buffer.AsSpan(0, received), out var request)
                    || request!.Class != StunClass.Request || request.Method != StunMethod.Binding) continue;
                var source = (IPEndPoint)LocalEndPoint.Create(address);
                var response = new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, request.TransactionId)
                    .AddXorMappedAddress(source).AddFingerprint();
                // Counted before the send: the asker may act on the answer before this thread runs again.
                Interlocked.Increment(ref _requestsAnswered);
                _socket.SendTo(response.Span, SocketFlags.None, address);
            }
            catch (Exception)
            {
                // Malformed input is ignored; the responder keeps serving.
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
