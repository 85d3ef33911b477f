using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;

namespace SleapRtc.WebRtc.Dtls;

public enum DtlsRole { Client, Server }

/// <summary>
/// One DTLS 1.2 association over an ICE path (BouncyCastle underneath). Created before the handshake so
/// that early datagrams (a ClientHello racing the ICE nomination) are queued, not lost. After the
/// handshake it is the <see cref="IDatagramTransport"/> SCTP sends through, and a dedicated receive
/// thread feeds decrypted records to the <see cref="IDatagramSink"/>.
/// </summary>
public sealed class DtlsSession : IDatagramTransport, IDatagramBatching, IDisposable
{
    private readonly DatagramAdapter _adapter;
    private readonly DtlsCertificate _certificate;
    private readonly object _sendLock = new();
    private readonly IDatagramBatching? _networkBatching;
    private DtlsTransport? _transport;
    private Thread? _receiveThread;
    private IDatagramSink? _sink;
    private Func<bool>? _peerClosed;
    private volatile bool _disposed;
    private int _closedReported;
    private volatile int _minimumCiphertextLength;

    /// <param name="networkBatching">The network below, when it can send a burst of records together (ICE).</param>
    public DtlsSession(DtlsCertificate certificate, SpanAction sendToNetwork, IDatagramBatching? networkBatching = null)
    {
        _certificate = certificate;
        _adapter = new DatagramAdapter(sendToNetwork);
        _networkBatching = networkBatching;
    }

    /// <summary>Records are encrypted at once, as today; only their datagrams' trip to the network is grouped.</summary>
    public void BeginBatch() => _networkBatching?.BeginBatch();

    public void EndBatch() => _networkBatching?.EndBatch();

    /// <summary>
    /// Called after the last record of a drained burst was delivered (the inbound queue is empty), so SCTP
    /// can answer a whole burst with one SACK (SctpAssociation.OnDatagramBatchEnd).
    /// </summary>
    public Action? BatchEnd { get; set; }

    /// <summary>Negotiated cipher suite (e.g. 0xC02B), valid after the handshake.</summary>
    public int CipherSuite { get; private set; }

    public bool IsEstablished => _transport is not null;

    /// <summary>SHA-256 of our certificate.</summary>
    public byte[] LocalFingerprint => _certificate.Fingerprint;

    /// <summary>SHA-256 of the certificate the peer presented in the handshake (not the SDP's claim); null before it.</summary>
    public byte[]? RemoteFingerprint { get; private set; }

    /// <summary>Plaintext bytes one record carries (≈1163 with 1200-byte datagrams).</summary>
    public int MaxDatagramSize => _transport?.GetSendLimit() ?? DatagramAdapter.SendLimit;

    /// <summary>Hands a datagram from the network (first byte 20–63) to DTLS; never throws.</summary>
    public void DeliverFromNetwork(ReadOnlySpan<byte> datagram)
    {
        // Zero until the handshake completes and the suite's real minimum is known.
        var minimumCiphertext = _minimumCiphertextLength;
        var handshakeComplete = minimumCiphertext > 0;
        if (!DtlsRecordFilter.IsAcceptable(datagram, handshakeComplete, handshakeComplete ? minimumCiphertext : DtlsRecordFilter.SmallestCiphertextLength)) return;
        _adapter.Enqueue(datagram);
    }

    /// <summary>
    /// Runs the handshake on a dedicated thread (BouncyCastle's API is blocking) and verifies that the
    /// peer's certificate matches <paramref name="remoteFingerprint"/>.
    /// </summary>
    public Task HandshakeAsync(DtlsRole role, byte[] remoteFingerprint, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registration = cancellationToken.Register(() => _adapter.Close());
        var thread = new Thread(() =>
        {
            var crypto = new WebRtcTlsCrypto(new SecureRandom());
            var timeoutMs = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
            WebRtcDtlsClient? client = null;
            WebRtcDtlsServer? server = null;
            try
            {
                if (role == DtlsRole.Client)
                {
                    client = new WebRtcDtlsClient(crypto, _certificate, remoteFingerprint, timeoutMs);
                    _transport = new DtlsClientProtocol().Connect(client, _adapter);
                    CipherSuite = client.NegotiatedCipherSuite;
                    RemoteFingerprint = client.PeerFingerprint;
                    _peerClosed = () => client.PeerClosed;
                }
                else
                {
                    server = new WebRtcDtlsServer(crypto, _certificate, remoteFingerprint, timeoutMs);
                    _transport = new DtlsServerProtocol().Accept(server, _adapter);
                    CipherSuite = server.NegotiatedCipherSuite;
                    RemoteFingerprint = server.PeerFingerprint;
                    _peerClosed = () => server.PeerClosed;
                }
                _minimumCiphertextLength = DtlsRecordFilter.MinimumCiphertextLength(CipherSuite);
                completion.TrySetResult();
            }
            catch (Exception ex)
            {
                if (client?.FingerprintMismatch == true || server?.FingerprintMismatch == true)
                    completion.TrySetException(new DtlsFingerprintMismatchException());
                else if (cancellationToken.IsCancellationRequested)
                    completion.TrySetCanceled(cancellationToken);
                else
                    completion.TrySetException(new IOException($"DTLS handshake failed: {ex.Message}", ex));
            }
            finally
            {
                registration.Dispose();
            }
        })
        { IsBackground = true, Name = "dtls-handshake" };
        thread.Start();
        return completion.Task;
    }

