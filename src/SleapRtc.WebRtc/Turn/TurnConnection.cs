using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace SleapRtc.WebRtc.Turn;

/// <summary>Receives one whole STUN message or ChannelData message from the TURN server.</summary>
internal delegate void TurnFrameHandler(ReadOnlySpan<byte> frame);

/// <summary>
/// The control connection to one TURN server. Over UDP one datagram is one message; over TCP and TLS messages
/// follow each other on the stream (RFC 8656 §3.1) and each is delimited by its own length field: a STUN
/// header's length plus 20, or a ChannelData header's length plus 4, padded to a multiple of 4.
/// </summary>
internal abstract class TurnConnection : IDisposable
{
    public abstract bool IsReliable { get; }
    /// <summary>This machine's end of the connection (the base of the relayed candidate).</summary>
    public abstract IPEndPoint LocalEndPoint { get; }
    public TurnFrameHandler? FrameReceived { get; set; }
    /// <summary>Raised once when the connection ends for any reason but disposal.</summary>
    public event Action<Exception>? Closed;

    public abstract void Send(ReadOnlySpan<byte> frame);
    public abstract void Dispose();

    protected void RaiseClosed(Exception error) => Closed?.Invoke(error);

    public static async Task<TurnConnection> OpenAsync(TurnServerUrl server, IPEndPoint serverEndPoint, IPAddress? localAddress,
        X509Certificate2Collection? trustedCertificates, CancellationToken cancellationToken)
    {
        if (server.Transport == TurnTransport.Udp) return new UdpTurnConnection(serverEndPoint, localAddress);
        var socket = new Socket(serverEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (localAddress is not null) socket.Bind(new IPEndPoint(localAddress, 0));
            using (cancellationToken.Register(socket.Dispose))
            {
                try
                {
                    await socket.ConnectAsync(serverEndPoint).ConfigureAwait(false);
                }
                catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (server.Transport == TurnTransport.Tls)
            {
                var validator = new TurnCertificateValidator(trustedCertificates);
                var tls = new SslStream(stream, leaveInnerStreamOpen: false, validator.Validate);
                stream = tls;
                using (cancellationToken.Register(tls.Dispose))
                {
                    try
                    {
                        await tls.AuthenticateAsClientAsync(server.Host, null, SslProtocols.None, checkCertificateRevocation: false).ConfigureAwait(false);
                    }
                    catch (AuthenticationException e)
                    {
                        tls.Dispose();
                        throw new TurnException(server, null, $"the TLS handshake failed: {validator.Failure ?? e.Message}", e);
                    }
                    catch (Exception) when (cancellationToken.IsCancellationRequested)
                    {
                        throw new OperationCanceledException(cancellationToken);
                    }
                }
            }
            return new StreamTurnConnection(socket, stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>
/// Validates the TURN server's certificate the normal way (chain to a system root, name matches the URL's host),
/// and additionally accepts a chain that ends in one of the configured trusted certificates: a lab's own CA or
/// the self-signed certificate of its coturn. Nothing else is relaxed: the name must still match.
/// </summary>
internal sealed class TurnCertificateValidator(X509Certificate2Collection? trusted)
{
    public string? Failure { get; private set; }

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None) return true;
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            Failure = "the server sent no certificate";
            return false;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            Failure = $"the server's certificate ({certificate.Subject}) is not issued for the host in the TURN URL";
            return false;
        }
        if (trusted is { Count: > 0 } && ChainsToTrusted(new X509Certificate2(certificate), trusted)) return true;
        Failure = $"the server's certificate ({certificate.Subject}) is not trusted" +
            (trusted is { Count: > 0 } ? " by the system nor by the configured TURN certificate file" : " (a self-signed certificate or a private CA needs the TURN certificate file setting)");
        return false;
    }

    private static bool ChainsToTrusted(X509Certificate2 leaf, X509Certificate2Collection trusted)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
        chain.ChainPolicy.ExtraStore.AddRange(trusted);
        if (!chain.Build(leaf)) return false;
        // AllowUnknownCertificateAuthority lets any root pass Build; the root must be one we were told to trust.
        var root = chain.ChainElements[chain.ChainElements.Count - 1].Certificate;
        foreach (var candidate in trusted)
            if (candidate.RawData.AsSpan().SequenceEqual(root.RawData)) return true;
        return false;
    }
}

internal sealed class UdpTurnConnection : TurnConnection
{
    private readonly Socket _socket;
    private readonly Thread _thread;
    private volatile bool _disposed;

