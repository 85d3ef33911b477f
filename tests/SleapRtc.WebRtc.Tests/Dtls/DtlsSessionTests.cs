using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using SleapRtc.WebRtc.Dtls;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Dtls;

public class DtlsSessionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Collects what DTLS hands up, like the SCTP association would.</summary>
    internal sealed class RecordingSink : IDatagramSink
    {
        public readonly BlockingCollection<byte[]> Datagrams = new();
        public readonly TaskCompletionSource<Exception?> Closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void OnDatagram(ReadOnlySpan<byte> datagram) => Datagrams.Add(datagram.ToArray());
        public void OnTransportClosed(Exception? error) => Closed.TrySetResult(error);
    }

    /// <summary>Two sessions joined by an in-memory datagram path; <paramref name="drop"/> may discard packets.</summary>
    private static (DtlsSession Client, DtlsSession Server) Pair(DtlsCertificate clientCert, DtlsCertificate serverCert, Func<bool, bool>? drop = null)
    {
        DtlsSession? client = null, server = null;
        client = new DtlsSession(clientCert, d => { if (drop?.Invoke(true) != true) server!.DeliverFromNetwork(d); });
        server = new DtlsSession(serverCert, d => { if (drop?.Invoke(false) != true) client!.DeliverFromNetwork(d); });
        return (client, server);
    }

    [Fact]
    public async Task Handshake_with_matching_fingerprints_carries_records_both_ways_and_close_notify()
    {
        var clientCert = DtlsCertificate.Generate();
        var serverCert = DtlsCertificate.Generate();
        var (client, server) = Pair(clientCert, serverCert);
        using var _ = client;
        var serverHandshake = server.HandshakeAsync(DtlsRole.Server, clientCert.Fingerprint, Timeout, default);
        var clientHandshake = client.HandshakeAsync(DtlsRole.Client, serverCert.Fingerprint, Timeout, default);
        await Task.WhenAll(serverHandshake, clientHandshake).WaitAsync(Timeout);
        Assert.Equal(0xC02B, client.CipherSuite);
        Assert.Equal(0xC02B, server.CipherSuite);
        Assert.InRange(client.MaxDatagramSize, 1100, 1200);

        var clientSink = new RecordingSink();
        var serverSink = new RecordingSink();
        client.StartReceiving(clientSink);
        server.StartReceiving(serverSink);
        var payload = RandomNumberGenerator.GetBytes(client.MaxDatagramSize);
        client.Send(payload);
        Assert.True(serverSink.Datagrams.TryTake(out var atServer, Timeout));
        Assert.Equal(payload, atServer);
        server.Send(payload.AsSpan(0, 10));
        Assert.True(clientSink.Datagrams.TryTake(out var atClient, Timeout));
        Assert.Equal(payload.AsSpan(0, 10).ToArray(), atClient);

        server.Dispose(); // sends close_notify
        var error = await clientSink.Closed.Task.WaitAsync(Timeout);
        Assert.Null(error);
    }

    /// <summary>
    /// Regression (issue 11 peer fuzz): one garbage record in the clear with a far-ahead sequence number, queued
    /// before the peer's first flight, moved BouncyCastle's epoch-0 replay window so the real flights were dropped
    /// as replays and the handshake timed out. Every content type did it.
    /// </summary>
    [Theory]
    [InlineData((byte)20)]
    [InlineData((byte)21)]
    [InlineData((byte)22)]
    [InlineData((byte)23)]
    public async Task A_garbage_clear_record_with_a_far_ahead_sequence_number_does_not_stall_the_handshake(byte contentType)
    {
        var clientCert = DtlsCertificate.Generate();
        var serverCert = DtlsCertificate.Generate();
        var (client, server) = Pair(clientCert, serverCert);
        using var c = client;
        using var s = server;
        var garbage = new byte[13 + 40];
        new Random(contentType).NextBytes(garbage);
        garbage[0] = contentType;
        garbage[1] = 0xFE;
        garbage[2] = 0xFD;
        garbage[3] = 0; // epoch 0
        garbage[4] = 0;
        garbage[5] = 0x40; // sequence number 2^46-ish
        garbage[11] = 0;
        garbage[12] = 40;
        server.DeliverFromNetwork(garbage);
        client.DeliverFromNetwork(garbage);
        var serverHandshake = server.HandshakeAsync(DtlsRole.Server, clientCert.Fingerprint, TimeSpan.FromSeconds(5), default);
        var clientHandshake = client.HandshakeAsync(DtlsRole.Client, serverCert.Fingerprint, TimeSpan.FromSeconds(5), default);
        await Task.WhenAll(serverHandshake, clientHandshake).WaitAsync(Timeout);
        Assert.True(client.IsEstablished && server.IsEstablished);
    }

    [Fact]
    public void The_record_filter_passes_real_handshake_framing_and_drops_what_no_handshake_sends()
    {
        // A ClientHello fragment as every peer frames it: one fragment filling the record.
        var hello = new byte[13 + 12 + 50];
        hello[0] = 22; hello[1] = 0xFE; hello[2] = 0xFF; hello[10] = 1; hello[12] = 12 + 50;
        hello[13] = 1; hello[13 + 3] = 50; hello[13 + 11] = 50;
        Assert.True(DtlsRecordFilter.IsAcceptable(hello, handshakeComplete: false, DtlsRecordFilter.SmallestCiphertextLength));
        Assert.True(DtlsRecordFilter.IsAcceptable(hello, handshakeComplete: true, 25)); // a retransmitted flight
        var farAhead = (byte[])hello.Clone();
        farAhead[6] = 1; // sequence number 2^32
        Assert.False(DtlsRecordFilter.IsAcceptable(farAhead, handshakeComplete: false, DtlsRecordFilter.SmallestCiphertextLength));
        var overlong = (byte[])hello.Clone();
        overlong[13 + 11] = 51; // fragment longer than the record holds
        Assert.False(DtlsRecordFilter.IsAcceptable(overlong, handshakeComplete: false, DtlsRecordFilter.SmallestCiphertextLength));
        // A well-formed fatal alert counts while the handshake runs, not after it.
        var alert = new byte[] { 21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 2, 42 };
        Assert.True(DtlsRecordFilter.IsAcceptable(alert, handshakeComplete: false, DtlsRecordFilter.SmallestCiphertextLength));
        Assert.False(DtlsRecordFilter.IsAcceptable(alert, handshakeComplete: true, 25));
        var applicationDataInTheClear = new byte[] { 23, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 2, 42 };
        Assert.False(DtlsRecordFilter.IsAcceptable(applicationDataInTheClear, handshakeComplete: false, DtlsRecordFilter.SmallestCiphertextLength));
    }

    [Fact]
    public async Task Fingerprint_mismatch_aborts_the_handshake()
    {
        var clientCert = DtlsCertificate.Generate();
        var serverCert = DtlsCertificate.Generate();
        var (client, server) = Pair(clientCert, serverCert);
        using var c = client;
        using var s = server;
        var wrong = (byte[])serverCert.Fingerprint.Clone();
        wrong[5] ^= 0xFF;
        var serverHandshake = server.HandshakeAsync(DtlsRole.Server, clientCert.Fingerprint, TimeSpan.FromSeconds(3), default);
        var clientHandshake = client.HandshakeAsync(DtlsRole.Client, wrong, TimeSpan.FromSeconds(3), default);
        await Assert.ThrowsAsync<DtlsFingerprintMismatchException>(() => clientHandshake.WaitAsync(Timeout));
        await Assert.ThrowsAnyAsync<Exception>(() => serverHandshake.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Server_rejects_a_client_certificate_that_does_not_match()
    {
        var clientCert = DtlsCertificate.Generate();
        var serverCert = DtlsCertificate.Generate();
        var (client, server) = Pair(clientCert, serverCert);
        using var c = client;
        using var s = server;
        var serverHandshake = server.HandshakeAsync(DtlsRole.Server, serverCert.Fingerprint /* not the client's */, TimeSpan.FromSeconds(3), default);
        var clientHandshake = client.HandshakeAsync(DtlsRole.Client, serverCert.Fingerprint, TimeSpan.FromSeconds(3), default);
        await Assert.ThrowsAsync<DtlsFingerprintMismatchException>(() => serverHandshake.WaitAsync(Timeout));
        await Assert.ThrowsAnyAsync<Exception>(() => clientHandshake.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Handshake_completes_when_flights_are_lost()
    {
        var clientCert = DtlsCertificate.Generate();
        var serverCert = DtlsCertificate.Generate();
        // Lose the first ClientHello and the first server flight: BC must retransmit both.
        var clientSent = 0;
        var serverSent = 0;
        var (client, server) = Pair(clientCert, serverCert, fromClient =>
            fromClient ? Interlocked.Increment(ref clientSent) == 1 : Interlocked.Increment(ref serverSent) <= 2);
        using var c = client;
        using var s = server;
        var stopwatch = Stopwatch.StartNew();
        await Task.WhenAll(
            server.HandshakeAsync(DtlsRole.Server, clientCert.Fingerprint, Timeout, default),
            client.HandshakeAsync(DtlsRole.Client, serverCert.Fingerprint, Timeout, default)).WaitAsync(Timeout);
        Assert.True(clientSent > 2 && serverSent > 2);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(8));
    }

    [Fact]
    public async Task Cancellation_stops_a_handshake_without_peer()
    {
        var cert = DtlsCertificate.Generate();
        using var lonely = new DtlsSession(cert, _ => { });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => lonely.HandshakeAsync(DtlsRole.Client, cert.Fingerprint, Timeout, cts.Token).WaitAsync(Timeout));
    }
}