    /// <summary>Starts delivering decrypted records to <paramref name="sink"/> on a dedicated thread.</summary>
    public void StartReceiving(IDatagramSink sink)
    {
        var transport = _transport ?? throw new InvalidOperationException("handshake not complete");
        _sink = sink;
        _receiveThread = new Thread(() => ReceiveLoop(transport, sink)) { IsBackground = true, Name = "dtls-receive" };
        _receiveThread.Start();
    }

    private void ReceiveLoop(DtlsTransport transport, IDatagramSink sink)
    {
        var buffer = new byte[transport.GetReceiveLimit()];
        Exception? error = null;
        try
        {
            while (!_disposed)
            {
                // BouncyCastle's record layer is not thread-safe: its receive path may itself send (a
                // retransmitted final flight, alerts) while SCTP sends from other threads, and racing
                // sequence numbers corrupt records (libwebrtc answered with decode_error). So BC is only
                // entered under the send lock, and only once a datagram is queued so the lock is held briefly.
                if (!_adapter.WaitForDatagram(TimeSpan.FromMilliseconds(250)))
                {
                    if (_peerClosed?.Invoke() == true || _adapter.IsClosed) break;
                    continue;
                }
                int received;
                lock (_sendLock) received = transport.Receive(buffer, 0, buffer.Length, 1);
                if (received >= 0)
                {
                    sink.OnDatagram(buffer.AsSpan(0, received));
                    if (_adapter.PendingCount == 0) BatchEnd?.Invoke();
                }
                else if (_peerClosed?.Invoke() == true) break;
                // A datagram that yielded no record (a replayed duplicate, a handshake retransmission) can be
                // the last of a burst: end the batch anyway, or SCTP would hold its SACK and send budget
                // until the next datagram, which never comes once the peer waits on that SACK.
                else if (_adapter.PendingCount == 0) BatchEnd?.Invoke();
            }
        }
        catch (Exception ex) when (!_disposed)
        {
            error = _peerClosed?.Invoke() == true ? null : ex;
        }
        catch (Exception)
        {
            // Closed locally: the owner already knows.
        }
        ReportClosed(error);
    }

    /// <summary>Also used by the owner when the path below is gone (ICE consent lost).</summary>
    internal void ReportClosed(Exception? error)
    {
        if (Interlocked.Exchange(ref _closedReported, 1) == 0) _sink?.OnTransportClosed(error);
    }

    public void Send(ReadOnlySpan<byte> datagram)
    {
        var transport = _transport;
        if (transport is null || _disposed) return;
        try
        {
#if NET8_0_OR_GREATER
            lock (_sendLock) transport.Send(datagram);
#else
            // BouncyCastle's netstandard2.0 build only takes arrays.
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(datagram.Length);
            try
            {
                datagram.CopyTo(rented);
                lock (_sendLock) transport.Send(rented, 0, datagram.Length);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
#endif
        }
        catch (Exception) when (_disposed)
        {
            // Racing a close: the packet is dropped like any datagram would be.
        }
    }

    /// <summary>Sends close_notify (when established) and stops the receive thread.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            lock (_sendLock) _transport?.Close();
        }
        catch (Exception)
        {
            // close_notify is best effort.
        }
        _adapter.Close();
        if (_receiveThread is not null && _receiveThread != Thread.CurrentThread) _receiveThread.Join(TimeSpan.FromSeconds(2));
    }
}