    public UdpTurnConnection(IPEndPoint server, IPAddress? localAddress)
    {
        _socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _socket.ReceiveBufferSize = 4 * 1024 * 1024;
            _socket.SendBufferSize = 4 * 1024 * 1024;
            _socket.Bind(new IPEndPoint(localAddress ?? (server.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any), 0));
            // Connected: the kernel drops datagrams from anyone but the server, and sends need no address.
            _socket.Connect(server);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _thread = new Thread(ReceiveLoop) { IsBackground = true, Name = "turn-udp" };
        _thread.Start();
    }

    public override bool IsReliable => false;
    public override IPEndPoint LocalEndPoint { get; }

    public override void Send(ReadOnlySpan<byte> frame)
    {
        if (_disposed) return;
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(frame.Length);
        try
        {
            frame.CopyTo(rented);
            _socket.Send(rented, 0, frame.Length, SocketFlags.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // UDP: a failed send is a lost datagram; requests retransmit.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private void ReceiveLoop()
    {
        var buffer = new byte[65536];
        while (!_disposed)
        {
            int received;
            try
            {
                received = _socket.Receive(buffer, 0, buffer.Length, SocketFlags.None);
            }
            catch (SocketException e) when (!_disposed && e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused or SocketError.MessageSize)
            {
                continue; // ICMP port unreachable from a server not (yet) listening: requests time out instead
            }
            catch (Exception e)
            {
                if (!_disposed) RaiseClosed(e);
                break;
            }
            try
            {
                FrameReceived?.Invoke(buffer.AsSpan(0, received));
            }
            catch (Exception)
            {
                // Hostile or malformed input never stops the receive loop.
            }
        }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _socket.Dispose();
        if (_thread != Thread.CurrentThread) _thread.Join(TimeSpan.FromSeconds(2));
    }
}

internal sealed class StreamTurnConnection : TurnConnection
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly object _writeGate = new();
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _disposed;

    public StreamTurnConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _ = Task.Run(ReadLoopAsync);
    }

    public override bool IsReliable => true;
    public override IPEndPoint LocalEndPoint { get; }

    public override void Send(ReadOnlySpan<byte> frame)
    {
        if (_disposed) return;
        // ChannelData is padded to a multiple of 4 on a stream so that the next message starts aligned (RFC 8656 §12.5).
        var length = (frame.Length + 3) & ~3;
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        try
        {
            frame.CopyTo(rented);
            rented.AsSpan(frame.Length, length - frame.Length).Clear();
            lock (_writeGate) _stream.Write(rented, 0, length);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
        {
            if (!_disposed) RaiseClosed(e);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[65536 + 8];
        try
        {
            while (!_disposed)
            {
                await ReadExactlyAsync(buffer, 0, 4).ConfigureAwait(false);
                var length = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(2));
                int total, padded;
                if (buffer[0] < 0x40)
                {
                    total = padded = 20 + length; // STUN: a 20-byte header; attributes are already 4-aligned
                }
                else
                {
                    total = 4 + length;
                    padded = (total + 3) & ~3;
                }
                if (padded > buffer.Length) throw new InvalidDataException("a TURN message longer than 64 KiB");
                await ReadExactlyAsync(buffer, 4, padded - 4).ConfigureAwait(false);
                try
                {
                    FrameReceived?.Invoke(buffer.AsSpan(0, total));
                }
                catch (Exception)
                {
                    // A handler's failure on one message never stops the connection.
                }
            }
        }
        catch (Exception e)
        {
            if (!_disposed) RaiseClosed(e);
        }
    }

    private async Task ReadExactlyAsync(byte[] buffer, int offset, int count)
    {
        while (count > 0)
        {
            var read = await _stream.ReadAsync(buffer, offset, count, _stop.Token).ConfigureAwait(false);
            if (read <= 0) throw new EndOfStreamException("the TURN server closed the connection");
            offset += read;
            count -= read;
        }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _stream.Dispose();
        _socket.Dispose();
    }
}
