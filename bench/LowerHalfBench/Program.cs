using System.Diagnostics;
using System.Net;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Dtls;
using SleapRtc.WebRtc.Ice;
using SleapRtc.WebRtc.PeerConnection;

// Usage: dotnet run -c Release --project bench/LowerHalfBench [megabytes=200] [connectRuns=50]
var megabytes = args.Length > 0 ? int.Parse(args[0]) : 200;
var connectRuns = args.Length > 1 ? int.Parse(args[1]) : 50;
Console.WriteLine($"cores {Environment.ProcessorCount}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");

var recordRate = await MeasureDtlsRecordsAsync(megabytes * 1_000_000L);
Console.WriteLine($"DTLS records over ICE loopback (one direction, {megabytes} MB): {recordRate.MBps:F1} MB/s, {recordRate.Lost} of {recordRate.Sent} records lost");

var connect = await MeasureConnectAsync(connectRuns);
Console.WriteLine($"connect ours<->ours (offer -> channel open), {connectRuns} warm runs: p50 {connect.P50:F1} ms, p90 {connect.P90:F1} ms, min {connect.Min:F1} ms");

static async Task<(double MBps, long Sent, long Lost)> MeasureDtlsRecordsAsync(long totalBytes)
{
    var options = new IceAgentOptions { LocalAddresses = new[] { IPAddress.Loopback } };
    using var sender = new IceAgent(options, controlling: true);
    using var receiver = new IceAgent(options, controlling: false);
    var senderCandidates = await sender.GatherAsync(default);
    var receiverCandidates = await receiver.GatherAsync(default);
    var connected = new TaskCompletionSource();
    sender.StateChanged += s => { if (s == IceConnectionState.Connected) connected.TrySetResult(); };
    receiver.SetRemoteDescription(sender.LocalUfrag, sender.LocalPassword, senderCandidates);
    receiver.Start();
    sender.SetRemoteDescription(receiver.LocalUfrag, receiver.LocalPassword, receiverCandidates);
    sender.Start();
    await connected.Task.WaitAsync(TimeSpan.FromSeconds(10));

    var senderCert = DtlsCertificate.Generate();
    var receiverCert = DtlsCertificate.Generate();
    using var client = new DtlsSession(senderCert, sender.Send);
    using var server = new DtlsSession(receiverCert, receiver.Send);
    sender.DtlsPacketReceived = client.DeliverFromNetwork;
    receiver.DtlsPacketReceived = server.DeliverFromNetwork;
    await Task.WhenAll(
        server.HandshakeAsync(DtlsRole.Server, senderCert.Fingerprint, TimeSpan.FromSeconds(10), default),
        client.HandshakeAsync(DtlsRole.Client, receiverCert.Fingerprint, TimeSpan.FromSeconds(10), default));

    var sink = new CountingSink();
    server.StartReceiving(sink);
    var record = new byte[client.MaxDatagramSize];
    Random.Shared.NextBytes(record);
    long sent = 0;
    var stopwatch = Stopwatch.StartNew();
    for (long bytes = 0; bytes < totalBytes; bytes += record.Length)
    {
        client.Send(record);
        sent++;
        // Stay at most ~2 MB ahead of the receiver, like a congestion window would.
        while (sent - Interlocked.Read(ref sink.Count) > 2_000) Thread.Yield();
    }
    var deadline = Stopwatch.StartNew();
    while (Interlocked.Read(ref sink.Count) < sent && deadline.Elapsed < TimeSpan.FromSeconds(2)) await Task.Delay(1);
    var seconds = stopwatch.Elapsed.TotalSeconds;
    var received = Interlocked.Read(ref sink.Count);
    return (received * (double)record.Length / 1e6 / seconds, sent, sent - received);
}

static async Task<(double P50, double P90, double Min)> MeasureConnectAsync(int runs)
{
    var factory = new RtcPeerConnectionFactory();
    var options = new PeerConnectionOptions { LocalAddresses = new[] { IPAddress.Loopback } };
    var times = new List<double>();
    for (var i = 0; i < runs + 3; i++)
    {
        await using var offerer = factory.Create(options);
        await using var answerer = factory.Create(options);
        var opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += _ => opened.TrySetResult();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stopwatch = Stopwatch.StartNew();
        var offer = await offerer.CreateOfferAsync(cts.Token);
        var answer = await answerer.AcceptOfferAsync(offer, cts.Token);
        await offerer.AcceptAnswerAsync(answer, cts.Token);
        await offerer.OpenDataChannelAsync("bench", cts.Token);
        await opened.Task.WaitAsync(cts.Token);
        if (i >= 3) times.Add(stopwatch.Elapsed.TotalMilliseconds); // first runs pay for JIT
    }
    times.Sort();
    return (times[times.Count / 2], times[(int)(times.Count * 0.9)], times[0]);
}

internal sealed class CountingSink : IDatagramSink
{
    public long Count;
    public void OnDatagram(ReadOnlySpan<byte> datagram) => Interlocked.Increment(ref Count);
    public void OnTransportClosed(Exception? error) { }
}
